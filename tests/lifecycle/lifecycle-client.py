#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""SMTP clients for mailsec-proxyd's lifecycle tests: sessions that are held open
while the test signals, reloads or kills the daemon or its backend.

  lifecycle-client.py MODE HOST PORT [options]

Modes:
  fingerprint   STARTTLS (verified against --ca), print "fingerprint: <sha256 of the
                leaf certificate>", QUIT.
  greet         connect, print the first reply ("S: ..."); QUIT after a 220, else
                read until the server closes the connection.
  hold          go through the session up to --stop-after (greeting, ehlo, mail,
                rcpt, data, body, dot), optionally inside STARTTLS (--tls), write
                --ready (holding the leaf's fingerprint when TLS is used), then:
                  with --go FILE: wait for FILE, finish the transaction (MAIL, RCPT,
                  DATA, content, dot) and QUIT;
                  else: read whatever the server says until it closes the connection.
Every server reply is printed as "S: <reply>", every end of connection as "EOF";
the last line is "final: <code of the reply to the end of data or none>".
Every socket operation and every wait is bounded.
"""

import argparse
import hashlib
import os
import socket
import ssl
import sys
import time


class Fail(Exception):
    pass


class Conn:
    def __init__(self, host, port, timeout):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.eof = False

    def send(self, data):
        print("C:", repr(data[:100]))
        sys.stdout.flush()
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (OSError, ssl.SSLError) as e:
            print("recv error:", e)
            self.eof = True
            return False
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def reply(self):
        """One complete reply: (code, text), or (None, None) at EOF or timeout."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                if self.eof or not self._fill():
                    if self.eof:
                        print("EOF")
                    else:
                        print("timeout")
                    sys.stdout.flush()
                    return None, None
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode("utf-8", "replace"))
            if len(line) < 4 or line[3:4] != b"-":
                break
        text = "\n".join(lines)
        print("S:", text.replace("\n", " | "))
        sys.stdout.flush()
        try:
            return int(lines[-1][:3]), text
        except ValueError:
            return 0, text

    def expect(self, what, *codes):
        code, text = self.reply()
        if code not in codes:
            raise Fail("%s: expected %s, got %r" % (what, codes, text))
        return text

    def starttls(self, ca, name):
        self.send(b"STARTTLS\r\n")
        self.expect("STARTTLS", 220)
        ctx = ssl.create_default_context(cafile=ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.sock = ctx.wrap_socket(self.sock, server_hostname=name)
        der = self.sock.getpeercert(binary_form=True)
        fp = hashlib.sha256(der).hexdigest()
        print("fingerprint:", fp)
        print("tls:", self.sock.version(), self.sock.cipher()[0])
        return fp


def message(mark, size):
    body = ("Subject: %s\r\nFrom: <sender@example.net>\r\nTo: <user@example.test>\r\n"
            "Message-ID: <%s@example.net>\r\n\r\n" % (mark, mark)).encode()
    line = b"lifecycle test content " + mark.encode() + b"\r\n"
    while len(body) < size:
        body += line
    return body


def read_until_eof(c, secs):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        code, _ = c.reply()
        if code is None and c.eof:
            return True
    print("no EOF within %ss" % secs)
    return False


def wait_file(path, secs):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.05)
    raise Fail("%s did not appear within %ss" % (path, secs))


def write_ready(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text + "\n")
    os.rename(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["fingerprint", "greet", "hold"])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--ca")
    ap.add_argument("--name", default="mx.example.test")
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--stop-after", default="ehlo",
                    choices=["greeting", "ehlo", "mail", "rcpt", "data", "body", "dot"])
    ap.add_argument("--ready")
    ap.add_argument("--go")
    ap.add_argument("--mark", default="mailsec-lifecycle")
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--wait", type=float, default=60, help="bound of the wait for --go or for EOF")
    a = ap.parse_args()

    final = None
    try:
        c = Conn(a.host, a.port, a.timeout)
        if a.mode == "greet":
            code, _ = c.reply()
            if code == 220:
                c.send(b"QUIT\r\n")
                c.reply()
            else:
                read_until_eof(c, a.wait)
            return 0

        c.expect("greeting", 220)
        fp = ""
        if a.mode == "fingerprint":
            c.send(b"EHLO client.example.net\r\n")
            c.expect("EHLO", 250)
            fp = c.starttls(a.ca, a.name)
            c.send(b"EHLO client.example.net\r\n")
            c.expect("EHLO in TLS", 250)
            c.send(b"QUIT\r\n")
            c.reply()
            return 0

        steps = ["greeting", "ehlo", "mail", "rcpt", "data", "body", "dot"]
        stop = steps.index(a.stop_after)
        msg = message(a.mark, a.size)
        half = len(msg) // 2

        def step(i):
            nonlocal fp
            if i == 1:
                c.send(b"EHLO client.example.net\r\n")
                c.expect("EHLO", 250)
                if a.tls:
                    fp = c.starttls(a.ca, a.name)
                    c.send(b"EHLO client.example.net\r\n")
                    c.expect("EHLO in TLS", 250)
            elif i == 2:
                c.send(b"MAIL FROM:<sender@example.net>\r\n")
                c.expect("MAIL", 250)
            elif i == 3:
                c.send(b"RCPT TO:<user@example.test>\r\n")
                c.expect("RCPT", 250)
            elif i == 4:
                c.send(b"DATA\r\n")
                c.expect("DATA", 354)
            elif i == 5:
                c.send(msg[:half])
            elif i == 6:
                c.send(msg[half:] + b".\r\n")

        for i in range(1, stop + 1):
            step(i)
        if a.ready:
            write_ready(a.ready, fp or "ready")

        if a.go:
            wait_file(a.go, a.wait)
            for i in range(stop + 1, 7):
                step(i)
            final, _ = c.reply()
            c.send(b"QUIT\r\n")
            c.reply()
        else:
            deadline = time.monotonic() + a.wait
            while time.monotonic() < deadline:
                code, _ = c.reply()
                if code is None:
                    if c.eof:
                        break
                    continue
                if stop == 6 and final is None:
                    final = code
            else:
                print("no EOF within %ss" % a.wait)
        return 0
    except Fail as e:
        print("error:", e)
        return 1
    except (OSError, ssl.SSLError) as e:
        print("error:", type(e).__name__, e)
        return 1
    finally:
        print("final:", final if final is not None else "none")
        sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
