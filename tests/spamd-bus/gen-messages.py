#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Writes N spam and N ham messages (RFC 5322, CRLF) into DIR as spam-K.eml and
# ham-K.eml, from a fixed seed: the same arguments give the same messages.
# Spam talks about pills, loans and prizes; ham about meetings, builds and
# invoices; each message mixes its topic's words with common words, and every
# message is unique (a serial number in Message-ID and body).
#
#   gen-messages.py DIR N [SEED] [PREFIX]

import os
import random
import sys

SPAM = ("cheap pills pharmacy discount viagra cialis offer winner prize claim "
        "million dollars loan mortgage refinance credit approved guaranteed "
        "limited time act now click here unsubscribe casino bonus free money "
        "weight loss miracle cure investment opportunity bitcoin profit").split()
HAM = ("meeting agenda tomorrow project schedule review build release branch "
       "merge request invoice attached quarterly report budget minutes team "
       "lunch deadline customer support ticket server maintenance backup "
       "documentation draft feedback conference call notes").split()
COMMON = ("the and for you with this that are have from your will our please "
          "about more time all can new one would here there when which").split()


def message(kind, k, rnd, prefix):
    words = SPAM if kind == "spam" else HAM
    subject = " ".join(rnd.choice(words) for _ in range(rnd.randint(2, 5)))
    body = []
    for _ in range(rnd.randint(3, 8)):
        line = [rnd.choice(words if rnd.random() < 0.6 else COMMON) for _ in range(rnd.randint(6, 12))]
        body.append(" ".join(line))
    sender = ("offers@deals-%d.example.net" % rnd.randint(1, 50)) if kind == "spam" else \
        ("%s@example.org" % rnd.choice(["alice", "bob", "carol", "dave"]))
    if kind == "spam" and rnd.random() < 0.5:
        body.append('<a href="http://win-%d.example.biz/claim">claim</a>' % rnd.randint(1, 30))
    return ("From: %s\r\nTo: user@example.org\r\nSubject: %s\r\n"
            "Message-ID: <%s-%s-%d@example.test>\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\n\r\n%s\r\n"
            "serial %s %d\r\n" % (sender, subject, prefix, kind, k, "\r\n".join(body), prefix, k))


def main():
    d, n = sys.argv[1], int(sys.argv[2])
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    prefix = sys.argv[4] if len(sys.argv) > 4 else "m"
    rnd = random.Random(seed)
    os.makedirs(d, exist_ok=True)
    for k in range(n):
        for kind in ("spam", "ham"):
            with open(os.path.join(d, "%s-%s-%d.eml" % (prefix, kind, k)), "w", newline="") as f:
                f.write(message(kind, k, rnd, prefix))


main()
