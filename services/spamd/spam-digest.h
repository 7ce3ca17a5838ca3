/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The digest that identifies a message to mailsec-spamd: the SHA-256 of the message as
 * its author sent it, so that the copy a user reports from a mailbox is the message
 * classified at SMTP time. An mbox "From " line is dropped; header fields that the path
 * of a message adds or changes after it was received are left out (Received,
 * Return-Path, Delivered-To, X-Original-To, Envelope-To, Authentication-Results,
 * Received-SPF, ARC sets, X-Spam-*, X-Mailsec-*, X-Virus-*, mailbox bookkeeping such as
 * Status, X-UID or Content-Length); every line end becomes CRLF; empty lines at the end
 * of the body are dropped. Any input gives a digest (all zeros only when OpenSSL fails). */

#include <stddef.h>
#include <stdint.h>

#include "spam-store.h"

void spam_message_digest(const void *msg, size_t size, uint8_t ret[static SPAM_DIGEST_SIZE]);
