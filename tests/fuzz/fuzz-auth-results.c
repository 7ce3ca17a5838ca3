/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* fuzz-auth-results: bytes as an Authentication-Results field value through
 * auth_results_parse_authserv_id() and through the full reader auth_results_parse() (the
 * one that reads ARC-Authentication-Results for TrustedArcSealers=), and as a message
 * header block through auth_results_find_ours(). A parsed id is fed back to the builder:
 * whatever it accepts must format into a value that parses to the same id. */

#include <stdlib.h>
#include <string.h>

#include "auth-results.h"
#include "fuzz.h"
#include "macro.h"

#define FUZZ_AUTH_RESULTS_INPUT_MAX ((size_t) 64U * 1024U)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *s = (const char*) data;
        Rfc5322Field *fields = NULL;
        char *id = NULL;
        unsigned version = 0;
        int r, n;

        if (size > FUZZ_AUTH_RESULTS_INPUT_MAX)
                return 0;

        r = auth_results_parse_authserv_id(s, size, &id, &version);
        if (r == 0) {
                AuthResults *ar = NULL;
                char *value = NULL, *again = NULL;

                if (!id || id[0] == '\0')
                        abort();
                r = auth_results_new(id, &ar);
                if (r == 0) {
                        if (auth_results_add_dkim(ar, "pass", id, id, "s", id) == -ENOMEM ||
                            auth_results_format(ar, &value) < 0)
                                abort();
                        if (auth_results_parse_authserv_id(value, strlen(value), &again, NULL) < 0 ||
                            strcmp(again, id) != 0)
                                abort();
                        free(again);
                        free(value);
                        auth_results_free(ar);
                } else if (r != -EINVAL && r != -E2BIG)
                        abort();
                free(id);
        } else if (id)
                abort();

        {
                AuthResultsParsed *p = NULL;

                r = auth_results_parse(s, size, &p);
                if (r == 0) {
                        if (!p || !p->authserv_id || p->authserv_id[0] == '\0' ||
                            p->n_infos > AUTH_RESULTS_MAX_METHODS || (p->n_infos > 0 && !p->infos))
                                abort();
                        for (size_t i = 0; i < p->n_infos; i++) {
                                const AuthResultsInfo *in = p->infos + i;

                                if (!in->method || !in->result || in->n_properties > AUTH_RESULTS_MAX_PROPERTIES)
                                        abort();
                                for (const char *c = in->method; *c; c++)
                                        if (*c >= 'A' && *c <= 'Z')
                                                abort();
                                for (size_t k = 0; k < in->n_properties; k++)
                                        if (!in->properties[k].ptype || !in->properties[k].property ||
                                            !in->properties[k].value)
                                                abort();
                        }
                        auth_results_parsed_free(p);
                } else if (p || !IN_SET(r, -EBADMSG, -E2BIG, -ENOMEM))
                        abort();
        }

        n = auth_results_find_ours(s, size, NULL, "mx.example.com", &fields);
        if (n < 0 && fields)
                abort();
        for (int i = 0; i < n; i++)
                if (fields[i].raw_offset + fields[i].raw_len > size)
                        abort();
        free(fields);
        return 0;
}
