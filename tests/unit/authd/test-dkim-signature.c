/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <string.h>

#include "check-main.h"
#include "cleanup.h"
#include "dkim-signature.h"

#define BH "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="
#define B "b=dGVzdA=="
#define BASE "v=1; a=rsa-sha256; d=example.com; s=sel; h=from:to; " BH "; " B

static const struct {
        const char *name;
        const char *in;
        const char *reason;     /* NULL: must parse */
} table[] = {
        { "minimal", BASE, NULL },
        { "trailing semicolon", BASE ";", NULL },
        { "folded everywhere", "v = 1 ;\r\n a=rsa-sha256;\r\n\td=example.com; s=sel;\r\n h = from :\r\n to ; " BH ";\r\n b=dGVz\r\n dA==", NULL },
        { "ed25519", "v=1; a=ed25519-sha256; d=example.com; s=sel; h=from; " BH "; b=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", NULL },
        { "rsa-sha1 recognised", "v=1; a=rsa-sha1; d=example.com; s=sel; h=from; bh=AAAAAAAAAAAAAAAAAAAAAAAAAAA=; " B, NULL },
        { "c relaxed only", BASE "; c=relaxed", NULL },
        { "c relaxed/relaxed", BASE "; c=relaxed/relaxed", NULL },
        { "c simple/relaxed", BASE "; c=simple/relaxed", NULL },
        { "i equals d", BASE "; i=joe@example.com", NULL },
        { "i subdomain", BASE "; i=@mail.example.com", NULL },
        { "l", BASE "; l=0", NULL },
        { "t and x", BASE "; t=100; x=200", NULL },
        { "q dns/txt", BASE "; q=dns/txt", NULL },
        { "q with other", BASE "; q=foo/bar:dns/txt", NULL },
        { "unknown tag ignored", BASE "; zz=whatever", NULL },
        { "z copied", BASE "; z=From:foo@eng.example.net|To:joe@example.com", NULL },
        { "selector with underscore and dots", "v=1; a=rsa-sha256; d=example.com; s=a_b.c-1; h=from; " BH "; " B, NULL },
        { "h case", "v=1; a=rsa-sha256; d=example.com; s=sel; h=FROM:Subject; " BH "; " B, NULL },

        { "empty", "", "missing v= tag" },
        { "missing v", "a=rsa-sha256; d=example.com; s=sel; h=from; " BH "; " B, "missing v= tag" },
        { "missing a", "v=1; d=example.com; s=sel; h=from; " BH "; " B, "missing a= tag" },
        { "missing b", "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; " BH, "missing b= tag" },
        { "missing bh", "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; " B, "missing bh= tag" },
        { "missing d", "v=1; a=rsa-sha256; s=sel; h=from; " BH "; " B, "missing d= tag" },
        { "missing h", "v=1; a=rsa-sha256; d=example.com; s=sel; " BH "; " B, "missing h= tag" },
        { "missing s", "v=1; a=rsa-sha256; d=example.com; h=from; " BH "; " B, "missing s= tag" },
        { "version 2", "v=2; a=rsa-sha256; d=example.com; s=sel; h=from; " BH "; " B, "unsupported signature version (v= must be 1)" },
        { "duplicate d", BASE "; d=example.org", "duplicate tag in signature" },
        { "duplicate v", BASE "; v=1", "duplicate tag in signature" },
        { "unknown algorithm", "v=1; a=rsa-sha512; d=example.com; s=sel; h=from; " BH "; " B, "unknown signing algorithm in a=" },
        { "bad canon", BASE "; c=relaxed/loose", "unknown canonicalization in c=" },
        { "bad domain", "v=1; a=rsa-sha256; d=legitimate.com(.attacker.com; s=sel; h=from; " BH "; " B, "d= is not a valid domain name" },
        { "empty label", "v=1; a=rsa-sha256; d=example..com; s=sel; h=from; " BH "; " B, "d= is not a valid domain name" },
        { "bad selector", "v=1; a=rsa-sha256; d=example.com; s=se/l; h=from; " BH "; " B, "s= is not a valid selector" },
        { "from not signed", "v=1; a=rsa-sha256; d=example.com; s=sel; h=to:subject; " BH "; " B, "From is not signed (h= lacks from)" },
        { "empty h element", "v=1; a=rsa-sha256; d=example.com; s=sel; h=from::to; " BH "; " B, "empty header name in h=" },
        { "h with space in name", "v=1; a=rsa-sha256; d=example.com; s=sel; h=from to; " BH "; " B, "header names in h= not separated by ':'" },
        { "i outside d", BASE "; i=joe@example.org", "i= domain is not d= or a subdomain of it" },
        { "i suffix but not subdomain", BASE "; i=joe@badexample.com", "i= domain is not d= or a subdomain of it" },
        { "i without at", BASE "; i=joe", "i= has no '@'" },
        { "x before t", BASE "; t=200; x=100", "x= is not after t=" },
        { "x equals t", BASE "; t=200; x=200", "x= is not after t=" },
        { "t not numeric", BASE "; t=12a", "t= is not a valid timestamp" },
        { "t too long", BASE "; t=1234567890123", "t= is not a valid timestamp" },
        { "l negative", BASE "; l=-1", "l= is not a valid length" },
        { "l overflow", BASE "; l=99999999999999999999999", "l= is not a valid length" },
        { "q without dns/txt", BASE "; q=http/well-known", "q= does not offer dns/txt" },
        { "b bad base64", "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; " BH "; b=dGVzd!==", "b= is not valid base64" },
        { "b bad padding", "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; " BH "; b=dGVzdA=", "b= is not valid base64" },
        { "b data after padding", "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; " BH "; b=dGVzdA==dA", "b= is not valid base64" },
        { "b empty", "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; " BH "; b=", "b= is empty" },
        { "bh wrong length", "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=dGVzdA==; " B, "bh= has the wrong length for SHA-256" },
        { "ed25519 wrong b length", "v=1; a=ed25519-sha256; d=example.com; s=sel; h=from; " BH "; " B, "b= has the wrong length for Ed25519" },
        { "empty tag-spec", "v=1;; " BH, "empty tag in tag list" },
        { "tag without equals", BASE "; foo", "tag without '='" },
        { "tag name starts with digit", BASE "; 1a=b", "tag name does not start with a letter" },
        { "control char in value", BASE "; n=a\001b", "invalid character in tag value" },
};

