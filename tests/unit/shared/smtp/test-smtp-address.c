/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <errno.h>
#include <string.h>

#include "check-main.h"
#include "smtp-address.h"

#define A10 "aaaaaaaaaa"
#define A57 A10 A10 A10 A10 A10 "aaaaaaa"
#define A58 A57 "a"
#define A60 A10 A10 A10 A10 A10 A10
#define A61 A60 "a"
#define A62 A61 "a"
#define A63 A62 "a"
#define A64 A63 "a"
#define A65 A64 "a"
#define D189 A63 "." A63 "." A61              /* 189 octets */
#define D190 A63 "." A63 "." A62              /* 190 octets */
#define D249 A63 "." A63 "." A63 "." A57      /* 249 octets */
#define D250 A63 "." A63 "." A63 "." A58      /* 250 octets */
#define D255 A63 "." A63 "." A63 "." A63      /* 255 octets */

enum { MAILBOX, PATH };

typedef struct MailboxCase {
        const char *name;
        int mode;
        const char *input;
        size_t len;             /* 0: strlen(input) */
        SmtpPathFlags flags;
        int ret;
        const char *mailbox;    /* NULL: same as input (MAILBOX mode) */
        size_t local_len;       /* checked when != 0 */
        size_t consumed;        /* PATH mode, checked when != 0 */
        bool literal, utf8, is_null, is_postmaster;
} MailboxCase;

