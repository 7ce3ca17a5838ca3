/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Runs public SPF test suites through spf_eval_*() with the fake zone of
 * spf-fake-zone.h:
 *
 *   test-spf-conformance openspf FILE.yml        the openspf / pyspf suite (libyaml)
 *   test-spf-conformance stalwart FILE.yml...    Stalwart mail-auth's SPF set (line format)
 *
 * The formats and the runner rules are described in spf-openspf/PROVENANCE.md and
 * stalwart-mail-auth/PROVENANCE.md. Prints one line per failing case and a last line
 * "N passed, N failed[, N skipped]". Cases listed in exceptions[] are skipped with the
 * reason printed; the expected data is never changed. */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "cleanup.h"
#include "spf-eval.h"
#include "spf-fake-zone.h"
#include "string-util.h"

/* Cases whose expectation contradicts RFC 7208 (and the openspf suite); keyed by the
 * case id up to the first space ("file.yml:LINE" for the Stalwart set). */
static const struct {
        const char *id;
        const char *reason;
} exceptions[] = {
        { "all.yml:14", "expects the unknown mechanism 'ip:' after -all to be ignored; RFC 7208 §4.6 makes "
                        "any syntax error in the record a permerror" },
        { "basic.yml:112", "expects 10 void lookups to be allowed; RFC 7208 §4.6.4 limits void lookups to 2 "
                           "(openspf case void-over-limit expects permerror)" },
        { "exists.yml:19", "expects exists: to match a name with only AAAA records; RFC 7208 §5.7 uses an A "
                           "query only" },
        { "macro.yml:35", "expects exists: to match a name with only AAAA records; RFC 7208 §5.7 uses an A "
                          "query only" },
};

static unsigned n_passed, n_failed, n_skipped;

static char* mfree_and_null(char *p) {
        free(p);
        return NULL;
}

static const char* exception_reason(const char *id) {
        size_t n = strcspn(id, " ");

        for (size_t i = 0; i < ELEMENTSOF(exceptions); i++)
                if (strlen(exceptions[i].id) == n && strncmp(exceptions[i].id, id, n) == 0)
                        return exceptions[i].reason;
        return NULL;
}

static int parse_ip(const char *s, SpfRequest *req) {
        if (inet_pton(AF_INET, s, &req->ip.in) == 1) {
                req->family = AF_INET;
                return 0;
        }
        if (inet_pton(AF_INET6, s, &req->ip.in6) == 1) {
                req->family = AF_INET6;
                return 0;
        }
        return -EINVAL;
}

/* Runs one case. expected: NULL-terminated list of acceptable results. helo_first:
 * check the HELO identity first, as the Stalwart set expects (its "HELO identity" and
 * "MAIL FROM identity" cases). */
