# SPDX-License-Identifier: LGPL-2.1-or-later
#
# report-spam.sieve: run by Dovecot's imap_sieve plugin when a message arrives in
# Junk by COPY, MOVE or APPEND (90-mailsec-imapsieve.conf). Reports it to
# mailsec-spamd as spam on behalf of the IMAP user.
#
# ":copy" keeps the message where the user put it (without it the pipe action would
# cancel the implicit keep and the message would be flagged \Deleted); ":try" keeps
# a failing program from turning into a Sieve error (mailsec-report exits 0 anyway).

require ["vnd.dovecot.pipe", "copy", "imapsieve", "environment", "variables"];

if environment :matches "imap.user" "*" {
        set "user" "${1}";
}

pipe :copy :try "mailsec-report" ["spam", "${user}"];
