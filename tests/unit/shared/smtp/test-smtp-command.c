/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <errno.h>
#include <string.h>

#include "check-main.h"
#include "smtp-command.h"

typedef struct CommandCase {
        const char *name;
        const char *input;
        size_t len;             /* 0: strlen(input) */
        int ret;
        SmtpVerb verb;
        const char *arg;        /* expected argument, NULL: none */
} CommandCase;

static const CommandCase command_cases[] = {
        { "EHLO",                    "EHLO client.example", .verb = SMTP_VERB_EHLO, .arg = "client.example" },
        { "ehlo lower case",         "ehlo client.example", .verb = SMTP_VERB_EHLO, .arg = "client.example" },
        { "HELO mixed case",         "HeLo client.example", .verb = SMTP_VERB_HELO, .arg = "client.example" },
        { "EHLO literal",            "EHLO [192.0.2.1]", .verb = SMTP_VERB_EHLO, .arg = "[192.0.2.1]" },
        { "EHLO missing arg",        "EHLO", .ret = -EINVAL },
        { "HELO only SP",            "HELO ", .ret = -EINVAL },
        { "MAIL",                    "MAIL FROM:<a@b.example>", .verb = SMTP_VERB_MAIL, .arg = "FROM:<a@b.example>" },
        { "MAIL with params",        "MAIL FROM:<a@b.example> SIZE=10", .verb = SMTP_VERB_MAIL,
          .arg = "FROM:<a@b.example> SIZE=10" },
        { "MAIL trailing SP",        "MAIL FROM:<a@b.example>  ", .verb = SMTP_VERB_MAIL, .arg = "FROM:<a@b.example>" },
        { "mail lower case",         "mail from:<>", .verb = SMTP_VERB_MAIL, .arg = "from:<>" },
        { "MAIL no SP",              "MAIL:FROM:<>", .ret = -EBADMSG },
        { "MAILFROM unknown",        "MAILFROM:<>", .ret = -EOPNOTSUPP },
        { "MAIL no arg",             "MAIL", .ret = -EINVAL },
        { "MAIL UTF-8 arg",          "MAIL FROM:<j\xc3\xb6rg@b.example> SMTPUTF8", .verb = SMTP_VERB_MAIL,
          .arg = "FROM:<j\xc3\xb6rg@b.example> SMTPUTF8" },
        { "RCPT",                    "RCPT TO:<a@b.example>", .verb = SMTP_VERB_RCPT, .arg = "TO:<a@b.example>" },
        { "RCPT UTF-8 arg",          "RCPT TO:<\xc3\xa9@b.example>", .verb = SMTP_VERB_RCPT, .arg = "TO:<\xc3\xa9@b.example>" },
        { "RCPT no arg",             "RCPT", .ret = -EINVAL },
        { "VRFY UTF-8",              "VRFY \xc3\xa9", .verb = SMTP_VERB_VRFY, .arg = "\xc3\xa9" },
        { "VRFY no arg",             "VRFY", .ret = -EINVAL },
        { "EXPN",                    "EXPN list", .verb = SMTP_VERB_EXPN, .arg = "list" },
        { "EXPN no arg",             "EXPN", .ret = -EINVAL },
        { "EXPN 8-bit",              "EXPN \xc3\xa9", .ret = -EBADMSG },
        { "DATA",                    "DATA", .verb = SMTP_VERB_DATA },
        { "data lower case",         "data", .verb = SMTP_VERB_DATA },
        { "DATA trailing SP",        "DATA ", .verb = SMTP_VERB_DATA },
        { "DATA with arg",           "DATA x", .ret = -EINVAL },
        { "DATA dot",                "DATA.", .ret = -EBADMSG },
        { "BDAT",                    "BDAT 100 LAST", .verb = SMTP_VERB_BDAT, .arg = "100 LAST" },
        { "BDAT no arg",             "BDAT", .ret = -EINVAL },
        { "BDAT 8-bit",              "BDAT 1\xc3\xa9", .ret = -EBADMSG },
        { "RSET",                    "RSET", .verb = SMTP_VERB_RSET },
        { "RSET with arg",           "RSET now", .ret = -EINVAL },
        { "NOOP",                    "NOOP", .verb = SMTP_VERB_NOOP },
        { "NOOP with arg",           "NOOP hello there", .verb = SMTP_VERB_NOOP, .arg = "hello there" },
        { "NOOP 8-bit",              "NOOP \xff", .ret = -EBADMSG },
        { "QUIT",                    "QUIT", .verb = SMTP_VERB_QUIT },
        { "QUIT with arg",           "QUIT now", .ret = -EINVAL },
        { "HELP",                    "HELP", .verb = SMTP_VERB_HELP },
        { "HELP topic",              "HELP MAIL", .verb = SMTP_VERB_HELP, .arg = "MAIL" },
        { "STARTTLS",                "STARTTLS", .verb = SMTP_VERB_STARTTLS },
        { "starttls lower case",     "starttls", .verb = SMTP_VERB_STARTTLS },
        { "STARTTLS with arg",       "STARTTLS x", .ret = -EINVAL },
        { "AUTH",                    "AUTH PLAIN AGFAAGI=", .verb = SMTP_VERB_AUTH, .arg = "PLAIN AGFAAGI=" },
        { "AUTH no arg",             "AUTH", .ret = -EINVAL },
        { "two SP kept in arg",      "HELO  x", .verb = SMTP_VERB_HELO, .arg = " x" },
        { "empty",                   "", .ret = -EBADMSG },
        { "only SP",                 "   ", .ret = -EBADMSG },
        { "leading SP",              " QUIT", .ret = -EBADMSG },
        { "unknown verb",            "XYZZY", .ret = -EOPNOTSUPP },
        { "unknown verb arg",        "TURN me", .ret = -EOPNOTSUPP },
        { "verb prefix",             "QUI", .ret = -EOPNOTSUPP },
        { "verb longer",             "QUITS", .ret = -EOPNOTSUPP },
        { "numeric verb",            "250 ok", .ret = -EOPNOTSUPP },
        { "8-bit verb",              "QU\xc3\x8dT", .ret = -EBADMSG },
        { "NUL",                     "QUIT\0", 5, .ret = -EBADMSG },
        { "NUL in arg",              "HELO a\0b", 8, .ret = -EBADMSG },
        { "CR",                      "QUIT\r", .ret = -EBADMSG },
        { "LF in arg",               "HELO a\nb", .ret = -EBADMSG },
        { "HTAB separator",          "HELO\tx", .ret = -EBADMSG },
        { "DEL",                     "NOOP \x7f", .ret = -EBADMSG },
        { "ESC",                     "NOOP \x1b[2J", .ret = -EBADMSG },
        { "HELO 8-bit",              "HELO b\xc3\xbc" "cher.de", .ret = -EBADMSG },
        { "EHLO 8-bit",              "EHLO b\xc3\xbc" "cher.de", .verb = SMTP_VERB_EHLO, .arg = "b\xc3\xbc" "cher.de" },
};

