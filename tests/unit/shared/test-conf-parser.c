/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check-main.h"
#include "conf-parser.h"
#include "fd-util.h"
#include "log.h"
#include "stderr-capture.h"
#include "string-util.h"

typedef struct TestConfig {
        bool flag;
        unsigned count;
        uint64_t size;
        usec_t timeout;
        char *name;
        char *path;
        char **list;
        SocketAddress address;
        char *other;
        int mode;
        unsigned at_least_3;
        usec_t deadline;
        double share;
} TestConfig;

static void test_config_done(TestConfig *c) {
        free(c->name);
        free(c->path);
        strv_free(c->list);
        free(c->other);
        *c = (TestConfig) {};
}

/* A parser that explains its refusal through config_parser_set_error(). */
static int config_parse_mode(const char *filename, unsigned line, const char *section, const char *lvalue,
                             int ltype, const char *rvalue, void *data, void *userdata) {
        if (streq(rvalue, "strict")) {
                *(int*) data = 1;
                return 0;
        }
        if (streq(rvalue, "relaxed")) {
                *(int*) data = 2;
                return 0;
        }
        config_parser_set_error(userdata, "%s= must be strict or relaxed, not '%s'", lvalue, rvalue);
        return -EINVAL;
}

static const ConfigTableItem table[] = {
        { "Test",  "Flag",    config_parse_bool,           0, offsetof(TestConfig, flag)    },
        { "Test",  "Count",   config_parse_unsigned,       0, offsetof(TestConfig, count)   },
        { "Test",  "Size",    config_parse_size,           0, offsetof(TestConfig, size)    },
        { "Test",  "Timeout", config_parse_sec,            0, offsetof(TestConfig, timeout) },
        { "Test",  "Name",    config_parse_string,         0, offsetof(TestConfig, name)    },
        { "Test",  "Path",    config_parse_path,           0, offsetof(TestConfig, path)    },
        { "Test",  "List",    config_parse_strv,           0, offsetof(TestConfig, list)    },
        { "Test",  "Address", config_parse_socket_address, 0, offsetof(TestConfig, address) },
        { "Test",  "Mode",    config_parse_mode,           0, offsetof(TestConfig, mode)    },
        { "Test",  "AtLeast3", config_parse_unsigned_min,  3, offsetof(TestConfig, at_least_3) },
        { "Test",  "Deadline", config_parse_timeout,       0, offsetof(TestConfig, deadline) },
        { "Test",  "Share",   config_parse_probability,    0, offsetof(TestConfig, share)   },
        { "Other", "Key",     config_parse_string,         0, offsetof(TestConfig, other)   },
};

static int parse(const char *text, TestConfig *c, ConfigError *e) {
        return config_parse_text("test.conf", text, strlen(text), table, ELEMENTSOF(table), c, e);
}

START_TEST(test_good_file)
{
        TestConfig c = {};
        ConfigError e = CONFIG_ERROR_NULL;
        _cleanup_free_ char *a = NULL;
        const char *text =
                "# a comment\n"
                "; another comment\n"
                "\n"
                "[Test]\n"
                "Flag = yes\n"
                "  Count=42  \n"
                "Size=10M\r\n"
                "Timeout=1min 30s\n"
                "Name=  mail.example.org \n"
                "Path=/etc/mailsec/x.pem\n"
                "List=a b\n"
                "List=c\n"
                "Address=[::1]:10025\n"
                "Mode=relaxed\n"
                "AtLeast3=3\n"
                "Deadline=infinity\n"
                "Share=0.25\n"
                "[Other]\n"
                "Key=value with = sign";

        ck_assert_int_eq(parse(text, &c, &e), 0);
        ck_assert_ptr_null(e.message);
        ck_assert(c.flag);
        ck_assert_uint_eq(c.count, 42);
        ck_assert_uint_eq(c.size, 10 * 1024 * 1024);
        ck_assert_uint_eq(c.timeout, 90 * USEC_PER_SEC);
        ck_assert_str_eq(c.name, "mail.example.org");
        ck_assert_str_eq(c.path, "/etc/mailsec/x.pem");
        ck_assert_uint_eq(c.at_least_3, 3);
        ck_assert_uint_eq(c.deadline, USEC_INFINITY);
        ck_assert(c.share == 0.25);
        ck_assert_uint_eq(strv_length(c.list), 3);
        ck_assert_str_eq(c.list[0], "a");
        ck_assert_str_eq(c.list[1], "b");
        ck_assert_str_eq(c.list[2], "c");
        ck_assert_int_eq(c.address.sockaddr.ss_family, AF_INET6);
        ck_assert_int_eq(socket_address_to_string(&c.address, &a), 0);
        ck_assert_str_eq(a, "[::1]:10025");
        ck_assert_int_eq(c.mode, 2);
        ck_assert_str_eq(c.other, "value with = sign");

        /* An empty value resets strings and lists. */
        ck_assert_int_eq(parse("[Test]\nName=\nList=\n", &c, &e), 0);
        ck_assert_ptr_null(c.name);
        ck_assert_ptr_null(c.list);

        test_config_done(&c);
}
END_TEST

