/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* HTML reduced to the text a reader sees, for the spam filter. A streaming state machine
 * (not a DOM): fed UTF-8 in pieces of any size, as long as a piece never ends inside a
 * UTF-8 sequence.
 *
 *   - tags, comments, declarations and processing instructions are removed; a removed
 *     tag does not split a word ("vi<b></b>agra", "vi<!-- x -->agra" give "viagra"),
 *     except block-level elements (p, br, div, td, li, tr, h1-h6, ...), which give a
 *     space, as a browser would show them;
 *   - the contents of script and style elements are dropped;
 *   - character references are decoded: named ones (the common ones and all of Latin-1),
 *     decimal and hex; U+0080..U+009F references map through windows-1252 as in HTML5;
 *   - whitespace runs (and no-break and other Unicode spaces) become one ' ';
 *   - invisible characters that only serve to split words (soft hyphen, zero-width
 *     space/joiners, word joiner, BOM), literal or as references, are dropped;
 *   - the host of each href/src/action/background URL (http, https, ftp or
 *     protocol-relative) is reported, lowercased, through a callback, with the path,
 *     query and fragment that follow it.
 *
 * insertions counts the places where markup or invisible characters were removed between
 * two word characters: evidence of deliberate obfuscation, rare in legitimate mail.
 * tags_upper and tags_lower count the tags (start and end) whose element name begins with
 * a capital or a small letter, comments the comments: how the program that wrote the HTML
 * writes it. */

#include <stdbool.h>
#include <stddef.h>

#include "mime-decode.h"

#define HTML_TAG_MAX 1024U              /* bytes of a tag kept for its attributes */
#define HTML_ENTITY_MAX 32U
#define HTML_HOST_MAX 255U
#define HTML_NAME_MAX 15U              /* bytes of an element name that count */
#define HTML_COMMENT_MAX 1024U          /* bytes of a comment kept for HtmlCommentFunc */

/* Called with a lowercased host (not NUL-terminated) and what follows the URL's authority
 * (path, query and fragment, as written once the attribute's references are decoded; not
 * NUL-terminated, possibly empty); a negative return stops the reducer and is returned by
 * html_text_feed()/html_text_finish(). */
typedef int (*HtmlUrlFunc)(const char *host, size_t len, const char *rest, size_t rest_len, void *userdata);

/* Called for each start tag with its lowercased element name (NUL-terminated; at most
 * HTML_NAME_MAX bytes, a longer name is cut). Gets the userdata of html_text_feed(); a
 * negative return stops the reducer as for HtmlUrlFunc. */
typedef int (*HtmlMarkupFunc)(const char *element, size_t len, void *userdata);

/* Called for each comment that ends, with its text between "<!--" and "-->" (at most
 * HTML_COMMENT_MAX bytes, a longer comment is cut; not NUL-terminated), the same however
 * the input is cut. Gets the userdata of html_text_feed(); a negative return stops the
 * reducer as for HtmlUrlFunc. */
typedef int (*HtmlCommentFunc)(const char *text, size_t len, void *userdata);

typedef struct HtmlText {
        int state;
        char tag[HTML_TAG_MAX];
        size_t tag_len;
        char quote;             /* inside a quoted attribute value */
        char tag_prev;          /* last non-blank byte of the tag */
        char entity[HTML_ENTITY_MAX];
        size_t entity_len;
        unsigned dashes;        /* '-' run inside a comment */
        const char *raw_end;    /* "</script" or "</style" while in raw text */
        unsigned raw_match;
        bool last_space;        /* nothing emitted yet, or the last byte was ' ' */
        bool last_word;         /* the last byte emitted belongs to a word */
        bool gap;               /* markup was removed after that word character */

        HtmlMarkupFunc markup;  /* set after html_text_init() to see the tags, or NULL */
        HtmlCommentFunc comment; /* set after html_text_init() to see the comments, or NULL */
        char comment_text[HTML_COMMENT_MAX];
        size_t comment_len;

        unsigned insertions;
        unsigned tags_upper;
        unsigned tags_lower;
        unsigned comments;
        unsigned urls;
        unsigned unterminated;  /* tags, comments or references cut by the end of input */
} HtmlText;

void html_text_init(HtmlText *h);
/* Append the text of in to out. Returns 0, -ENOMEM, or the callback's negative value. */
int html_text_feed(HtmlText *h, const char *in, size_t n, MimeBuffer *out, HtmlUrlFunc url, void *userdata);
/* End of input: flush a pending reference, count what is left open. */
int html_text_finish(HtmlText *h, MimeBuffer *out, HtmlUrlFunc url, void *userdata);

/* The host of an absolute (http, https, ftp) or protocol-relative URL, lowercased into
 * buf (HTML_HOST_MAX + 1 bytes). Returns its length, 0 when the URL has no such host.
 * ret_rest, if not NULL, gets the offset in url where the authority ends (the path,
 * query and fragment follow). */
size_t html_url_host(const char *url, size_t n, char *buf, size_t *ret_rest);

/* The code point of a named character reference (case-sensitive, without '&' and ';'),
 * 0 when unknown. */
uint32_t html_entity_lookup(const char *name, size_t n) _pure_;
