/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include "bus-util.h"
#include "auth-results-id.h"
#include "cleanup.h"
#include "fd-util.h"
#include "log.h"
#include "memfd-util.h"
#include "proxyd-checks.h"
#include "proxyd-tx.h"
#include "rfc5322.h"
#include "string-util.h"

static const char *const auth_failure_action_table[_AUTH_FAILURE_MAX] = {
        [AUTH_FAILURE_TEMPFAIL] = "tempfail",
        [AUTH_FAILURE_ACCEPT]   = "accept",
};

const char* auth_failure_action_to_string(AuthFailureAction a) {
        if (a < 0 || a >= _AUTH_FAILURE_MAX)
                return NULL;
        return auth_failure_action_table[a];
}

AuthFailureAction auth_failure_action_from_string(const char *s) {
        if (!s)
                return _AUTH_FAILURE_INVALID;
        for (int i = 0; i < _AUTH_FAILURE_MAX; i++)
                if (streq(auth_failure_action_table[i], s))
                        return i;
        return _AUTH_FAILURE_INVALID;
}

static const char *const dmarc_quarantine_table[_DMARC_QUARANTINE_MAX] = {
        [DMARC_QUARANTINE_HEADER] = "header",
        [DMARC_QUARANTINE_REJECT] = "reject",
};

const char* dmarc_quarantine_to_string(DmarcQuarantine q) {
        if (q < 0 || q >= _DMARC_QUARANTINE_MAX)
                return NULL;
        return dmarc_quarantine_table[q];
}

DmarcQuarantine dmarc_quarantine_from_string(const char *s) {
        if (!s)
                return _DMARC_QUARANTINE_INVALID;
        for (int i = 0; i < _DMARC_QUARANTINE_MAX; i++)
                if (streq(dmarc_quarantine_table[i], s))
                        return i;
        return _DMARC_QUARANTINE_INVALID;
}

/* ---- Forged fields: Authentication-Results with our authserv-id, X-Spam-* ---- */

int message_strip_fields(const char *msg, size_t size, size_t max_line, HeaderFieldMatch match, void *userdata,
                         int *ret_fd, uint64_t *ret_size) {
        Rfc5322Limits limits = { .max_line = max_line, .max_field = SIZE_MAX, .max_fields = SIZE_MAX };
        _cleanup_close_ int fd = -EBADF;
        size_t offset = 0, copied = 0, removed = 0;
        Rfc5322Field f;
        int r;

        assert(msg || size == 0);
        assert(match);
        assert(ret_fd && ret_size);

        for (;;) {
                r = rfc5322_field_next(msg, size, &limits, &offset, NULL, &f);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                r = match(&f, userdata);
                if (r < 0)
                        return r;
                if (r == 0)
                        continue;

                if (fd < 0) {
                        fd = memfd_new_spool("mailsec-stripped");
                        if (fd < 0)
                                return fd;
                }
                r = memfd_append(fd, msg + copied, f.raw_offset - copied);
                if (r < 0)
                        return r;
                copied = f.raw_offset + f.raw_len;
                removed += f.raw_len;
        }

        if (fd < 0) {
                *ret_fd = -EBADF;
                *ret_size = size;
                return 0;
        }
        r = memfd_append(fd, msg + copied, size - copied);
        if (r < 0)
                return r;
        r = memfd_seal(fd);
        if (r < 0)
                return r;
        *ret_size = size - removed;
        *ret_fd = TAKE_FD(fd);
        return 1;
}

static int header_field_is_our_auth_results(const Rfc5322Field *f, void *userdata) {
        const char *authserv_id = userdata;
        _cleanup_free_ char *id = NULL;
        int r;

        if (!rfc5322_field_is(f, AUTH_RESULTS_FIELD_NAME))
                return 0;
        r = auth_results_parse_authserv_id(f->value, f->value_len, &id, NULL);
        if (r == -ENOMEM)
                return r;
        /* A field whose id cannot be read claims nobody's. */
        if (r < 0)
                return 0;
        return auth_results_authserv_id_equal(id, authserv_id);
}

int message_strip_auth_results(const char *msg, size_t size, size_t max_line, const char *authserv_id,
                               int *ret_fd, uint64_t *ret_size) {
        assert(authserv_id);
        return message_strip_fields(msg, size, max_line, header_field_is_our_auth_results, (void*) authserv_id,
                                    ret_fd, ret_size);
}

int header_field_is_spam(const Rfc5322Field *f, void *userdata) {
        return f->name_len >= STRLEN("X-Spam-") && strncasecmp(f->name, "X-Spam-", STRLEN("X-Spam-")) == 0;
}