START_TEST(test_continuation)
{
        TestConfig c = {};
        ConfigError e = CONFIG_ERROR_NULL;

        ck_assert_int_eq(parse("[Test]\n"
                               "List=one \\\n"
                               "  two\\\n"
                               "# a comment inside is skipped\n"
                               "  three\n"
                               "Count=7\n", &c, &e), 0);
        ck_assert_uint_eq(strv_length(c.list), 3);
        ck_assert_str_eq(c.list[0], "one");
        ck_assert_str_eq(c.list[1], "two");
        ck_assert_str_eq(c.list[2], "three");
        ck_assert_uint_eq(c.count, 7);

        /* A continued bad value is reported at the line where it starts. */
        ck_assert_int_eq(parse("[Test]\n"
                               "\n"
                               "Count=1\\\n"
                               "2\n", &c, &e), -EINVAL);
        ck_assert_uint_eq(e.line, 3);

        /* A backslash on the last line of the file ends the value. */
        ck_assert_int_eq(parse("[Test]\nName=x\\", &c, &e), 0);
        ck_assert_str_eq(c.name, "x");

        config_error_done(&e);
        test_config_done(&c);
}
END_TEST

START_TEST(test_unknown_warns)
{
        TestConfig c = {};
        ConfigError e = CONFIG_ERROR_NULL;
        StderrCapture cap;
        _cleanup_free_ char *out = NULL;
        int r;

        log_set_target(LOG_TARGET_CONSOLE);
        log_set_max_level(LOG_INFO);

        stderr_capture_begin(&cap);
        r = parse("[Test]\n"
                  "Count=1\n"
                  "Bogus=2\n"
                  "[Nowhere]\n"
                  "Key=3\n"
                  "[X-Notes]\n"
                  "Anything=4\n"
                  "[Test]\n"
                  "X-Local=5\n"
                  "no equals sign\n"
                  "Count=9\n", &c, &e);
        out = stderr_capture_end(&cap);

        ck_assert_int_eq(r, 0);
        ck_assert_ptr_null(e.message);
        ck_assert_uint_eq(c.count, 9);
        ck_assert_ptr_nonnull(strstr(out, "<4>test.conf:3: Unknown key 'Bogus' in section [Test], ignoring"));
        ck_assert_ptr_nonnull(strstr(out, "<4>test.conf:4: Unknown section 'Nowhere', ignoring"));
        ck_assert_ptr_nonnull(strstr(out, "test.conf:10: Missing '='"));
        /* Keys in an unknown section are covered by the section's warning, X- is silent. */
        ck_assert_ptr_null(strstr(out, "'Key'"));
        ck_assert_ptr_null(strstr(out, "X-Notes"));
        ck_assert_ptr_null(strstr(out, "X-Local"));

        test_config_done(&c);
}
END_TEST

static const struct {
        const char *name;
        const char *text;
        int error;
        unsigned line;
        const char *message;    /* substring of ConfigError.message */
} bad_cases[] = {
        { "bad bool",          "[Test]\nFlag=maybe\n",                       -EINVAL, 2, "Invalid boolean for Flag=: maybe" },
        { "empty bool",        "[Test]\n\nFlag=\n",                          -EINVAL, 3, "Flag=" },
        { "bad size",          "# c\n[Test]\nCount=1\nSize=10X\n",           -EINVAL, 4, "Invalid size for Size=: 10X" },
        { "size overflow",     "[Test]\nSize=99999999999999999999\n",        -ERANGE, 2, "Size=" },
        { "negative size",     "[Test]\nSize=-1\n",                          -EINVAL, 2, "Size=" },
        { "bad sec",           "[Test]\nTimeout=5 minutes please\n",         -EINVAL, 2, "Invalid time span for Timeout=" },
        { "bad unsigned",      "[Test]\nCount=12a\n",                        -EINVAL, 2, "Invalid number for Count=: 12a" },
        { "below minimum",     "[Test]\nAtLeast3=2\n",                       -ERANGE, 2, "AtLeast3= must be at least 3: 2" },
        { "zero timeout",      "[Test]\nDeadline=0\n",                       -ERANGE, 2, "Deadline= must not be 0" },
        { "share above 1",     "[Test]\nShare=1.5\n",                        -EINVAL, 2, "a number from 0 to 1 expected" },
        { "share negative",    "[Test]\nShare=-0.1\n",                       -EINVAL, 2, "Share=" },
        { "share not a number", "[Test]\nShare=half\n",                      -EINVAL, 2, "Share=" },
        { "share nan",         "[Test]\nShare=nan\n",                        -EINVAL, 2, "Share=" },
        { "bad address host",  "[Test]\n\n\n\nAddress=mx.example.org:25\n",  -EINVAL, 5, "Invalid socket address for Address=" },
        { "bad address port",  "[Test]\nAddress=127.0.0.1:0\n",              -EINVAL, 2, "Address=" },
        { "relative path",     "[Test]\nPath=etc/x\n",                       -EINVAL, 2, "absolute" },
        { "custom message",    "[Test]\nMode=lax\n",                         -EINVAL, 2, "Mode= must be strict or relaxed, not 'lax'" },
        { "bad section",       "[Test\nFlag=yes\n",                          -EBADMSG, 1, "Invalid section header" },
        { "empty section",     "[]\n",                                       -EBADMSG, 1, "Invalid section header" },
        { "nul byte",          "[Test]\nName=a\0b\n",                        -EBADMSG, 0, "NUL" },
};