static const MailboxCase mailbox_cases[] = {
        { "plain",                   MAILBOX, "user@example.com", .local_len = 4 },
        { "dots and plus",           MAILBOX, "User.Name+tag@Example.COM", .local_len = 13 },
        { "all atext specials",      MAILBOX, "!#$%&'*+-/=?^_`{|}~@x.org", .local_len = 19 },
        { "numeric labels",          MAILBOX, "a@1.2.3.4" },
        { "single label",            MAILBOX, "a@localhost" },
        { "leading dot",             MAILBOX, ".user@x.org", .ret = -EBADMSG },
        { "trailing dot",            MAILBOX, "user.@x.org", .ret = -EBADMSG },
        { "double dot",              MAILBOX, "us..er@x.org", .ret = -EBADMSG },
        { "no at",                   MAILBOX, "user", .ret = -EBADMSG },
        { "no local part",           MAILBOX, "@x.org", .ret = -EBADMSG },
        { "no domain",               MAILBOX, "user@", .ret = -EBADMSG },
        { "two ats",                 MAILBOX, "a@b@c", .ret = -EBADMSG },
        { "empty",                   MAILBOX, "", .ret = -EBADMSG },
        { "space in local",          MAILBOX, "a b@x.org", .ret = -EBADMSG },
        { "comment",                 MAILBOX, "(c)a@x.org", .ret = -EBADMSG },
        { "trailing space",          MAILBOX, "a@x.org ", .ret = -EBADMSG },
        { "NUL inside",              MAILBOX, "a\0b@x.org", 9, .ret = -EBADMSG },
        { "DEL in local",            MAILBOX, "a\x7f@x.org", .ret = -EBADMSG },
        { "quoted with space",       MAILBOX, "\"john doe\"@x.org", .local_len = 10 },
        { "quoted escaped quote",    MAILBOX, "\"a\\\"b\"@x.org", .local_len = 6 },
        { "quoted escaped bslash",   MAILBOX, "\"a\\\\b\"@x.org" },
        { "quoted empty",            MAILBOX, "\"\"@x.org", .local_len = 2 },
        { "quoted with at",          MAILBOX, "\"a@b\"@x.org", .local_len = 5 },
        { "quoted unterminated",     MAILBOX, "\"abc@x.org", .ret = -EBADMSG },
        { "quoted bslash at end",    MAILBOX, "\"abc\\\"@x.org", .ret = -EBADMSG },
        { "quoted tab",              MAILBOX, "\"a\tb\"@x.org", .ret = -EBADMSG },
        { "quoted-pair DEL",         MAILBOX, "\"\\\x7f\"@x.org", .ret = -EBADMSG },
        { "quoted-pair NUL",         MAILBOX, "\"\\\0\"@x.org", 10, .ret = -EBADMSG },
        { "quoted then atom",        MAILBOX, "\"a\"b@x.org", .ret = -EBADMSG },
        { "quoted dot quoted",       MAILBOX, "\"a\".\"b\"@x.org", .ret = -EBADMSG },
        { "local 64",                MAILBOX, A64 "@x.org", .local_len = 64 },
        { "local 65",                MAILBOX, A65 "@x.org", .ret = -E2BIG },
        { "quoted local 64",         MAILBOX, "\"" A62 "\"@x.org", .local_len = 64 },
        { "quoted local 65",         MAILBOX, "\"" A63 "\"@x.org", .ret = -E2BIG },
        { "label 63",                MAILBOX, "a@" A63 ".org" },
        { "label 64",                MAILBOX, "a@" A64 ".org", .ret = -E2BIG },
        { "mailbox 254",             MAILBOX, A64 "@" D189, .local_len = 64 },
        { "mailbox 255",             MAILBOX, A64 "@" D190, .ret = -E2BIG },
        { "domain 255",              MAILBOX, "a@" D255, .ret = -E2BIG },
        { "hyphen label start",      MAILBOX, "a@-x.org", .ret = -EBADMSG },
        { "hyphen label end",        MAILBOX, "a@x-.org", .ret = -EBADMSG },
        { "hyphen inside",           MAILBOX, "a@x--y.org" },
        { "domain trailing dot",     MAILBOX, "a@x.org.", .ret = -EBADMSG },
        { "domain leading dot",      MAILBOX, "a@.x.org", .ret = -EBADMSG },
        { "domain double dot",       MAILBOX, "a@x..org", .ret = -EBADMSG },
        { "domain underscore",       MAILBOX, "a@x_y.org", .ret = -EBADMSG },
        { "IPv4 literal",            MAILBOX, "a@[192.0.2.1]", .literal = true },
        { "IPv4 octet 256",          MAILBOX, "a@[192.0.2.256]", .ret = -EBADMSG },
        { "IPv4 three octets",       MAILBOX, "a@[192.0.2]", .ret = -EBADMSG },
        { "IPv4 unclosed",           MAILBOX, "a@[192.0.2.1", .ret = -EBADMSG },
        { "literal then text",       MAILBOX, "a@[192.0.2.1]x", .ret = -EBADMSG },
        { "IPv6 compressed",         MAILBOX, "a@[IPv6:2001:db8::1]", .literal = true },
        { "IPv6 tag lower case",     MAILBOX, "a@[ipv6:2001:DB8::1]", .literal = true },
        { "IPv6 all zero",           MAILBOX, "a@[IPv6:::]", .literal = true },
        { "IPv6 full",               MAILBOX, "a@[IPv6:1:2:3:4:5:6:7:8]", .literal = true },
        { "IPv6 seven groups",       MAILBOX, "a@[IPv6:1:2:3:4:5:6:7]", .ret = -EBADMSG },
        { "IPv6 nine groups",        MAILBOX, "a@[IPv6:1:2:3:4:5:6:7:8:9]", .ret = -EBADMSG },
        { "IPv6 :: for one group",   MAILBOX, "a@[IPv6:1:2:3:4:5:6::8]", .ret = -EBADMSG },
        { "IPv6 six groups and ::",  MAILBOX, "a@[IPv6:::3:4:5:6:7:8]", .literal = true },
        { "IPv6 two ::",             MAILBOX, "a@[IPv6:1::2::3]", .ret = -EBADMSG },
        { "IPv6 bad hex",            MAILBOX, "a@[IPv6:2001:db8::g]", .ret = -EBADMSG },
        { "IPv6 v4 tail",            MAILBOX, "a@[IPv6:::ffff:192.0.2.1]", .literal = true },
        { "IPv6 v4 full",            MAILBOX, "a@[IPv6:1:2:3:4:5:6:192.0.2.1]", .literal = true },
        { "IPv6 v4 too many",        MAILBOX, "a@[IPv6:1:2:3:4:5::192.0.2.1]", .ret = -EBADMSG },
        { "IPv6 without tag",        MAILBOX, "a@[2001:db8::1]", .ret = -EBADMSG },
        { "general literal",         MAILBOX, "a@[x-tag:content]", .ret = -EBADMSG },
        { "literal with space",      MAILBOX, "a@[192.0.2.1 ]", .ret = -EBADMSG },
        { "UTF-8 local without flag", MAILBOX, "j\xc3\xb6rg@x.de", .ret = -EILSEQ },
        { "UTF-8 local",             MAILBOX, "j\xc3\xb6rg@x.de", .flags = SMTP_PATH_UTF8, .utf8 = true, .local_len = 5 },
        { "UTF-8 domain",            MAILBOX, "a@b\xc3\xbc" "cher.de", .flags = SMTP_PATH_UTF8, .utf8 = true },
        { "UTF-8 domain no flag",    MAILBOX, "a@b\xc3\xbc" "cher.de", .ret = -EILSEQ },
        { "UTF-8 4 byte",            MAILBOX, "\xf0\x9f\x98\x80@x.org", .flags = SMTP_PATH_UTF8, .utf8 = true },
        { "UTF-8 quoted",            MAILBOX, "\"\xc3\xa9 e\"@x.org", .flags = SMTP_PATH_UTF8, .utf8 = true },
        { "UTF-8 after backslash",   MAILBOX, "\"\\\xc3\xa9\"@x.org", .flags = SMTP_PATH_UTF8, .ret = -EBADMSG },
        { "UTF-8 overlong",          MAILBOX, "\xc0\xaf@x.org", .flags = SMTP_PATH_UTF8, .ret = -EILSEQ },
        { "UTF-8 overlong 3 byte",   MAILBOX, "\xe0\x80\xaf@x.org", .flags = SMTP_PATH_UTF8, .ret = -EILSEQ },
        { "UTF-8 surrogate",         MAILBOX, "\xed\xa0\x80@x.org", .flags = SMTP_PATH_UTF8, .ret = -EILSEQ },
        { "UTF-8 above U+10FFFF",    MAILBOX, "\xf4\x90\x80\x80@x.org", .flags = SMTP_PATH_UTF8, .ret = -EILSEQ },
        { "UTF-8 truncated",         MAILBOX, "\xc3@x.org", .flags = SMTP_PATH_UTF8, .ret = -EILSEQ },
        { "UTF-8 stray continuation", MAILBOX, "\x80@x.org", .flags = SMTP_PATH_UTF8, .ret = -EILSEQ },
        { "UTF-8 in literal",        MAILBOX, "a@[\xc3\xa9]", .flags = SMTP_PATH_UTF8, .ret = -EBADMSG },

        { "path plain",              PATH, "<a@b.example>", .mailbox = "a@b.example", .consumed = 13, .local_len = 1 },
        { "path then params",        PATH, "<a@b.example> SIZE=1", .mailbox = "a@b.example", .consumed = 13 },
        { "path null refused",       PATH, "<>", .ret = -EBADMSG },
        { "path null",               PATH, "<>", .flags = SMTP_PATH_ALLOW_NULL, .mailbox = "", .consumed = 2, .is_null = true },
        { "postmaster",              PATH, "<Postmaster>", .flags = SMTP_PATH_ALLOW_POSTMASTER, .mailbox = "Postmaster", .consumed = 12, .is_postmaster = true, .local_len = 10 },
        { "postmaster any case",     PATH, "<postMASTER>", .flags = SMTP_PATH_ALLOW_POSTMASTER, .mailbox = "postMASTER", .consumed = 12, .is_postmaster = true },
        { "postmaster refused",      PATH, "<Postmaster>", .ret = -EBADMSG },
        { "postmaster with domain",  PATH, "<Postmaster@x.org>", .flags = SMTP_PATH_ALLOW_POSTMASTER, .mailbox = "Postmaster@x.org" },
        { "source route",            PATH, "<@a.example,@b.example:u@c.example>", .mailbox = "u@c.example", .consumed = 35, .local_len = 1 },
        { "source route one",        PATH, "<@a.example:u@c.example>", .mailbox = "u@c.example" },
        { "source route no colon",   PATH, "<@a.example,u@c.example>", .ret = -EBADMSG },
        { "source route empty",      PATH, "<@:u@c.example>", .ret = -EBADMSG },
        { "no angle brackets",       PATH, "a@b.example", .ret = -EBADMSG },
        { "unclosed",                PATH, "<a@b.example", .ret = -EBADMSG },
        { "space after <",           PATH, "< a@b.example>", .ret = -EBADMSG },
        { "space before >",          PATH, "<a@b.example >", .ret = -EBADMSG },
        { "quoted >",                PATH, "<\"a>b\"@c.example>", .mailbox = "\"a>b\"@c.example", .consumed = 17 },
        { "path 254 mailbox",        PATH, "<" A64 "@" D189 ">", .mailbox = A64 "@" D189, .consumed = 256 },
        { "route path 256",          PATH, "<@" D249 ":a@b>", .mailbox = "a@b", .consumed = 256 },
        { "route path 257",          PATH, "<@" D250 ":a@b>", .ret = -E2BIG },
        { "path UTF-8",              PATH, "<\xc3\xa9@x.org>", .flags = SMTP_PATH_UTF8, .mailbox = "\xc3\xa9@x.org", .utf8 = true },
        { "path UTF-8 refused",      PATH, "<\xc3\xa9@x.org>", .ret = -EILSEQ },
};