static void run_case(FakeZone *z, const char *id, const char *ip, const char *mail_from, const char *helo,
                     const char *receiver, const char *default_exp, bool helo_first,
                     char * const *expected, const char *explanation) {
        SpfRequest req = {
                .mail_from = mail_from,
                .helo = helo,
                .receiver = receiver,
                .now = 1700000000,
                .default_explanation = default_exp,
        };
        _cleanup_(spf_eval_freep) SpfEval *e = NULL;
        const SpfOutcome *o;
        const char *reason, *got;
        bool ok = false;
        int r = 0;

        reason = exception_reason(id);
        if (reason) {
                printf("SKIP %s: %s\n", id, reason);
                n_skipped++;
                return;
        }

        if (parse_ip(ip, &req) < 0) {
                printf("FAIL %s: bad client address '%s' in the test data\n", id, ip);
                n_failed++;
                return;
        }

        if (helo_first && !isempty(mail_from)) {
                /* RFC 7208 §2.3: a "fail" of the HELO identity is conclusive; otherwise
                 * the MAIL FROM identity decides */
                SpfRequest h = req;

                h.mail_from = NULL;
                r = fake_zone_check(z, &h, &e);
                if (r >= 0) {
                        assert(spf_eval_result(e, &o) >= 0);
                        if (o->result != SPF_RESULT_FAIL)
                                e = spf_eval_free(e);
                }
        }
        if (!e)
                r = fake_zone_check(z, &req, &e);
        if (r < 0) {
                printf("FAIL %s: evaluation failed: %s\n", id, strerror(-r));
                n_failed++;
                return;
        }
        assert(spf_eval_result(e, &o) >= 0);
        got = spf_result_to_string(o->result);

        STRV_FOREACH(x, (char**) expected)
                if (strcaseeq(*x, got))
                        ok = true;
        if (!ok) {
                _cleanup_free_ char *want = strv_join((char**) expected, "|");
                printf("FAIL %s: got %s, expected %s (%s)\n", id, got, strna(want), strna(o->problem));
                n_failed++;
                return;
        }
        if (explanation && o->result == SPF_RESULT_FAIL && !streq_ptr(o->explanation, explanation)) {
                printf("FAIL %s: explanation '%s', expected '%s'\n", id, strna(o->explanation), explanation);
                n_failed++;
                return;
        }

        /* the header builders must work for every outcome */
        _cleanup_free_ char *rs = NULL, *ar = NULL;
        if (spf_eval_received_spf(e, &rs) < 0 || spf_eval_auth_results(e, &ar) < 0) {
                printf("FAIL %s: could not build the result header fields\n", id);
                n_failed++;
                return;
        }
        n_passed++;
}

/* ---- openspf (YAML) ---- */

static yaml_node_t* map_get(yaml_document_t *d, yaml_node_t *map, const char *key) {
        if (!map || map->type != YAML_MAPPING_NODE)
                return NULL;
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                yaml_node_t *k = yaml_document_get_node(d, p->key);

                if (k && k->type == YAML_SCALAR_NODE && streq((const char*) k->data.scalar.value, key))
                        return yaml_document_get_node(d, p->value);
        }
        return NULL;
}

static const char* scalar(yaml_node_t *n) {
        return n && n->type == YAML_SCALAR_NODE ? (const char*) n->data.scalar.value : NULL;
}

/* A TXT/SPF value: a string, or a list of character-strings joined. */
static int txt_value(yaml_document_t *d, yaml_node_t *v, char **ret, size_t *ret_len) {
        size_t len = 0;
        char *s = NULL;

        if (v->type == YAML_SCALAR_NODE) {
                s = strndup((const char*) v->data.scalar.value, v->data.scalar.length);
                len = v->data.scalar.length;
        } else if (v->type == YAML_SEQUENCE_NODE) {
                s = strdup("");
                for (yaml_node_item_t *i = v->data.sequence.items.start; s && i < v->data.sequence.items.top; i++) {
                        yaml_node_t *c = yaml_document_get_node(d, *i);
                        char *t;

                        if (!c || c->type != YAML_SCALAR_NODE) {
                                free(s);
                                return -EBADMSG;
                        }
                        t = realloc(s, len + c->data.scalar.length + 1);
                        if (!t) {
                                free(s);
                                return -ENOMEM;
                        }
                        s = t;
                        memcpy(s + len, c->data.scalar.value, c->data.scalar.length);
                        len += c->data.scalar.length;
                        s[len] = 0;
                }
        } else
                return -EBADMSG;
        if (!s)
                return -ENOMEM;
        *ret = s;
        *ret_len = len;
        return 0;
}

