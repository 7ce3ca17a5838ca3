/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Checks the RFC 7489 Appendix C schema transcribed in
 * tests/unit/authd/data/rfc7489-feedback.xsd (against which the unit tests validate the
 * reports mailsec writes) on aggregate reports written by others: Stalwart mail-auth's
 * dmarc-feedback samples (stalwart-mail-auth/PROVENANCE.md).
 *
 * The samples are parser tests, several deliberately outside the RFC schema, so each
 * one has an expected outcome: 003.xml (a real Fastmail report) must validate; each of
 * the others must be refused, and the first complaint must name the deviation the
 * sample is known for. A schema that was too lax would let those through; one that was
 * too strict, or not loadable, would refuse 003.xml.
 *
 *   test-dmarc-feedback-schema SCHEMA.xsd SAMPLE.xml...
 */

#include <libxml/parser.h>
#include <libxml/xmlschemas.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
        const char *file;       /* base name */
        const char *refusal;    /* NULL: must validate; else a word of the first error */
        const char *why;
} expected[] = {
        { "001.xml", "unknown-tag1", "unknown elements inside <date_range>" },
        { "002.xml", "version", "no <version> (Google omits it)" },
        { "003.xml", NULL, "a real report that follows the RFC schema" },
        { "004.xml", "urn:ietf:params:xml:ns:dmarc-2.0", "DMARCbis namespace" },
        { "005.xml", "fo", "no <fo> in <policy_published>" },
};

static char first_error[1024];

static void on_error(void *userdata, xmlErrorPtr e) {
        (void) userdata;
        if (first_error[0] == '\0' && e && e->message)
                snprintf(first_error, sizeof(first_error), "line %d: %s", e->line, e->message);
}

int main(int argc, char *argv[]) {
        xmlSchemaParserCtxtPtr pctx;
        xmlSchemaPtr schema;
        unsigned failed = 0, checked = 0;

        if (argc < 3) {
                fprintf(stderr, "usage: %s SCHEMA.xsd SAMPLE.xml...\n", argv[0]);
                return EXIT_FAILURE;
        }

        pctx = xmlSchemaNewParserCtxt(argv[1]);
        schema = pctx ? xmlSchemaParse(pctx) : NULL;
        if (!schema) {
                fprintf(stderr, "FAIL: cannot load schema %s\n", argv[1]);
                return EXIT_FAILURE;
        }

        for (int i = 2; i < argc; i++) {
                const char *base = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
                xmlSchemaValidCtxtPtr vctx;
                xmlDocPtr doc;
                size_t k;
                bool valid;

                for (k = 0; k < sizeof(expected) / sizeof(expected[0]); k++)
                        if (strcmp(expected[k].file, base) == 0)
                                break;
                if (k == sizeof(expected) / sizeof(expected[0])) {
                        fprintf(stderr, "FAIL: %s: no expected outcome listed\n", base);
                        failed++;
                        continue;
                }

                doc = xmlReadFile(argv[i], NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
                if (!doc) {
                        fprintf(stderr, "FAIL: %s: not well-formed XML\n", base);
                        failed++;
                        continue;
                }
                first_error[0] = '\0';
                vctx = xmlSchemaNewValidCtxt(schema);
                xmlSchemaSetValidStructuredErrors(vctx, on_error, NULL);
                valid = xmlSchemaValidateDoc(vctx, doc) == 0;
                xmlSchemaFreeValidCtxt(vctx);
                xmlFreeDoc(doc);
                checked++;

                if (!expected[k].refusal) {
                        if (valid)
                                printf("ok: %s validates (%s)\n", base, expected[k].why);
                        else {
                                fprintf(stderr, "FAIL: %s should validate (%s): %s\n",
                                        base, expected[k].why, first_error);
                                failed++;
                        }
                } else if (valid) {
                        fprintf(stderr, "FAIL: %s should be refused (%s)\n", base, expected[k].why);
                        failed++;
                } else if (!strstr(first_error, expected[k].refusal)) {
                        fprintf(stderr, "FAIL: %s refused for another reason than %s: %s\n",
                                base, expected[k].why, first_error);
                        failed++;
                } else
                        printf("ok: %s refused (%s): %s", base, expected[k].why, first_error);
        }

        xmlSchemaFree(schema);
        xmlSchemaFreeParserCtxt(pctx);
        xmlCleanupParser();
        printf("%u sample(s) checked, %u failure(s)\n", checked, failed);
        return failed == 0 && checked == sizeof(expected) / sizeof(expected[0]) ? EXIT_SUCCESS : EXIT_FAILURE;
}