START_TEST(test_signature_table)
{
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                _cleanup_(dkim_signature_freep) DkimSignature *sig = NULL;
                const char *reason = NULL;
                int r;

                r = dkim_signature_parse(table[i].in, strlen(table[i].in), &sig, &reason);
                if (!table[i].reason)
                        ck_assert_msg(r == 0 && sig, "%s: refused: %s", table[i].name, reason ? reason : "?");
                else {
                        ck_assert_msg(r == -EBADMSG, "%s: accepted", table[i].name);
                        ck_assert_msg(reason && strcmp(reason, table[i].reason) == 0, "%s: reason \"%s\"",
                                      table[i].name, reason ? reason : "(null)");
                }
        }
}
END_TEST

START_TEST(test_signature_fields)
{
        static const char v[] = "v=1; a=ed25519-sha256; c=relaxed; d=Example.COM; s=Sel; h=from : To;\r\n"
                " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; l=42; t=10; x=20;\r\n"
                " b= AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA== ;";
        _cleanup_(dkim_signature_freep) DkimSignature *sig = NULL;

        ck_assert_int_eq(dkim_signature_parse(v, strlen(v), &sig, NULL), 0);
        ck_assert_int_eq(sig->algorithm, DKIM_ALGORITHM_ED25519_SHA256);
        ck_assert_int_eq(sig->header_canon, DKIM_CANON_RELAXED);
        ck_assert_int_eq(sig->body_canon, DKIM_CANON_SIMPLE);
        ck_assert_str_eq(sig->domain, "example.com");
        ck_assert_str_eq(sig->selector, "sel");
        ck_assert_str_eq(sig->identity, "@example.com");
        ck_assert_uint_eq(sig->n_headers, 2);
        ck_assert_str_eq(sig->headers[0], "from");
        ck_assert_str_eq(sig->headers[1], "To");
        ck_assert(sig->has_length && sig->length == 42);
        ck_assert(sig->has_timestamp && sig->timestamp == 10);
        ck_assert(sig->has_expiration && sig->expiration == 20);
        ck_assert_uint_eq(sig->signature_len, 64);
        /* The b= region covers the value with its surrounding whitespace, up to the ';'. */
        ck_assert_int_eq(v[sig->b_region_start - 1], '=');
        ck_assert_int_eq(v[sig->b_region_end], ';');
}
END_TEST

START_TEST(test_base64)
{
        _cleanup_free_ uint8_t *p = NULL;
        _cleanup_free_ char *e = NULL;
        size_t n;

        ck_assert_int_eq(dkim_base64_decode("aGVs\r\n bG8=", 11, &p, &n), 0);
        ck_assert_uint_eq(n, 5);
        ck_assert_mem_eq(p, "hello", 5);
        ck_assert_int_eq(dkim_base64_encode(p, n, &e), 0);
        ck_assert_str_eq(e, "aGVsbG8=");
        free(p);
        p = NULL;
        ck_assert_int_eq(dkim_base64_decode("aGVsbG9=", 8, &p, &n), -EBADMSG);   /* stray bits */
        ck_assert_int_eq(dkim_base64_decode("a", 1, &p, &n), -EBADMSG);
        ck_assert_int_eq(dkim_base64_decode("====", 4, &p, &n), -EBADMSG);
        ck_assert_int_eq(dkim_base64_decode("", 0, &p, &n), 0);
        ck_assert_uint_eq(n, 0);
}
END_TEST

static Suite* dkim_signature_suite(void) {
        Suite *s = suite_create("dkim-signature");
        TCase *tc = tcase_create("parse");

        tcase_add_test(tc, test_signature_table);
        tcase_add_test(tc, test_signature_fields);
        tcase_add_test(tc, test_base64);
        suite_add_tcase(s, tc);
        return s;
}

CHECK_MAIN(dkim_signature_suite);
