#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""SMTP clients for mailsec's integration tests: what swaks cannot send.

  smtp-raw.py CASE HOST PORT [--src ADDR] [--mark MARK] [options]

Each case prints what it saw (one "S:"/"C:" line per exchange, shortened) and
ends with "verdict: ok" and exit 0, or "verdict: FAIL <why>" and exit 1. Cases
that deliver mail put MARK in the Subject so that the caller can look for the
message in the backend's Maildir. Every socket operation has a timeout.
"""

import argparse
import os
import smtplib
import socket
import ssl
import sys
import threading
import time


class Fail(Exception):
    pass


class Client:
    def __init__(self, host, port, src=None, timeout=30):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(src, 0) if src else None)
        self.buf = b""
        self.eof = False
        self.timeout = timeout

    def send(self, data, show=True):
        if show:
            print("C:", repr(data[:120]) + (" ...(%d bytes)" % len(data) if len(data) > 120 else ""))
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except OSError:
            self.eof = True
            return False
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def reply(self):
        """One reply (all lines); (code, text). (None, None) on EOF or timeout."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                if self.eof or not self._fill():
                    if lines:
                        print("S: (incomplete)", lines[-1][:200])
                    return None, None
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode("utf-8", "replace"))
            if len(line) < 4 or line[3:4] != b"-":
                break
        text = "\n".join(lines)
        print("S:", text[:200].replace("\n", " | "))
        try:
            return int(lines[-1][:3]), text
        except ValueError:
            return 0, text

    def expect(self, what, *codes):
        code, text = self.reply()
        if code not in codes:
            raise Fail("%s: expected %s, got %r" % (what, codes, text))
        return text

    def replies_until_eof(self, limit=100000, secs=20):
        """Every reply until the peer closes, or secs pass; a list of codes."""
        codes = []
        end = time.monotonic() + secs
        self.sock.settimeout(1)
        while len(codes) < limit and time.monotonic() < end:
            code, _ = self.reply()
            if code is None:
                if self.eof:
                    break
                continue
            codes.append(code)
        self.sock.settimeout(self.timeout)
        return codes

    def starttls(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock, server_hostname="mx.example.test")
        self.buf = b""

    def hello(self):
        self.expect("greeting", 220)
        self.send(b"EHLO client.example.net\r\n")
        return self.expect("EHLO", 250)

    def open_data(self, rcpt=b"user@example.test"):
        self.send(b"MAIL FROM:<sender@example.net>\r\n")
        self.expect("MAIL", 250)
        self.send(b"RCPT TO:<" + rcpt + b">\r\n")
        self.expect("RCPT", 250)
        self.send(b"DATA\r\n")
        self.expect("DATA", 354)


def headers(mark, extra=b""):
    return (b"From: <sender@example.net>\r\nTo: <user@example.test>\r\n"
            b"Subject: " + mark + b"\r\n" + extra + b"\r\n")


def refused_at_end(c, payload, what):
    """Send payload after 354 (it ends the data somehow), then QUIT: the message
    must get a 5xx and nothing may get a 2xx but the QUIT."""
    c.send(payload + b"QUIT\r\n")
    codes = c.replies_until_eof(secs=20)
    print("codes after DATA:", codes)
    if not any(500 <= x < 600 for x in codes):
        raise Fail("%s: no 5xx reply (codes %s)" % (what, codes))
    bad = [x for x in codes if 200 <= x < 400 and x != 221]
    if bad:
        raise Fail("%s: positive replies %s (codes %s)" % (what, bad, codes))


SMUGGLE = {
    "lf": b"\nworld\r\n",
    "cr": b"\rworld\r\n",
    "lf-dot-lf": b"\n.\n",
    "crlf-dot-lf": b"\r\n.\n",
    "lf-dot-crlf": b"\n.\r\n",
    "cr-dot-cr": b"\r.\r",
    "crlf-dot-cr": b"\r\n.\r",
}