/* ---- The bus calls ---- */

struct AuthState {
        Transaction *tx;
        sd_bus *bus;
        sd_bus_slot *spf_slot, *verify_slot;
        char *spf_result, *received_spf;
        bool verify_waiting;            /* VerifyMessage waits for CheckSpf */
        AuthRequest req;                /* strings owned below */
        char *client_ip, *helo, *session;
        AuthHandler handler;
        void *userdata;
};

AuthState* auth_state_free(AuthState *a) {
        if (!a)
                return NULL;
        sd_bus_slot_unref(a->spf_slot);
        sd_bus_slot_unref(a->verify_slot);
        sd_bus_unref(a->bus);
        free(a->spf_result);
        free(a->received_spf);
        free(a->client_ip);
        free(a->helo);
        free(a->session);
        free(a);
        return NULL;
}

static int auth_state_get(Transaction *t, sd_bus *bus, const AuthRequest *req, AuthState **ret) {
        AuthState *a = t->auth;

        if (!a) {
                a = calloc(1, sizeof(AuthState));
                if (!a)
                        return -ENOMEM;
                a->tx = t;
                t->auth = a;
        }
        if (!a->bus)
                a->bus = sd_bus_ref(bus);
        a->req = *req;
        if (free_and_strdup(&a->client_ip, req->client_ip) < 0 ||
            free_and_strdup(&a->helo, req->helo) < 0 ||
            free_and_strdup(&a->session, req->session) < 0)
                return -ENOMEM;
        a->req.client_ip = a->client_ip;
        a->req.helo = a->helo;
        a->req.session = a->session;
        *ret = a;
        return 0;
}

static int verify_start(AuthState *a);

static void verify_fail(AuthState *a, int error) {
        AuthHandler h = a->handler;

        a->handler = NULL;
        if (h)
                h(a->tx, NULL, error, a->userdata);
}

static int on_spf_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        AuthState *a = userdata;
        const char *result, *explanation, *received_spf;
        const sd_bus_error *e;
        int r;

        a->spf_slot = sd_bus_slot_unref(a->spf_slot);

        e = sd_bus_message_get_error(reply);
        if (e)
                log_debug("CheckSpf failed: %s: %s", e->name, strna(e->message));
        else {
                r = sd_bus_message_read(reply, "sss", &result, &explanation, &received_spf);
                if (r < 0)
                        log_debug_errno(r, "CheckSpf: malformed reply: %m");
                else if (free_and_strdup(&a->spf_result, result) < 0 ||
                         free_and_strdup(&a->received_spf, received_spf) < 0)
                        log_oom();
        }

        if (a->verify_waiting) {
                a->verify_waiting = false;
                r = verify_start(a);
                if (r < 0)
                        verify_fail(a, r);
        }
        return 0;
}

int auth_check_spf(sd_bus *bus, Transaction *t, const AuthRequest *req) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        AuthState *a;
        int r;

        assert(t && req);
        if (!bus)
                return -ENOTCONN;
        if (isempty(req->client_ip) || isempty(req->helo))
                return -EINVAL;

        r = auth_state_get(t, bus, req, &a);
        if (r < 0)
                return r;
        a->spf_slot = sd_bus_slot_unref(a->spf_slot);

        r = sd_bus_message_new_method_call(bus, &m, AUTH1_BUS_NAME, AUTH1_BUS_PATH, AUTH1_BUS_INTERFACE, "CheckSpf");
        if (r >= 0)
                r = sd_bus_message_append(m, "ssst", req->client_ip, req->helo, strempty(t->mail_from), UINT64_C(0));
        if (r < 0)
                return r;
        return bus_call_async_timeout(bus, &a->spf_slot, m, on_spf_reply, a, req->timeout);
}

/* The domain of "dmarc=... header.from=<domain>" in an A-R value, into buf. */
static const char* dmarc_domain(const char *ar, char *buf, size_t size) {
        const char *p = strstr(ar, "dmarc=");
        size_t n;

        if (!p)
                return NULL;
        p = strstr(p, "header.from=");
        if (!p)
                return NULL;
        p += strlen("header.from=");
        n = strcspn(p, " \t\r\n;()\"");
        if (n == 0 || n >= size)
                return NULL;
        memcpy(buf, p, n);
        buf[n] = 0;
        return buf;
}

/* A field value we may put into the header: line ends only as CRLF followed by WSP. */
static bool value_is_folded(const char *v) {
        for (const char *p = v; *p; p++)
                if (*p == '\n' || (*p == '\r' && (p[1] != '\n' || !IN_SET(p[2], ' ', '\t'))))
                        return false;
                else if (*p == '\r')
                        p++;
        return true;
}