START_TEST(test_mailbox_table)
{
        for (size_t i = 0; i < ELEMENTSOF(mailbox_cases); i++) {
                const MailboxCase *c = &mailbox_cases[i];
                size_t len = c->len ?: strlen(c->input), consumed = 0;
                SmtpPath p = SMTP_PATH_NULL;
                int r;

                if (c->mode == PATH)
                        r = smtp_path_parse(c->input, len, c->flags, &p, &consumed);
                else
                        r = smtp_mailbox_parse(c->input, len, c->flags, &p);
                ck_assert_msg(r == c->ret, "case '%s': got %d, expected %d", c->name, r, c->ret);
                if (r < 0) {
                        ck_assert_msg(p.mailbox == NULL, "case '%s': output written on error", c->name);
                        continue;
                }

                const char *m = c->mailbox ?: c->input;
                ck_assert_msg(p.mailbox && strcmp(p.mailbox, m) == 0,
                              "case '%s': mailbox '%s', expected '%s'", c->name, p.mailbox, m);
                if (c->local_len)
                        ck_assert_msg(p.local_len == c->local_len, "case '%s': local_len %zu, expected %zu",
                                      c->name, p.local_len, c->local_len);
                if (c->consumed)
                        ck_assert_msg(consumed == c->consumed, "case '%s': consumed %zu, expected %zu",
                                      c->name, consumed, c->consumed);
                ck_assert_msg(p.address_literal == c->literal, "case '%s': address_literal", c->name);
                ck_assert_msg(p.utf8 == c->utf8, "case '%s': utf8", c->name);
                ck_assert_msg(p.is_null == c->is_null, "case '%s': is_null", c->name);
                ck_assert_msg(p.is_postmaster == c->is_postmaster, "case '%s': is_postmaster", c->name);
                smtp_path_done(&p);
                ck_assert_ptr_null(p.mailbox);
        }
}
END_TEST