def case_smuggle(a, c):
    seq = SMUGGLE[a.variant]
    c.hello()
    c.open_data()
    payload = (headers(a.mark) + b"hello" + seq +
               b"MAIL FROM:<smuggler@evil.test>\r\nRCPT TO:<user@example.test>\r\nDATA\r\n" +
               b"Subject: " + a.mark + b"-smuggled\r\n\r\nsmuggled\r\n.\r\n")
    refused_at_end(c, payload, "smuggling " + a.variant)


def case_nul_body(a, c):
    c.hello()
    c.open_data()
    refused_at_end(c, headers(a.mark) + b"hello\x00world\r\n.\r\n", "NUL in body")


def case_nul_cmd(a, c):
    c.hello()
    c.send(b"MAIL FROM:<se\x00nder@example.net>\r\n")
    code, text = c.reply()
    if code is None or not 500 <= code < 600:
        raise Fail("NUL in MAIL FROM: expected 5xx, got %r" % text)


def case_long_cmd(a, c):
    c.hello()
    c.send(b"MAIL FROM:<" + b"x" * 5000 + b"@example.net>\r\n")
    code, text = c.reply()
    if code is None or not 500 <= code < 600:
        raise Fail("5000-byte command: expected 5xx, got %r" % text)


def case_long_line(a, c):
    c.hello()
    c.open_data()
    refused_at_end(c, headers(a.mark) + b"y" * 5000 + b"\r\n.\r\n", "5000-byte text line")


def case_long_header(a, c):
    c.hello()
    c.open_data()
    folded = b"X-Long: start\r\n" + b"\tzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\r\n" * 30000
    refused_at_end(c, headers(a.mark, folded) + b"body\r\n.\r\n", "2 MB header field")


def case_flood(a, c):
    c.hello()
    n = a.count
    sender = threading.Thread(target=lambda: c.sock.sendall(b"NOOP\r\n" * n), daemon=True)
    print("C: NOOP x %d in one write" % n)
    sender.start()
    codes = []
    end = time.monotonic() + 60
    while len(codes) < n and time.monotonic() < end:
        code, _ = (c.reply() if len(codes) < 3 else quiet_reply(c))
        if code is None:
            break
        codes.append(code)
        if code == 421:
            break
    sender.join(5)
    ok = codes.count(250)
    print("flood: %d replies, %d x 250, last %s" % (len(codes), ok, codes[-1:] or None))
    if ok == 0:
        raise Fail("flood: not one NOOP answered")
    # Cutting the flood short (421, or a close that resets the rest) is fine;
    # what counts is that the proxy stayed bounded and keeps serving.
    # the proxy survived: a new session is served at once
    d = Client(a.host, a.port, a.src, timeout=15)
    d.hello()
    d.send(b"NOOP\r\n")
    d.expect("NOOP after the flood", 250)
    d.send(b"QUIT\r\n")


def quiet_reply(c):
    saved = sys.stdout
    sys.stdout = open(os.devnull, "w")
    try:
        return c.reply()
    finally:
        sys.stdout.close()
        sys.stdout = saved


def case_injection(a, c):
    c.hello()
    c.send(b"STARTTLS\r\nMAIL FROM:<injector@evil.test>\r\nRCPT TO:<user@example.test>\r\nDATA\r\n"
           b"Subject: " + a.mark + b"-injected\r\n\r\ninjected\r\n.\r\n")
    code, text = c.reply()
    seen = [code]
    if code == 220:
        try:
            c.starttls()
        except (ssl.SSLError, OSError) as e:
            print("TLS handshake refused after injection:", e)
            return
        c.send(b"EHLO client.example.net\r\n")
        c.send(b"QUIT\r\n")
        seen += c.replies_until_eof(secs=10)
    print("codes:", seen)
    if 354 in seen:
        raise Fail("injected DATA was answered with 354")
    if seen[1:2] and seen[1] != 250:
        raise Fail("first reply after TLS is %s, not the EHLO's 250" % seen[1])


