#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A mail client's side of moving mail in and out of Junk, over IMAP (imaplib).

    imap-client.py HOST PORT append MAILBOX FILE...
    imap-client.py HOST PORT move FROM TO MESSAGE-ID        UID MOVE (RFC 6851)
    imap-client.py HOST PORT copy-delete FROM TO MESSAGE-ID UID COPY, \\Deleted, EXPUNGE
    imap-client.py HOST PORT move-subject FROM TO TEXT      one UID MOVE of every message
                                                            whose Subject has TEXT
    imap-client.py HOST PORT count MAILBOX MESSAGE-ID       prints how many there are
                                                            (not flagged \\Deleted)

The user and password come from IMAP_USER and IMAP_PASSWORD. Moves act on the first
message with that Message-ID. Exit status 0 when every command got OK, 1 otherwise
(with the server's answer on stderr), 2 on a usage error.
"""

import imaplib
import os
import sys

TIMEOUT = 20


class Failed(Exception):
    pass


def ok(what, typ, data):
    if typ != 'OK':
        raise Failed(f'{what}: {typ} {data!r}')
    return data


def quoted(mailbox):
    return '"' + mailbox.replace('\\', '\\\\').replace('"', '\\"') + '"'


def find(imap, mailbox, message_id):
    ok(f'SELECT {mailbox}', *imap.select(quoted(mailbox)))
    # \Deleted messages are on their way out: a Sieve script that lost the implicit
    # keep leaves the message flagged so, and it must count as gone.
    data = ok('UID SEARCH', *imap.uid('SEARCH', 'UNDELETED', 'HEADER', 'Message-ID', quoted(message_id)))
    return data[0].split() if data and data[0] else []


def first(imap, mailbox, message_id):
    uids = find(imap, mailbox, message_id)
    if not uids:
        raise Failed(f'{message_id} is not in {mailbox}')
    return uids[0].decode()


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, cmd, args = argv[1], int(argv[2]), argv[3], argv[4:]
    want = {'append': 2, 'move': 3, 'copy-delete': 3, 'move-subject': 3, 'count': 2}
    if cmd not in want or len(args) < want[cmd] or (cmd != 'append' and len(args) > want[cmd]):
        print(__doc__, file=sys.stderr)
        return 2

    imap = imaplib.IMAP4(host, port, timeout=TIMEOUT)
    try:
        ok('LOGIN', *imap.login(os.environ['IMAP_USER'], os.environ['IMAP_PASSWORD']))
        if cmd == 'append':
            for path in args[1:]:
                with open(path, 'rb') as f:
                    message = f.read()
                ok(f'APPEND {args[0]}', *imap.append(quoted(args[0]), None, None, message))
        elif cmd == 'move':
            uid = first(imap, args[0], args[2])
            ok(f'UID MOVE {uid} {args[1]}', *imap.uid('MOVE', uid, quoted(args[1])))
        elif cmd == 'move-subject':
            ok(f'SELECT {args[0]}', *imap.select(quoted(args[0])))
            data = ok('UID SEARCH', *imap.uid('SEARCH', 'UNDELETED', 'SUBJECT', quoted(args[2])))
            uids = data[0].split() if data and data[0] else []
            if not uids:
                raise Failed(f'no message in {args[0]} has {args[2]!r} in its Subject')
            uid_set = b','.join(uids).decode()
            ok(f'UID MOVE {uid_set} {args[1]}', *imap.uid('MOVE', uid_set, quoted(args[1])))
            print(len(uids))
        elif cmd == 'copy-delete':
            # What a client without MOVE does.
            uid = first(imap, args[0], args[2])
            ok(f'UID COPY {uid} {args[1]}', *imap.uid('COPY', uid, quoted(args[1])))
            ok(f'UID STORE {uid}', *imap.uid('STORE', uid, '+FLAGS.SILENT', '(\\Deleted)'))
            ok('EXPUNGE', *imap.expunge())
        elif cmd == 'count':
            print(len(find(imap, args[0], args[1])))
        imap.logout()
    except (Failed, imaplib.IMAP4.error, OSError) as e:
        print(f'imap-client: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