typedef struct EnvelopeCase {
        const char *name;
        bool is_mail;
        const char *input;
        SmtpPathFlags flags;
        int ret;
        const char *mailbox;
        size_t n_params;
        const char *param0, *value0;   /* first parameter, when n_params > 0 */
        bool utf8;
} EnvelopeCase;

#define P16 " A=1 B=1 C=1 D=1 E=1 F=1 G=1 H=1 I=1 J=1 K=1 L=1 M=1 N=1 O=1 P=1"

static const EnvelopeCase envelope_cases[] = {
        { "mail plain",              true,  "FROM:<a@b.example>", .mailbox = "a@b.example" },
        { "mail lower case",         true,  "from:<a@b.example>", .mailbox = "a@b.example" },
        { "mail mixed case",         true,  "FrOm:<a@b.example>", .mailbox = "a@b.example" },
        { "mail null",               true,  "FROM:<>", .mailbox = "" },
        { "mail postmaster refused", true,  "FROM:<Postmaster>", .ret = -EBADMSG },
        { "mail space refused",      true,  "FROM: <a@b.example>", .ret = -EBADMSG },
        { "mail space lenient",      true,  "FROM: <a@b.example>", SMTP_PATH_LENIENT_SPACE, .mailbox = "a@b.example" },
        { "mail two spaces lenient", true,  "FROM:  <a@b.example>", SMTP_PATH_LENIENT_SPACE, .ret = -EBADMSG },
        { "mail space before colon", true,  "FROM :<a@b.example>", SMTP_PATH_LENIENT_SPACE, .ret = -EBADMSG },
        { "mail no colon",           true,  "FROM<a@b.example>", .ret = -EBADMSG },
        { "mail TO:",                true,  "TO:<a@b.example>", .ret = -EBADMSG },
        { "mail empty",              true,  "", .ret = -EBADMSG },
        { "mail no path",            true,  "FROM:", .ret = -EBADMSG },
        { "mail bare address",       true,  "FROM:a@b.example", .ret = -EBADMSG },
        { "mail params",             true,  "FROM:<a@b.example> SIZE=100 BODY=8BITMIME", .mailbox = "a@b.example",
          .n_params = 2, .param0 = "SIZE", .value0 = "100" },
        { "mail params many SP",     true,  "FROM:<a@b.example>   SIZE=100", .mailbox = "a@b.example",
          .n_params = 1, .param0 = "SIZE", .value0 = "100" },
        { "mail param no SP",        true,  "FROM:<a@b.example>SIZE=1", .ret = -EBADMSG },
        { "mail param empty value",  true,  "FROM:<a@b.example> SIZE=", .ret = -EBADMSG },
        { "mail param repeated",     true,  "FROM:<a@b.example> SIZE=1 size=2", .ret = -ENOTUNIQ },
        { "mail 16 params",          true,  "FROM:<a@b.example>" P16, .mailbox = "a@b.example", .n_params = 16,
          .param0 = "A", .value0 = "1" },
        { "mail 17 params",          true,  "FROM:<a@b.example>" P16 " Q=1", .ret = -E2BIG },
        { "mail keyword only",       true,  "FROM:<a@b.example> SMTPUTF8", .mailbox = "a@b.example", .n_params = 1,
          .param0 = "SMTPUTF8", .utf8 = false },
        { "mail UTF-8 via SMTPUTF8", true,  "FROM:<j\xc3\xb6rg@b.example> SMTPUTF8", .mailbox = "j\xc3\xb6rg@b.example",
          .n_params = 1, .param0 = "SMTPUTF8", .utf8 = true },
        { "mail UTF-8 without",      true,  "FROM:<j\xc3\xb6rg@b.example>", .ret = -EILSEQ },
        { "mail UTF-8 by flag",      true,  "FROM:<j\xc3\xb6rg@b.example>", SMTP_PATH_UTF8, .mailbox = "j\xc3\xb6rg@b.example",
          .utf8 = true },
        { "mail SMTPUTF8 value",     true,  "FROM:<a@b.example> SMTPUTF8=yes", .ret = -EBADMSG },
        { "mail UTF-8 param value",  true,  "FROM:<a@b.example> X=\xc3\xa4", .ret = -EILSEQ },
        { "mail UTF-8 param ok",     true,  "FROM:<a@b.example> SMTPUTF8 X=\xc3\xa4", .mailbox = "a@b.example",
          .n_params = 2, .param0 = "SMTPUTF8" },
        { "mail bad keyword",        true,  "FROM:<a@b.example> -X=1", .ret = -EBADMSG },
        { "mail source route",       true,  "FROM:<@relay.example:a@b.example>", .mailbox = "a@b.example" },
        { "mail path > 256",         true,  "FROM:<@" D250 ":a@b>", .ret = -E2BIG },
        { "rcpt plain",              false, "TO:<a@b.example>", .mailbox = "a@b.example" },
        { "rcpt lower case",         false, "to:<a@b.example>", .mailbox = "a@b.example" },
        { "rcpt null refused",       false, "TO:<>", .ret = -EBADMSG },
        { "rcpt null flag ignored",  false, "TO:<>", SMTP_PATH_ALLOW_NULL, .ret = -EBADMSG },
        { "rcpt postmaster",         false, "TO:<Postmaster>", .mailbox = "Postmaster" },
        { "rcpt FROM:",              false, "FROM:<a@b.example>", .ret = -EBADMSG },
        { "rcpt space lenient",      false, "TO: <a@b.example>", SMTP_PATH_LENIENT_SPACE, .mailbox = "a@b.example" },
        { "rcpt DSN params",         false, "TO:<a@b.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b.example",
          .mailbox = "a@b.example", .n_params = 2, .param0 = "NOTIFY", .value0 = "SUCCESS,FAILURE" },
        { "rcpt SMTPUTF8 no effect", false, "TO:<j\xc3\xb6rg@b.example> SMTPUTF8", .ret = -EILSEQ },
        { "rcpt UTF-8 by flag",      false, "TO:<j\xc3\xb6rg@b.example>", SMTP_PATH_UTF8, .mailbox = "j\xc3\xb6rg@b.example",
          .utf8 = true },
        { "rcpt trailing garbage",   false, "TO:<a@b.example>x", .ret = -EBADMSG },
        { "rcpt unclosed",           false, "TO:<a@b.example", .ret = -EBADMSG },
};