def case_halfdata(a, c):
    c.hello()
    c.open_data()
    c.send(headers(a.mark) + (b"a" * 998 + b"\r\n") * 200)
    print("HALF", flush=True)
    sys.stdout.flush()
    codes = c.replies_until_eof(secs=a.wait)
    print("codes after half the data:", codes)
    if 250 in codes:
        raise Fail("got a 250 for a message that was never finished")


def case_utf8(a, c):
    c.sock.close()
    s = smtplib.SMTP(a.host, a.port, local_hostname="client.example.net", timeout=30,
                     source_address=(a.src, 0) if a.src else None)
    s.ehlo()
    for ext in ("smtputf8", "8bitmime"):
        if not s.has_extn(ext):
            raise Fail("EHLO does not offer %s" % ext.upper())
    msg = ("From: <jürgen@exämple.net>\r\nTo: <zoë@example.test>\r\nSubject: " + a.mark.decode() +
           "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
           "Content-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Zürich, ĳ €\r\n").encode()
    refused = s.sendmail("jürgen@exämple.net", ["zoë@example.test"], msg,
                         mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    if refused:
        raise Fail("refused %r" % refused)
    s.quit()


def case_8bit(a, c):
    c.sock.close()
    s = smtplib.SMTP(a.host, a.port, local_hostname="client.example.net", timeout=30,
                     source_address=(a.src, 0) if a.src else None)
    s.ehlo()
    if not s.has_extn("8bitmime"):
        raise Fail("EHLO does not offer 8BITMIME")
    msg = (headers(a.mark, b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
                           b"Content-Transfer-Encoding: 8bit\r\n") +
           b"8bit: caf\xe9 na\xefve \xfcber\r\n")
    s.sendmail("sender@example.net", ["user@example.test"], msg, mail_options=["BODY=8BITMIME"])
    s.quit()


def case_send(a, c):
    """A message of --size bytes to --rcpts recipients (user1..userN)."""
    c.sock.close()
    s = smtplib.SMTP(a.host, a.port, local_hostname="client.example.net", timeout=120,
                     source_address=(a.src, 0) if a.src else None)
    s.ehlo()
    rcpts = ["user%d@example.test" % i for i in range(1, a.rcpts + 1)]
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/\r\n"
    body = line * max(1, a.size // len(line))
    t = time.monotonic()
    refused = s.sendmail("sender@example.net", rcpts, headers(a.mark) + body)
    print("sent %d bytes to %d recipients in %.2fs" % (len(body), len(rcpts), time.monotonic() - t))
    if refused:
        raise Fail("refused recipients %r" % refused)
    s.quit()


def case_idle(a, c):
    """Say nothing after the greeting: the proxy must close within --wait seconds."""
    c.expect("greeting", 220)
    t = time.monotonic()
    codes = c.replies_until_eof(secs=a.wait)
    took = time.monotonic() - t
    print("closed after %.1fs with %s" % (took, codes))
    if not c.eof:
        raise Fail("still open after %ss" % a.wait)
    if codes and codes[-1] != 421:
        raise Fail("closed with %s, not 421" % codes[-1])


def case_hold(a, c):
    """Hold a session open after the greeting until stdin closes (limit tests)."""
    code, text = c.reply()
    print("GREETING %s" % code, flush=True)
    sys.stdin.read()


CASES = {n[5:].replace("_", "-"): f for n, f in globals().items() if n.startswith("case_")}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case", choices=sorted(CASES))
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--src")
    p.add_argument("--mark", default="mailsec-test")
    p.add_argument("--variant", choices=sorted(SMUGGLE), default="lf")
    p.add_argument("--count", type=int, default=5000)
    p.add_argument("--size", type=int, default=1000)
    p.add_argument("--rcpts", type=int, default=1)
    p.add_argument("--wait", type=float, default=20)
    a = p.parse_args()
    a.mark = a.mark.encode()
    try:
        c = Client(a.host, a.port, a.src)
        CASES[a.case](a, c)
    except (Fail, smtplib.SMTPException, OSError) as e:
        print("verdict: FAIL", e)
        return 1
    print("verdict: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
