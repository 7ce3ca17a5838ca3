#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Transcript tests for mailsec-proxyd.

Starts a scripted stub SMTP backend on a loopback port, then mailsec-proxyd through
systemd-socket-activate, plays tests/smtp/<case>.in as the client and compares what the
server said (and what reached the backend) with <case>.ref.

.in syntax, one directive per line:
  # comment
  !conf Section.Key=Value     extra configuration (after the defaults of this driver)
  !tls                        generate a certificate and offer STARTTLS
  !backend down               no backend listening: connections are refused
  !backend greeting TEXT      the backend's greeting line, e.g. "554 5.3.2 go away"
  !backend reject RCPT        the backend answers 550 to RCPT TO:<RCPT>
  !backend data-reply TEXT    the backend's reply to the final dot
  !backend mail-reply TEXT    the backend's reply to MAIL
  !backend hang WHAT          the backend stops answering at WHAT: GREETING (accepts, never
                              greets), EHLO, XCLIENT, MAIL, RCPT, DATA (never says 354), BODY
                              (says 354, then stops reading: the socket buffers fill up), DOT
                              (reads the message, never answers the final dot)
  !backend syn-drop           the backend's accept queue is kept full: SYNs to it are dropped
                              and connecting hangs (Linux drops SYNs to a full accept queue)
  !backend-log off            leave the backend log out of the transcript
  > TEXT                      client line, CRLF appended
  >> TEXT                     raw bytes, Python escapes (\\r \\n \\x00 ...), nothing appended
                              (consecutive > and >> lines are sent in one write)
  <  or  <N                   wait for 1 (or N) complete replies
  sleep SECONDS
  starttls                    TLS handshake on the connection (after the server's 220)
  expect-close                read until the server closes the connection
  conn N                      switch to connection N (opened on first use); lines of
                              connections other than 1 are prefixed with [N]
  repeat N TEXT               client line TEXT sent N times (in one write)
  >*N TEXT                    one client line made of TEXT repeated N times, CRLF appended
  repeat N >*M TEXT           N client lines, each made of TEXT repeated M times
  took MIN MAX                the last reply (or close) since the last client write (or
                              since the connection was opened) came MIN to MAX seconds after it
  backend normal              from now on the backend answers everything (ends hang, syn-drop)
"""

import argparse
import os
import re
import select
import socket
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time

WAIT = 5.0


class Backend:
    def __init__(self):
        self.greeting = '220 backend.test ESMTP stub'
        self.reject = set()
        self.data_reply = '250 2.0.0 Ok: queued as STUB1'
        self.mail_reply = '250 2.1.0 Ok'
        self.log = []
        self.threads = []
        self.accepted = 0
        self.local = threading.local()
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.port = self.sock.getsockname()[1]
        self.down = False
        self.hang = set()
        self.syn_drop = False
        self.fillers = []

    def start(self):
        if self.down:
            self.sock.close()   # the port is now closed: connections are refused
            return
        if 'BODY' in self.hang:
            # Small buffers: the proxy's writes stall soon once nothing is read.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        if self.syn_drop:
            self.fill_accept_queue()
            return
        self.sock.listen(64)
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def fill_accept_queue(self):
        # Backlog 0 and never accept: once the queue holds what it can, Linux drops
        # further SYNs and a connect() stays in SYN-SENT. Fill until one connect hangs.
        self.sock.listen(0)
        for _ in range(16):
            f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            f.setblocking(False)
            f.connect_ex(('127.0.0.1', self.port))
            _, w, _ = select.select([], [f], [], 0.5)
            if not w:
                f.close()
                return
            self.fillers.append(f)
        raise SystemExit('cannot fill the backend accept queue')

    def normal(self):
        self.hang = set()
        if self.syn_drop:
            self.syn_drop = False
            self.sock.setblocking(False)
            try:
                while True:
                    self.sock.accept()[0].close()
            except (BlockingIOError, OSError):
                pass
            self.sock.setblocking(True)
            for f in self.fillers:
                f.close()
            self.sock.listen(64)
            threading.Thread(target=self.accept_loop, daemon=True).start()

    def hang_until_closed(self, c, what):
        """No reply any more; keep reading (and dropping) until the proxy closes."""
        self.record('[%s: no reply]' % what)
        c.settimeout(30)
        try:
            while c.recv(65536):
                pass
        except OSError:
            pass

    def stop_reading(self, c):
        """Neither reply nor read: the proxy's writes stall. Waits for the process's end."""
        self.record('[354 sent, not reading]')
        threading.Event().wait(60)

    def record(self, line):
        # Lines are kept per backend connection (numbered in accept order) and printed
        # connection by connection: threads of two connections may log in any order.
        with self.lock:
            self.log.append((getattr(self.local, 'conn', 0), len(self.log), line))

    def lines(self):
        with self.lock:
            return [l for _, _, l in sorted(self.log)]

    def accept_loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            t = threading.Thread(target=self.serve, args=(c, self.accepted), daemon=True)
            self.threads.append(t)
            t.start()

    def serve(self, c, n):
        self.local.conn = n
        c.settimeout(30)
        f = c.makefile('rb')
        in_data = False
        have_mail = False       # as Postfix: RCPT before an accepted MAIL is 503

        def say(text):
            c.sendall(text.encode() + b'\r\n')

        try:
            if 'GREETING' in self.hang:
                self.hang_until_closed(c, 'greeting')
                return
            say(self.greeting)
            if not self.greeting.startswith('2'):
                return
            while True:
                raw = f.readline(4096)
                if not raw:
                    return
                line = raw.decode('utf-8', 'replace').rstrip('\r\n')
                verb = line.split(' ', 1)[0].upper()
                if verb != 'QUIT':
                    self.record(re.sub(r'PORT=\d+', 'PORT=<port>', line))
                if verb in self.hang:
                    self.hang_until_closed(c, verb)
                    return
                if verb in ('EHLO', 'HELO', 'RSET', 'XCLIENT'):
                    have_mail = False
                if verb == 'EHLO':
                    say('250-backend.test\r\n250-PIPELINING\r\n250-SIZE 100000000\r\n'
                        '250-8BITMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n'
                        '250 XCLIENT ADDR PORT NAME PROTO HELO')
                elif verb == 'HELO':
                    say('250 backend.test')
                elif verb == 'XCLIENT':
                    say(self.greeting)
                elif verb == 'MAIL':
                    say(self.mail_reply)
                    have_mail = self.mail_reply.startswith('2')
                elif verb == 'RCPT':
                    m = re.match(r'RCPT TO:<([^>]*)>', line, re.I)
                    if not have_mail:
                        say('503 5.5.1 Error: need MAIL command')
                    elif m and m.group(1) in self.reject:
                        say('550 5.1.1 <%s>: Recipient address rejected: User unknown' % m.group(1))
                    else:
                        say('250 2.1.5 Ok')
                elif verb == 'DATA':
                    in_data = True
                    say('354 End data with <CR><LF>.<CR><LF>')
                    if 'BODY' in self.hang:
                        self.stop_reading(c)
                        return
                    body = b''
                    while not body.endswith(b'\r\n.\r\n') and body != b'.\r\n':
                        chunk = f.readline(65536)
                        if not chunk:
                            # the proxy gave up on the message: without the final
                            # dot nothing is delivered
                            self.record('[closed before the end of the message]')
                            return
                        body += chunk
                    in_data = False
                    have_mail = False
                    self.record_message(body)
                    if 'DOT' in self.hang:
                        self.hang_until_closed(c, 'final dot')
                        return
                    say(self.data_reply)
                elif verb in ('RSET', 'NOOP'):
                    say('250 2.0.0 Ok')
                elif verb == 'QUIT':
                    say('221 2.0.0 Bye')
                    return
                else:
                    say('502 5.5.2 Error: command not recognized')
        except OSError:
            if in_data:
                self.record('[closed before the end of the message]')
        finally:
            c.close()

    def record_message(self, body):
        text = body.decode('utf-8', 'backslashreplace')
        text = re.sub(r'id [0-9a-f]{16}\.', 'id <id>.', text)
        text = re.sub(r'; [A-Z][a-z]{2}, \d+ [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n',
                      '; <date>\r\n', text)
        for l in text.split('\r\n')[:-1]:
            self.record('  | ' + repr(l)[1:-1])


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Conn:
    def __init__(self, n, port):
        self.n = n
        self.last_read = None
        self.mark = time.monotonic()
        self.buf = b''
        self.closed = False
        deadline = time.time() + WAIT
        while True:
            try:
                self.sock = socket.create_connection(('127.0.0.1', port), timeout=WAIT)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)

    def prefix(self):
        return '' if self.n == 1 else '[%d] ' % self.n


def mask(line):
    line = re.sub(r'\b[0-9a-f]{16}\b', '<session>', line)
    return line


def run(args):
    lines = open(args.case, encoding='utf-8').read().split('\n')
    backend = Backend()
    conf = {'Proxy': {'Hostname': 'mx.test', 'Backend': '127.0.0.1:%d' % backend.port,
                      'BackendClientInfo': 'xclient', 'BackendTLS': 'no'},
            'TLS': {'STARTTLS': 'no'},
            'Limits': {}, 'Timeouts': {'ServerTimeoutSec': '10s'}}
    backend_log = True
    tmp = tempfile.mkdtemp(prefix='mailsec-smtp-')

    for l in lines:
        if l.startswith('!conf '):
            k, v = l[6:].split('=', 1)
            sec, key = k.split('.', 1)
            conf.setdefault(sec, {})[key] = v
        elif l == '!tls':
            cert, key = os.path.join(tmp, 'cert.pem'), os.path.join(tmp, 'key.pem')
            subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                            'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
                            '-days', '2', '-subj', '/CN=mx.test'],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            conf['TLS'].update({'STARTTLS': 'yes', 'CertificateFile': cert, 'KeyFile': key})
        elif l == '!backend down':
            backend.down = True
        elif l.startswith('!backend greeting '):
            backend.greeting = l[len('!backend greeting '):]
        elif l.startswith('!backend reject '):
            backend.reject.add(l[len('!backend reject '):])
        elif l.startswith('!backend data-reply '):
            backend.data_reply = l[len('!backend data-reply '):]
        elif l.startswith('!backend mail-reply '):
            backend.mail_reply = l[len('!backend mail-reply '):]
        elif l.startswith('!backend hang '):
            backend.hang.add(l[len('!backend hang '):].upper())
        elif l == '!backend syn-drop':
            backend.syn_drop = True
        elif l == '!backend-log off':
            backend_log = False

    confpath = os.path.join(tmp, 'proxyd.conf')
    with open(confpath, 'w') as f:
        for sec, kv in conf.items():
            f.write('[%s]\n' % sec)
            for k, v in kv.items():
                f.write('%s=%s\n' % (k, v))

    backend.start()
    port = free_port()
    logpath = os.path.join(tmp, 'proxyd.log')
    logf = open(logpath, 'w')
    proc = subprocess.Popen(['systemd-socket-activate', '-l', '127.0.0.1:%d' % port, '--fdname=smtp',
                             '-E', 'MAILSEC_PROXYD_NO_BUS=1', '-E', 'MAILSEC_LOG_LEVEL=debug',
                             '-E', 'MAILSEC_LOG_TARGET=console',
                             args.proxyd, '--config=' + confpath],
                            stdout=logf, stderr=logf)

    out = []
    conns = {}
    cur = None
    pending = b''

    def conn(n):
        if n not in conns:
            conns[n] = Conn(n, port)
        return conns[n]

    def send():
        nonlocal pending
        if pending:
            cur.mark = time.monotonic()
            try:
                cur.sock.sendall(pending)
            except OSError as e:
                out.append(cur.prefix() + '[send failed: %s]' % e.strerror)
            pending = b''

    def read_replies(c, count, until_close=False):
        got = 0
        deadline = time.time() + WAIT
        while (until_close or got < count) and not c.closed:
            while b'\r\n' in c.buf:
                l, c.buf = c.buf.split(b'\r\n', 1)
                t = l.decode('utf-8', 'backslashreplace')
                out.append(c.prefix() + mask(t))
                if re.match(r'^\d{3}( |$)', t):
                    got += 1
                if not until_close and got >= count:
                    return
            if time.time() > deadline:
                out.append(c.prefix() + '[timeout]')
                return
            try:
                c.sock.settimeout(max(0.05, deadline - time.time()))
                d = c.sock.recv(65536)
                c.last_read = time.monotonic()
            except socket.timeout:
                continue
            except (ssl.SSLError, OSError):
                c.last_read = time.monotonic()
                d = b''
            if not d:
                if c.buf:
                    out.append(c.prefix() + '[partial] ' + repr(c.buf))
                    c.buf = b''
                out.append(c.prefix() + '[closed]')
                c.closed = True
                return
            c.buf += d

    try:
        for l in lines:
            if not l or l.startswith('#') or l.startswith('!'):
                continue
            if l.startswith('>> ') or l == '>>':
                cur = cur or conn(1)
                pending += l[3:].encode('utf-8').decode('unicode_escape').encode('latin-1')
                continue
            if l.startswith('> ') or l == '>':
                cur = cur or conn(1)
                pending += l[2:].encode('utf-8') + b'\r\n'
                continue
            m = re.match(r'^>\*(\d+) (.*)$', l)
            if m:
                cur = cur or conn(1)
                pending += m.group(2).encode('utf-8') * int(m.group(1)) + b'\r\n'
                continue
            if l.startswith('repeat '):
                _, n, text = l.split(' ', 2)
                cur = cur or conn(1)
                m = re.match(r'^>\*(\d+) (.*)$', text)
                if m:
                    text = m.group(2) * int(m.group(1))
                pending += (text.encode('utf-8') + b'\r\n') * int(n)
                continue
            send()
            if l.startswith('<'):
                cur = cur or conn(1)
                read_replies(cur, int(l[1:] or '1'))
            elif l.startswith('sleep '):
                time.sleep(float(l[6:]))
            elif l == 'expect-close':
                read_replies(cur, 0, until_close=True)
            elif l.startswith('took '):
                lo, hi = (float(x) for x in l.split()[1:3])
                if cur.last_read is None or cur.last_read < cur.mark:
                    out.append(cur.prefix() + '[took: nothing read]')
                elif not lo <= cur.last_read - cur.mark <= hi:
                    out.append(cur.prefix() + '[took %.2fs, not %g..%gs]' % (cur.last_read - cur.mark, lo, hi))
            elif l == 'backend normal':
                backend.normal()
            elif l.startswith('conn '):
                cur = conn(int(l[5:]))
            elif l == 'starttls':
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                try:
                    cur.sock = ctx.wrap_socket(cur.sock, server_hostname='mx.test')
                    out.append(cur.prefix() + '[tls %s]' % cur.sock.version())
                except (ssl.SSLError, OSError) as e:
                    out.append(cur.prefix() + '[tls failed]')
            else:
                raise SystemExit('%s: bad directive: %s' % (args.case, l))
        send()
    finally:
        for c in conns.values():
            c.sock.close()
        time.sleep(0.2)
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        logf.close()
        # every backend connection ended with the proxy: let their threads log it
        for t in list(backend.threads):
            t.join(timeout=5)

    if backend_log:
        out.append('--- backend ---')
        out.extend(backend.lines())
    text = '\n'.join(out) + '\n'

    if args.update:
        open(args.ref, 'w').write(text)
        shutil.rmtree(tmp, ignore_errors=True)
        return 0
    ref = open(args.ref, encoding='utf-8').read() if os.path.exists(args.ref) else ''
    if text == ref:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        # the directory (configuration, proxy log) stays for a look
        import difflib
        sys.stdout.writelines(difflib.unified_diff(ref.splitlines(True), text.splitlines(True),
                                                   args.ref, 'actual'))
        print('--- proxyd log (%s) ---' % logpath)
        sys.stdout.write(open(logpath, errors='replace').read()[-20000:])
        return 1
    return 0


if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--proxyd', required=True)
    p.add_argument('--case', required=True)
    p.add_argument('--ref', required=True)
    p.add_argument('--update', action='store_true')
    sys.exit(run(p.parse_args()))
