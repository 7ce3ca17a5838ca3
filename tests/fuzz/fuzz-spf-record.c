/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* fuzz-spf-record: the input is parsed as an SPF record (spf_record_parse()); every
 * domain-spec of a record that parses, and the input itself as a domain-spec and as an
 * explain-string, are macro-expanded with a fixed request (spf_macro_expand()). */

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "spf-macro.h"
#include "spf-record.h"

#define FUZZ_SPF_INPUT_MAX ((size_t) 8192U)

static void expand(const char *s, const SpfMacroContext *c, SpfMacroFlags flags) {
        char *out = NULL;
        int r;

        r = spf_macro_expand(s, c, flags, &out);
        if (r == 0) {
                if (!out)
                        abort();
                if ((flags & SPF_MACRO_DOMAIN) && strlen(out) > SPF_DOMAIN_NAME_MAX && strchr(out, '.'))
                        abort();
                if (strlen(out) > SPF_MACRO_EXPANSION_MAX)
                        abort();
                free(out);
        } else if (out)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        SpfMacroContext c = {
                .sender = "strong-bad@email.example.com",
                .local_part = "strong-bad",
                .sender_domain = "email.example.com",
                .domain = "email.example.com",
                .family = AF_INET6,
                .validated_name = NULL,
                .helo = "mx.example.org",
                .receiver = "mx.example.net",
                .now = 1700000000,
        };
        SpfRecord *rec = NULL;
        char *error = NULL, *str;
        int r;

        if (size > FUZZ_SPF_INPUT_MAX)
                return 0;
        if (inet_pton(AF_INET6, "2001:db8::cb01", &c.ip.in6) != 1)
                abort();

        r = spf_record_parse((const char*) data, size, &rec, &error);
        if (r == 0) {
                if (!rec || rec->n_mechanisms > SPF_RECORD_TERMS_MAX)
                        abort();
                for (size_t i = 0; i < rec->n_mechanisms; i++) {
                        const SpfMechanism *m = rec->mechanisms + i;

                        if (!m->text || m->cidr4 > 32 || m->cidr6 > 128)
                                abort();
                        if (m->domain_spec)
                                expand(m->domain_spec, &c, SPF_MACRO_DOMAIN);
                }
                if (rec->redirect)
                        expand(rec->redirect, &c, SPF_MACRO_DOMAIN);
                if (rec->exp)
                        expand(rec->exp, &c, SPF_MACRO_DOMAIN);
                spf_record_free(rec);
        } else if (r == -EBADMSG) {
                if (!error)
                        abort();
        } else if (r != -ENOMEM)
                abort();
        free(error);

        str = strndup((const char*) data, size);
        if (!str)
                return 0;
        expand(str, &c, SPF_MACRO_DOMAIN);
        expand(str, &c, SPF_MACRO_EXPLANATION);
        c.family = AF_INET;
        expand(str, &c, 0);
        free(str);
        return 0;
}
