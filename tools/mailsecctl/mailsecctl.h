/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the verbs of mailsecctl share: exit codes, output helpers (mailsecctl-output.c)
 * and the local verbs that need no bus (mailsecctl-auth.c, mailsecctl-dkim.c). */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <systemd/sd-bus.h>

#include "macro.h"

#define EXIT_CALL_FAILED 1
#define EXIT_USAGE 2
#define EXIT_NOT_RUNNING 3

extern bool arg_json;

void json_string(FILE *f, const char *s);
void text_string(FILE *f, const char *s, int width);

/* "key: value" lines with right-aligned keys, or one JSON object, built field by field:
 *
 *         Output o = OUTPUT_INIT(stdout, 14);
 *         output_string(&o, "result", "pass");
 *         output_array_begin(&o, "dkim");
 *         output_object_begin(&o, "dkim[1]");     // the label prefixes the keys in text
 *         ...
 *         output_object_end(&o);
 *         output_array_end(&o);
 *         output_end(&o);
 *
 * JSON keys use '-' as written; NULL values are null in JSON and "-" in text. */
#define OUTPUT_DEPTH_MAX 8U
typedef struct Output {
        FILE *f;
        bool json;
        int width;
        unsigned depth;
        bool first[OUTPUT_DEPTH_MAX];
        const char *label;
        bool started;
} Output;
#define OUTPUT_INIT(file, w) { .f = (file), .json = arg_json, .width = (w) }

void output_string(Output *o, const char *key, const char *value);
void output_unsigned(Output *o, const char *key, uint64_t value);
void output_bool(Output *o, const char *key, bool value);
void output_array_begin(Output *o, const char *key);
void output_array_end(Output *o);
void output_object_begin(Output *o, const char *label);
void output_object_end(Output *o);
void output_end(Output *o);

/* The bus chosen by --system, --user or --host; prints why when it fails. */
int ctl_bus_connect(sd_bus **ret);
/* Says why a call failed; returns EXIT_NOT_RUNNING when the service is not there. */
int ctl_call_failed(const char *what, const sd_bus_error *e, int r);

/* Local verbs: argv[0] is the verb, options follow. Return an exit status. */
int verb_auth_spf(int argc, char *argv[]);
int verb_auth_verify(int argc, char *argv[]);
int verb_auth_dmarc(int argc, char *argv[]);
int verb_dkim_keygen(int argc, char *argv[]);
int verb_dkim_record(int argc, char *argv[]);
int verb_dkim_rotate(int argc, char *argv[]);
/* mailsecctl-spam.c: talk to mailsec-spamd */
int verb_spam(int argc, char *argv[]);

/* DNS for the local verbs (mailsecctl-auth.c): a stub resolver on a private event loop,
 * used synchronously. spec is "ADDR:PORT", "ADDR" (port 53) or NULL: the nameservers of
 * /etc/resolv.conf. */
typedef struct CtlResolver CtlResolver;
struct DnsAnswer;
int ctl_resolver_new(const char *spec, CtlResolver **ret);
CtlResolver* ctl_resolver_free(CtlResolver *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(CtlResolver*, ctl_resolver_free);
const char* ctl_resolver_description(const CtlResolver *r);
/* Fills *ret (DNS_ANSWER_NULL on entry) with a copy of the answer; failures of the lookup
 * are answers (tempfail ...). Returns -ENOMEM or -EIO when the lookup could not be run. */
int ctl_resolve(CtlResolver *r, const char *name, uint16_t type, struct DnsAnswer *ret);