START_TEST(test_command_table)
{
        for (size_t i = 0; i < ELEMENTSOF(command_cases); i++) {
                const CommandCase *c = &command_cases[i];
                SmtpCommand cmd = { .verb = _SMTP_VERB_INVALID };
                int r;

                r = smtp_command_parse(c->input, c->len ?: strlen(c->input), &cmd);
                ck_assert_msg(r == c->ret, "case '%s': got %d, expected %d", c->name, r, c->ret);
                if (r < 0) {
                        ck_assert_msg(cmd.verb == _SMTP_VERB_INVALID, "case '%s': output on error", c->name);
                        continue;
                }
                ck_assert_msg(cmd.verb == c->verb, "case '%s': verb %d, expected %d", c->name, cmd.verb, c->verb);
                ck_assert_ptr_nonnull(cmd.arg);
                if (!c->arg)
                        ck_assert_msg(cmd.arg_len == 0, "case '%s': unexpected argument", c->name);
                else
                        ck_assert_msg(cmd.arg_len == strlen(c->arg) && memcmp(cmd.arg, c->arg, cmd.arg_len) == 0,
                                      "case '%s': argument '%.*s', expected '%s'", c->name,
                                      (int) cmd.arg_len, cmd.arg, c->arg);
                /* the argument points into the caller's line */
                ck_assert(cmd.arg >= c->input && cmd.arg <= c->input + strlen(c->input));
        }
}
END_TEST

START_TEST(test_verb_strings)
{
        for (SmtpVerb v = 0; v < _SMTP_VERB_MAX; v++) {
                const char *s = smtp_verb_to_string(v);
                char lower[16];
                size_t n;

                ck_assert_ptr_nonnull(s);
                n = strlen(s);
                ck_assert_uint_lt(n, sizeof(lower));
                ck_assert_int_eq(smtp_verb_from_string(s, n), v);
                for (size_t i = 0; i <= n; i++)
                        lower[i] = (char) (s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
                ck_assert_int_eq(smtp_verb_from_string(lower, n), v);
                /* a prefix is not the verb */
                ck_assert_int_eq(smtp_verb_from_string(s, n - 1), _SMTP_VERB_INVALID);
        }
        ck_assert_str_eq(smtp_verb_to_string(SMTP_VERB_MAIL), "MAIL");
        ck_assert_ptr_null(smtp_verb_to_string(_SMTP_VERB_MAX));
        ck_assert_ptr_null(smtp_verb_to_string(_SMTP_VERB_INVALID));
        ck_assert_int_eq(smtp_verb_from_string("MAILX", 5), _SMTP_VERB_INVALID);
        ck_assert_int_eq(smtp_verb_from_string("MAILX", 4), SMTP_VERB_MAIL);
        ck_assert_int_eq(smtp_verb_from_string("", 0), _SMTP_VERB_INVALID);
}
END_TEST

static Suite* smtp_command_suite(void) {
        Suite *s = suite_create("smtp-command");
        TCase *tc;

        tc = tcase_create("command line");
        tcase_add_test(tc, test_command_table);
        suite_add_tcase(s, tc);

        tc = tcase_create("verb strings");
        tcase_add_test(tc, test_verb_strings);
        suite_add_tcase(s, tc);

        return s;
}

CHECK_MAIN(smtp_command_suite);