START_TEST(test_bad_values)
{
        for (size_t i = 0; i < ELEMENTSOF(bad_cases); i++) {
                TestConfig c = {};
                ConfigError e = CONFIG_ERROR_NULL;
                size_t len = strlen(bad_cases[i].text);
                int r;

                if (streq(bad_cases[i].name, "nul byte"))
                        len = sizeof("[Test]\nName=a\0b\n") - 1;

                r = config_parse_text("bad.conf", bad_cases[i].text, len, table, ELEMENTSOF(table), &c, &e);
                ck_assert_msg(r == bad_cases[i].error, "%s: got %d, expected %d", bad_cases[i].name, r,
                              bad_cases[i].error);
                ck_assert_msg(e.line == bad_cases[i].line, "%s: line %u, expected %u", bad_cases[i].name,
                              e.line, bad_cases[i].line);
                ck_assert_str_eq(e.filename, "bad.conf");
                ck_assert_ptr_nonnull(e.message);
                ck_assert_msg(strstr(e.message, bad_cases[i].message),
                              "%s: message '%s' lacks '%s'", bad_cases[i].name, e.message, bad_cases[i].message);
                config_error_done(&e);
                ck_assert_ptr_null(e.message);
                test_config_done(&c);
        }
}
END_TEST

START_TEST(test_limits)
{
        TestConfig c = {};
        ConfigError e = CONFIG_ERROR_NULL;
        size_t n = 64 * 1024 + 16;
        char *text;

        /* One line longer than 64 KiB. */
        text = malloc(n + 32);
        ck_assert_ptr_nonnull(text);
        strcpy(text, "[Test]\nName=");
        memset(text + strlen(text), 'a', n);
        text[12 + n] = 0;
        ck_assert_int_eq(config_parse_text("long.conf", text, strlen(text), table, ELEMENTSOF(table), &c, &e),
                         -ENOBUFS);
        ck_assert_uint_eq(e.line, 2);
        config_error_done(&e);
        free(text);

        /* Exactly at the limit is fine. */
        n = 64 * 1024 - strlen("Name=");
        text = malloc(n + 32);
        ck_assert_ptr_nonnull(text);
        strcpy(text, "[Test]\nName=");
        memset(text + strlen(text), 'b', n);
        text[12 + n] = 0;
        ck_assert_int_eq(config_parse_text("max.conf", text, strlen(text), table, ELEMENTSOF(table), &c, &e), 0);
        ck_assert_uint_eq(strlen(c.name), n);
        free(text);

        /* More than 4 MiB in total, in short lines. */
        n = 4 * 1024 * 1024 + 1;
        text = malloc(n + 1);
        ck_assert_ptr_nonnull(text);
        memset(text, '\n', n);
        text[n] = 0;
        ck_assert_int_eq(config_parse_text("big.conf", text, n, table, ELEMENTSOF(table), &c, &e), -EFBIG);
        ck_assert_ptr_nonnull(e.message);
        config_error_done(&e);
        free(text);

        test_config_done(&c);
}
END_TEST

/* Files and drop-ins */

static char tmpdir[] = "/tmp/test-conf-parser-XXXXXX";

static void write_file(const char *dir, const char *name, const char *text) {
        char path[512];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_ge(fputs(text, f), 0);
        ck_assert_int_eq(fclose(f), 0);
}

