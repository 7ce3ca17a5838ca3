/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "cleanup.h"
#include "macro.h"
#include "spam-digest.h"

DEFINE_TRIVIAL_CLEANUP_FUNC_FULL(EVP_MD_CTX*, EVP_MD_CTX_free, NULL);

/* Header fields that the path of a message adds or changes after it was received
 * (trace, delivery, the verdicts of filters, mailbox bookkeeping): a message is known by
 * everything else, so the copy a user reports from the mailbox has the digest of the copy
 * classified at SMTP time. */
static const char* const digest_skip_fields[] = {
        "Received", "Return-Path", "Delivered-To", "X-Original-To", "Envelope-To",
        "X-Envelope-From", "X-Envelope-To", "Authentication-Results", "Received-SPF",
        "ARC-Seal", "ARC-Message-Signature", "ARC-Authentication-Results",
        "Status", "X-Status", "X-Keywords", "X-UID", "X-IMAP", "X-IMAPbase",
        "Content-Length", "Lines", "X-Sieve",
};
static const char* const digest_skip_prefixes[] = {
        "X-Spam-", "X-Mailsec-", "X-Virus-", "X-Bogosity",
};

static bool digest_skips(const char *name, size_t len) {
        for (size_t i = 0; i < ELEMENTSOF(digest_skip_fields); i++)
                if (strlen(digest_skip_fields[i]) == len && strncasecmp(digest_skip_fields[i], name, len) == 0)
                        return true;
        for (size_t i = 0; i < ELEMENTSOF(digest_skip_prefixes); i++) {
                size_t n = strlen(digest_skip_prefixes[i]);

                if (len >= n && strncasecmp(digest_skip_prefixes[i], name, n) == 0)
                        return true;
        }
        return false;
}

/* One line of msg from *pos: its content without the line end; *pos goes past the end. */
static size_t next_line(const char *msg, size_t size, size_t *pos, const char **ret) {
        const char *p = msg + *pos, *nl = memchr(p, '\n', size - *pos);
        size_t n = nl ? (size_t) (nl - p) : size - *pos;

        *pos += n + (nl ? 1 : 0);
        if (n > 0 && p[n - 1] == '\r')
                n--;
        *ret = p;
        return n;
}

/* The SHA-256 of the message as its author sent it: an mbox "From " line dropped, the
 * fields of digest_skip_fields[] left out, every line end CRLF, empty lines at the end of
 * the body dropped. */
void spam_message_digest(const void *msg_v, size_t size, uint8_t ret[static SPAM_DIGEST_SIZE]) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
        const char *msg = msg_v, *line;
        size_t pos = 0, n, empty = 0;
        bool skipping = false, in_body = false;
        unsigned len = 0;

        if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
                goto fail;
        if (size >= 5 && memcmp(msg, "From ", 5) == 0)
                (void) next_line(msg, size, &pos, &line);

        while (pos < size) {
                n = next_line(msg, size, &pos, &line);
                if (!in_body) {
                        if (n == 0) {
                                in_body = true;
                                if (EVP_DigestUpdate(md, "\r\n", 2) != 1)
                                        goto fail;
                                continue;
                        }
                        if (line[0] == ' ' || line[0] == '\t') {
                                if (skipping)
                                        continue;       /* continuation of a skipped field */
                        } else {
                                const char *colon = memchr(line, ':', n);

                                skipping = colon && digest_skips(line, (size_t) (colon - line));
                                if (skipping)
                                        continue;
                        }
                } else if (n == 0) {
                        empty++;                        /* written once more text follows */
                        continue;
                }
                for (; empty > 0; empty--)
                        if (EVP_DigestUpdate(md, "\r\n", 2) != 1)
                                goto fail;
                if (EVP_DigestUpdate(md, line, n) != 1 || EVP_DigestUpdate(md, "\r\n", 2) != 1)
                        goto fail;
        }
        if (EVP_DigestFinal_ex(md, ret, &len) == 1 && len == SPAM_DIGEST_SIZE)
                return;
fail:
        memset(ret, 0, SPAM_DIGEST_SIZE);
}

