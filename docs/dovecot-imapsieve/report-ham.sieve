# SPDX-License-Identifier: LGPL-2.1-or-later
#
# report-ham.sieve: run by Dovecot's imap_sieve plugin when a message is copied or
# moved out of Junk (90-mailsec-imapsieve.conf). Reports it to mailsec-spamd as ham
# on behalf of the IMAP user, unless it went to Trash: deleting spam says nothing
# about it being ham. A copy within Junk says nothing either.
#
# Rename "Trash" and "Junk" here if the installation's mailboxes are called
# otherwise (the special-use \Trash and \Junk mailboxes of the namespace).

require ["vnd.dovecot.pipe", "copy", "imapsieve", "environment", "variables"];

if environment :matches "imap.mailbox" "*" {
        set "mailbox" "${1}";
}
if string :is "${mailbox}" ["Trash", "Junk"] {
        stop;
}

if environment :matches "imap.user" "*" {
        set "user" "${1}";
}

pipe :copy :try "mailsec-report" ["ham", "${user}"];