static void setup_tmpdir(void) {
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown_tmpdir(void) {
        char cmd[256];

        snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", tmpdir);
        ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_dropins)
{
        _cleanup_free_ char *main_path = NULL, *dropin_dir = NULL;
        TestConfig c = {};
        ConfigError e = CONFIG_ERROR_NULL;

        ck_assert_int_ge(asprintf_safe(&main_path, "%s/x.conf", tmpdir), 0);
        ck_assert_int_ge(asprintf_safe(&dropin_dir, "%s/x.conf.d", tmpdir), 0);
        ck_assert_int_eq(mkdir(dropin_dir, 0755), 0);

        write_file(tmpdir, "x.conf", "[Test]\nCount=1\nName=main\nSize=1K\nList=m\n");
        /* Written out of order on purpose: lexical order decides, not creation order. */
        write_file(dropin_dir, "20-second.conf", "[Test]\nName=second\nList=s\n");
        write_file(dropin_dir, "10-first.conf", "[Test]\nName=first\nCount=10\n");
        write_file(dropin_dir, "30-ignored.conf.disabled", "[Test]\nName=disabled\n");
        write_file(dropin_dir, "README", "not a drop-in\n");

        ck_assert_int_eq(config_parse_with_dropins(main_path, table, ELEMENTSOF(table), &c, &e), 0);
        ck_assert_ptr_null(e.message);
        ck_assert_uint_eq(c.count, 10);
        ck_assert_str_eq(c.name, "second");
        ck_assert_uint_eq(c.size, 1024);
        ck_assert_uint_eq(strv_length(c.list), 2);
        ck_assert_str_eq(c.list[0], "m");
        ck_assert_str_eq(c.list[1], "s");
        test_config_done(&c);

        /* An error in a drop-in names the drop-in and its line. */
        write_file(dropin_dir, "15-broken.conf", "[Test]\n# c\nFlag=perhaps\n");
        ck_assert_int_eq(config_parse_with_dropins(main_path, table, ELEMENTSOF(table), &c, &e), -EINVAL);
        ck_assert_ptr_nonnull(strstr(e.filename, "x.conf.d/15-broken.conf"));
        ck_assert_uint_eq(e.line, 3);
        config_error_done(&e);
        test_config_done(&c);

        /* Without the main file the drop-ins still apply. */
        ck_assert_int_eq(unlink(main_path), 0);
        ck_assert_int_eq(config_parse_file(main_path, table, ELEMENTSOF(table), &c, &e), -ENOENT);
        write_file(dropin_dir, "15-broken.conf", "[Test]\nFlag=on\n");
        ck_assert_int_eq(config_parse_with_dropins(main_path, table, ELEMENTSOF(table), &c, &e), 0);
        ck_assert(c.flag);
        ck_assert_uint_eq(c.count, 10);
        ck_assert_str_eq(c.name, "second");
        ck_assert_uint_eq(c.size, 0);
        test_config_done(&c);
}
END_TEST

START_TEST(test_nothing_there)
{
        _cleanup_free_ char *main_path = NULL;
        TestConfig c = { .count = 5 };
        ConfigError e = CONFIG_ERROR_NULL;

        ck_assert_int_ge(asprintf_safe(&main_path, "%s/absent.conf", tmpdir), 0);
        ck_assert_int_eq(config_parse_with_dropins(main_path, table, ELEMENTSOF(table), &c, &e), 0);
        ck_assert_uint_eq(c.count, 5);
        ck_assert_ptr_null(e.message);
}
END_TEST

START_TEST(test_string_form)
{
        /* config_parse_string() with the 7 arguments of config_parse_text() parses text. */
        TestConfig c = {};
        ConfigError e = CONFIG_ERROR_NULL;
        const char *text = "[Other]\nKey=v\n";
        char *s = NULL;

        ck_assert_int_eq(config_parse_string("s.conf", text, strlen(text), table, ELEMENTSOF(table), &c, &e), 0);
        ck_assert_str_eq(c.other, "v");
        test_config_done(&c);

        /* ... and with 8 it is the typed parser. */
        ck_assert_int_eq(config_parse_string("f", 1, "S", "K", 0, "value", &s, NULL), 0);
        ck_assert_str_eq(s, "value");
        ck_assert_int_eq(config_parse_string("f", 1, "S", "K", 0, "", &s, NULL), 0);
        ck_assert_ptr_null(s);
}
END_TEST

static Suite* conf_parser_suite(void) {
        Suite *s = suite_create("conf-parser");
        TCase *tc;

        tc = tcase_create("text");
        tcase_add_test(tc, test_good_file);
        tcase_add_test(tc, test_continuation);
        tcase_add_test(tc, test_unknown_warns);
        tcase_add_test(tc, test_bad_values);
        tcase_add_test(tc, test_limits);
        tcase_add_test(tc, test_string_form);
        suite_add_tcase(s, tc);

        tc = tcase_create("files");
        tcase_add_checked_fixture(tc, setup_tmpdir, teardown_tmpdir);
        tcase_add_test(tc, test_dropins);
        tcase_add_test(tc, test_nothing_there);
        suite_add_tcase(s, tc);

        return s;
}

CHECK_MAIN(conf_parser_suite);