START_TEST(test_envelope_table)
{
        for (size_t i = 0; i < ELEMENTSOF(envelope_cases); i++) {
                const EnvelopeCase *c = &envelope_cases[i];
                SmtpEnvelopeArg a = SMTP_ENVELOPE_ARG_NULL;
                int r;

                r = smtp_envelope_arg_parse(c->input, strlen(c->input), c->is_mail, c->flags, &a);
                ck_assert_msg(r == c->ret, "case '%s': got %d, expected %d", c->name, r, c->ret);
                if (r < 0) {
                        ck_assert_msg(!a.path.mailbox && !a.params.params, "case '%s': output on error", c->name);
                        continue;
                }
                ck_assert_msg(strcmp(a.path.mailbox, c->mailbox) == 0, "case '%s': mailbox '%s'", c->name,
                              a.path.mailbox);
                ck_assert_msg(a.params.n_params == c->n_params, "case '%s': %zu params", c->name, a.params.n_params);
                if (c->n_params > 0) {
                        ck_assert_str_eq(a.params.params[0].keyword, c->param0);
                        if (c->value0)
                                ck_assert_str_eq(a.params.params[0].value, c->value0);
                }
                ck_assert_msg(a.path.utf8 == c->utf8, "case '%s': utf8", c->name);
                ck_assert(a.path.is_null == (c->is_mail && c->mailbox[0] == '\0'));
                smtp_envelope_arg_done(&a);
                ck_assert_ptr_null(a.path.mailbox);
                ck_assert_ptr_null(a.params.params);
        }
}
END_TEST

static Suite* smtp_address_suite(void) {
        Suite *s = suite_create("smtp-address");
        TCase *tc;

        tc = tcase_create("mailbox and path");
        tcase_add_test(tc, test_mailbox_table);
        suite_add_tcase(s, tc);

        tc = tcase_create("MAIL/RCPT argument");
        tcase_add_test(tc, test_envelope_table);
        suite_add_tcase(s, tc);

        return s;
}

CHECK_MAIN(smtp_address_suite);