static int on_verify_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        AuthState *a = userdata;
        const char *dmarc_result, *dmarc_policy, *disposition, *arc_result, *ar;
        const sd_bus_error *e;
        const void *data = NULL;
        size_t size = 0;
        _cleanup_free_ char *id = NULL;
        char domain[256];
        _cleanup_close_ int fd = -EBADF;
        uint64_t new_size = 0;
        AuthHandler h;
        int r;

        a->verify_slot = sd_bus_slot_unref(a->verify_slot);

        e = sd_bus_message_get_error(reply);
        if (e) {
                log_notice("VerifyMessage failed: %s: %s", e->name, strna(e->message));
                verify_fail(a, -sd_bus_message_get_errno(reply) ?: -EIO);
                return 0;
        }
        r = sd_bus_message_skip(reply, "a(ssss)");
        if (r >= 0)
                r = sd_bus_message_read(reply, "sssss", &dmarc_result, &dmarc_policy, &disposition,
                                        &arc_result, &ar);
        if (r >= 0 && (!(streq(disposition, "none") || streq(disposition, "quarantine") ||
                         streq(disposition, "reject")) ||
                       auth_results_parse_authserv_id(ar, strlen(ar), &id, NULL) < 0 ||
                       !value_is_folded(ar) || (a->received_spf && strpbrk(a->received_spf, "\r\n"))))
                r = -EBADMSG;
        if (r < 0) {
                log_notice_errno(r, "VerifyMessage: malformed reply: %m");
                verify_fail(a, r);
                return 0;
        }

        r = memfd_map_sealed(a->tx->spool_fd, UINT64_MAX, &data, &size);
        if (r >= 0) {
                r = message_strip_auth_results(data, size, a->req.max_line, id, &fd, &new_size);
                munmap((void*) data, size);
        }
        if (r < 0) {
                log_notice_errno(r, "Cannot remove forged Authentication-Results fields: %m");
                verify_fail(a, r);
                return 0;
        }
        if (r > 0)
                log_notice("Removed Authentication-Results field(s) claiming authserv-id %s.", id);

        h = a->handler;
        a->handler = NULL;
        if (h)
                h(a->tx, &(AuthVerdict) {
                                .authentication_results = ar,
                                .received_spf = a->received_spf,
                                .dmarc_result = dmarc_result,
                                .dmarc_disposition = disposition,
                                .dmarc_domain = dmarc_domain(ar, domain, sizeof(domain)),
                                .fd = TAKE_FD(fd),
                                .size = new_size,
                        }, 0, a->userdata);
        return 0;
}

static int verify_start(AuthState *a) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        Transaction *t = a->tx;
        int r;

        r = sd_bus_message_new_method_call(a->bus, &m, AUTH1_BUS_NAME, AUTH1_BUS_PATH, AUTH1_BUS_INTERFACE,
                                           "VerifyMessage");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "h", t->spool_fd);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        if (!isempty(a->req.client_ip)) {
                r = sd_bus_message_append(m, "{sv}", "client_ip", "s", a->req.client_ip);
                if (r < 0)
                        return r;
        }
        if (!isempty(a->req.helo)) {
                r = sd_bus_message_append(m, "{sv}", "helo", "s", a->req.helo);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_append(m, "{sv}", "mail_from", "s", strempty(t->mail_from));
        if (r >= 0 && a->spf_result)
                r = sd_bus_message_append(m, "{sv}", "spf_result", "s", a->spf_result);
        if (r >= 0 && !isempty(a->req.session))
                r = sd_bus_message_append(m, "{sv}", "session", "s", a->req.session);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "t", UINT64_C(0));
        if (r < 0)
                return r;
        return bus_call_async_timeout(a->bus, &a->verify_slot, m, on_verify_reply, a, a->req.timeout);
}

int auth_verify_message(sd_bus *bus, Transaction *t, const AuthRequest *req, AuthHandler handler, void *userdata) {
        AuthState *a;
        int r;

        assert(t && req && handler);
        if (!bus)
                return -ENOTCONN;

        r = auth_state_get(t, bus, req, &a);
        if (r < 0)
                return r;
        a->handler = handler;
        a->userdata = userdata;
        a->verify_slot = sd_bus_slot_unref(a->verify_slot);

        if (a->spf_slot) {
                a->verify_waiting = true;
                return 0;
        }
        r = verify_start(a);
        if (r < 0)
                a->handler = NULL;
        return r;
}