static int openspf_zone(yaml_document_t *d, yaml_node_t *zonedata, FakeZone *z) {
        int r;

        if (!zonedata)
                return 0;
        if (zonedata->type != YAML_MAPPING_NODE)
                return -EBADMSG;

        for (yaml_node_pair_t *p = zonedata->data.mapping.pairs.start; p < zonedata->data.mapping.pairs.top; p++) {
                const char *name = scalar(yaml_document_get_node(d, p->key));
                yaml_node_t *list = yaml_document_get_node(d, p->value);
                bool have_txt = false;

                if (!name || !list || list->type != YAML_SEQUENCE_NODE)
                        return -EBADMSG;

                r = fake_zone_add_marker(z, name);
                if (r < 0)
                        return r;

                for (int pass = 0; pass < 2; pass++)
                for (yaml_node_item_t *i = list->data.sequence.items.start; i < list->data.sequence.items.top; i++) {
                        yaml_node_t *item = yaml_document_get_node(d, *i);
                        yaml_node_pair_t *ip;
                        const char *type, *sv;
                        yaml_node_t *v;

                        if (item->type == YAML_SCALAR_NODE) {
                                if (pass == 0 && streq(scalar(item), "TIMEOUT")) {
                                        r = fake_zone_add_timeout(z, name, 0);
                                        if (r < 0)
                                                return r;
                                }
                                continue;
                        }
                        if (item->type != YAML_MAPPING_NODE ||
                            item->data.mapping.pairs.top - item->data.mapping.pairs.start != 1)
                                return -EBADMSG;
                        ip = item->data.mapping.pairs.start;
                        type = scalar(yaml_document_get_node(d, ip->key));
                        v = yaml_document_get_node(d, ip->value);
                        if (!type || !v)
                                return -EBADMSG;
                        sv = scalar(v);

                        /* pass 1 only copies SPF entries to TXT when the name has no TXT
                         * entry at all (rule 1 of PROVENANCE.md) */
                        if (pass == 1) {
                                if (have_txt || !streq(type, "SPF") || streq_ptr(sv, "NONE"))
                                        continue;
                        } else if (streq(type, "TXT"))
                                have_txt = true;

                        if (sv && streq(sv, "TIMEOUT")) {
                                uint16_t t = streq(type, "A") ? DNS_TYPE_A : streq(type, "AAAA") ? DNS_TYPE_AAAA :
                                             streq(type, "MX") ? DNS_TYPE_MX : streq(type, "PTR") ? DNS_TYPE_PTR :
                                             streq(type, "TXT") || pass == 1 ? DNS_TYPE_TXT : 99;
                                r = fake_zone_add_timeout(z, name, t);
                        } else if (streq(type, "TXT") || (pass == 1 && streq(type, "SPF"))) {
                                _cleanup_free_ char *txt = NULL;
                                size_t len;

                                if (streq_ptr(sv, "NONE"))
                                        continue;
                                r = txt_value(d, v, &txt, &len);
                                if (r >= 0)
                                        r = fake_zone_add_txt(z, name, txt, len);
                        } else if (pass == 1 || streq(type, "SPF"))
                                continue;       /* type 99 is never queried */
                        else if (streq(type, "A") || streq(type, "AAAA"))
                                r = sv ? fake_zone_add_a(z, name, sv) : -EBADMSG;
                        else if (streq(type, "PTR"))
                                r = sv ? fake_zone_add_name(z, name, DNS_TYPE_PTR, sv) : -EBADMSG;
                        else if (streq(type, "CNAME"))
                                r = sv ? fake_zone_add_name(z, name, DNS_TYPE_CNAME, sv) : -EBADMSG;
                        else if (streq(type, "MX")) {
                                yaml_node_t *pref, *ex;
                                unsigned pv;

                                if (v->type != YAML_SEQUENCE_NODE ||
                                    v->data.sequence.items.top - v->data.sequence.items.start != 2)
                                        return -EBADMSG;
                                pref = yaml_document_get_node(d, v->data.sequence.items.start[0]);
                                ex = yaml_document_get_node(d, v->data.sequence.items.start[1]);
                                if (!scalar(pref) || !scalar(ex) || parse_unsigned(scalar(pref), &pv) < 0)
                                        return -EBADMSG;
                                r = fake_zone_add_mx(z, name, (uint16_t) pv, scalar(ex));
                        } else {
                                fprintf(stderr, "unknown record type %s at %s\n", type, name);
                                return -EBADMSG;
                        }
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int run_openspf(const char *path) {
        _cleanup_fclose_ FILE *f = NULL;
        yaml_parser_t parser;
        int r = 0;

        f = fopen(path, "re");
        if (!f) {
                fprintf(stderr, "Cannot open %s: %m\n", path);
                return -errno;
        }
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_file(&parser, f);

        for (;;) {
                _cleanup_(fake_zone_done) FakeZone z = {};
                yaml_document_t d;
                yaml_node_t *root, *tests;

                if (!yaml_parser_load(&parser, &d)) {
                        fprintf(stderr, "%s: YAML error: %s (line %zu)\n", path, strna(parser.problem),
                                parser.problem_mark.line + 1);
                        r = -EBADMSG;
                        break;
                }
                root = yaml_document_get_root_node(&d);
                if (!root) {
                        yaml_document_delete(&d);
                        break;          /* end of the stream */
                }

                r = openspf_zone(&d, map_get(&d, root, "zonedata"), &z);
                if (r < 0) {
                        fprintf(stderr, "%s: bad zonedata in scenario '%s'\n", path,
                                strna(scalar(map_get(&d, root, "description"))));
                        yaml_document_delete(&d);
                        break;
                }

                tests = map_get(&d, root, "tests");
                if (tests && tests->type == YAML_MAPPING_NODE)
                        for (yaml_node_pair_t *p = tests->data.mapping.pairs.start; p < tests->data.mapping.pairs.top; p++) {
                                const char *id = scalar(yaml_document_get_node(&d, p->key));
                                yaml_node_t *t = yaml_document_get_node(&d, p->value);
                                yaml_node_t *res = map_get(&d, t, "result");
                                _cleanup_strv_free_ char **expected = NULL;

                                if (res && res->type == YAML_SEQUENCE_NODE) {
                                        for (yaml_node_item_t *i = res->data.sequence.items.start;
                                             i < res->data.sequence.items.top; i++)
                                                if (strv_extend(&expected, strempty(scalar(yaml_document_get_node(&d, *i)))) < 0)
                                                        return -ENOMEM;
                                } else if (strv_extend(&expected, strempty(scalar(res))) < 0)
                                        return -ENOMEM;

                                run_case(&z, strna(id),
                                         strempty(scalar(map_get(&d, t, "host"))),
                                         scalar(map_get(&d, t, "mailfrom")),
                                         scalar(map_get(&d, t, "helo")),
                                         /* receiver= */ NULL, "DEFAULT", /* helo_first= */ false, expected,
                                         scalar(map_get(&d, t, "explanation")));
                        }
                yaml_document_delete(&d);
        }

        yaml_parser_delete(&parser);
        return r;
}

/* ---- Stalwart mail-auth (line format) ---- */

static char* skip_space(char *s) {
        while (*s == ' ' || *s == '\t')
                s++;
        return s;
}

static int stalwart_set(FakeZone *z, const char *kind, char *rest) {
        char *name = rest, *value, *save = NULL;
        uint16_t types[2] = {};
        int r;

        value = strchr(rest, ' ');
        if (!value)
                return -EBADMSG;
        *value++ = 0;
        value = skip_space(value);

        if (streq(kind, "spf") || streq(kind, "exp")) {
                fake_zone_remove(z, name, DNS_TYPE_TXT);
                return fake_zone_add_txt(z, name, value, strlen(value));
        }
        if (streq(kind, "ptr")) {
                /* the owner is the reverse name of the address: replace its PTR set */
                FakeZone tmp = {};
                r = fake_zone_add_ptr(&tmp, name, "x");
                if (r < 0)
                        return r;
                fake_zone_remove(z, tmp.entries[0].name, DNS_TYPE_PTR);
                fake_zone_done(&tmp);
                for (char *t = strtok_r(value, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
                        r = fake_zone_add_ptr(z, name, t);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        if (streq(kind, "a") || streq(kind, "aaaa")) {
                types[0] = streq(kind, "a") ? DNS_TYPE_A : DNS_TYPE_AAAA;
                fake_zone_remove(z, name, types[0]);
                for (char *t = strtok_r(value, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
                        r = fake_zone_add_a(z, name, t);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        if (streq(kind, "mx")) {
                unsigned n = 0;

                fake_zone_remove(z, name, DNS_TYPE_MX);
                for (char *t = strtok_r(value, ", ", &save); t; t = strtok_r(NULL, ", ", &save), n++) {
                        _cleanup_free_ char *host = NULL;

                        if (asprintf_safe(&host, "mx.%s.%u", t, n) < 0)
                                return -ENOMEM;
                        r = fake_zone_add_mx(z, name, (uint16_t) (n + 1), host);
                        if (r >= 0) {
                                fake_zone_remove(z, host, 0);
                                r = fake_zone_add_a(z, host, t);
                        }
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        return -EBADMSG;
}

static int run_stalwart(const char *path) {
        _cleanup_(fake_zone_done) FakeZone z = { .error_names = true };
        _cleanup_free_ char *line = NULL, *helo = NULL, *sender = NULL, *ip = NULL, *label = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        const char *base;
        size_t size = 0;
        unsigned lineno = 0;
        int r;

        f = fopen(path, "re");
        if (!f) {
                fprintf(stderr, "Cannot open %s: %m\n", path);
                return -errno;
        }
        base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;

        for (;;) {
                ssize_t n = getline(&line, &size, f);
                char *s, *colon, *rest;

                if (n < 0)
                        break;
                lineno++;
                if (n > 0 && line[n - 1] == '\n')
                        line[--n] = 0;

                if (streq(line, "---")) {
                        helo = mfree_and_null(helo);
                        sender = mfree_and_null(sender);
                        ip = mfree_and_null(ip);
                        continue;
                }
                s = strstrip(line);
                if (*s == '-')
                        s = strstrip(s + 1);
                if (*s == 0 || *s == '#' || streq(s, "records:") || streq(s, "tests:"))
                        continue;
                colon = strchr(s, ':');
                if (!colon) {
                        fprintf(stderr, "%s:%u: cannot read '%s'\n", path, lineno, s);
                        return -EBADMSG;
                }
                *colon = 0;
                rest = skip_space(colon + 1);

                if (streq(s, "name"))
                        r = free_and_strdup(&label, rest);
                else if (streq(s, "domain"))
                        r = free_and_strdup(&helo, rest);
                else if (streq(s, "sender"))
                        r = free_and_strdup(&sender, rest);
                else if (streq(s, "ip"))
                        r = free_and_strdup(&ip, rest);
                else if (streq(s, "expect")) {
                        _cleanup_strv_free_ char **expected = NULL;
                        _cleanup_free_ char *id = NULL;
                        char *exp = strchr(rest, ' ');

                        if (exp)
                                *exp++ = 0;
                        if (strv_extend(&expected, rest) < 0 ||
                            asprintf_safe(&id, "%s:%u (%s)", base, lineno, strna(label)) < 0)
                                return -ENOMEM;
                        run_case(&z, id, ip ?: "127.0.0.1", sender, helo ?: "", "localdomain.org",
                                 NULL, /* helo_first= */ true, expected, exp);
                        r = 0;
                } else
                        r = stalwart_set(&z, s, rest);
                if (r < 0) {
                        fprintf(stderr, "%s:%u: cannot apply '%s': %s\n", path, lineno, s, strerror(-r));
                        return r;
                }
        }
        return 0;
}

int main(int argc, char *argv[]) {
        int r = 0;

        if (argc < 3 || !(streq(argv[1], "openspf") || streq(argv[1], "stalwart"))) {
                fprintf(stderr, "usage: %s openspf|stalwart FILE...\n", argv[0]);
                return EXIT_FAILURE;
        }

        for (int i = 2; i < argc && r >= 0; i++)
                r = streq(argv[1], "openspf") ? run_openspf(argv[i]) : run_stalwart(argv[i]);

        if (n_skipped > 0)
                printf("%u passed, %u failed, %u skipped\n", n_passed, n_failed, n_skipped);
        else
                printf("%u passed, %u failed\n", n_passed, n_failed);
        if (r < 0) {
                fprintf(stderr, "The test data could not be read: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        return n_failed == 0 && n_passed > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
