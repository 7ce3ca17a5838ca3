#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# mailsecctl auth/dkim without a name server: usage errors and exit codes, key files,
# the DKIM record printed by keygen/record checked with libauthd's DKIM key parser
# (test-ctl-helper), the 255-byte string split, the JSON output, and a check that ends
# in temperror (no server answers) still exiting 0.
# Env: MAILSECCTL, CTL_HELPER.

set -uo pipefail
CTL=${MAILSECCTL:?}
HELPER=${CTL_HELPER:?}
T=$(mktemp -d /tmp/mailsec-ctl.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0 passes=0

ok() { passes=$((passes + 1)); echo "ok - $*"; }
bad() { fails=$((fails + 1)); echo "not ok - $*"; }
expect_rc() { # expect_rc WANT DESC CMD...
        local want=$1 desc=$2 rc
        shift 2
        "$@" >"$T/out" 2>"$T/err"
        rc=$?
        if [ "$rc" = "$want" ]; then ok "$desc (exit $rc)"; else bad "$desc: exit $rc, want $want"; cat "$T/out" "$T/err"; fi
}
json_get() { # json_get FILE KEY
        python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(v if v is not None else "null")' "$1" "$2"
}

# usage errors
expect_rc 2 "dkim keygen without --domain" "$CTL" dkim keygen --selector s --output "$T"
expect_rc 2 "dkim keygen with a bad algorithm" "$CTL" dkim keygen --domain example.test --selector s --algorithm dsa --output "$T"
expect_rc 2 "dkim keygen with a bad selector" "$CTL" dkim keygen --domain example.test --selector 'a/b' --output "$T"
expect_rc 2 "dkim keygen with --bits 512" "$CTL" dkim keygen --domain example.test --selector s --bits 512 --output "$T"
expect_rc 2 "auth spf without --helo" "$CTL" auth spf --ip 192.0.2.1
expect_rc 2 "auth spf with a bad address" "$CTL" auth spf --ip 300.1.2.3 --helo a.example --resolver 127.0.0.1:1
expect_rc 2 "auth dmarc with a bad domain" "$CTL" auth dmarc 'a..b'
expect_rc 2 "auth verify with --ip but no --helo" "$CTL" auth verify - --ip 192.0.2.1
expect_rc 2 "unknown auth verb" "$CTL" auth nothing
expect_rc 2 "bad --resolver" "$CTL" auth dmarc example.test --resolver not-an-address

# keygen: RSA and Ed25519, records checked against the keys
for alg in rsa ed25519; do
        expect_rc 0 "dkim keygen $alg" "$CTL" --json dkim keygen --domain example.test --selector "k-$alg" --algorithm "$alg" --output "$T"
        cp "$T/out" "$T/keygen-$alg.json"
        key=$T/k-$alg.example.test.pem
        if [ "$(stat -c %a "$key" 2>/dev/null)" = 600 ]; then ok "$alg key mode 0600"; else bad "$alg key mode: $(stat -c %a "$key" 2>&1)"; fi
        txt=$(json_get "$T/keygen-$alg.json" txt)
        if "$HELPER" check-record "$key" "$txt"; then ok "$alg keygen record holds the key"; else bad "$alg keygen record: $txt"; fi
        expect_rc 0 "dkim record $alg" "$CTL" --json dkim record --key "$key" --domain example.test --selector "k-$alg"
        if [ "$(json_get "$T/out" txt)" = "$txt" ]; then ok "$alg record = keygen record"; else bad "$alg record differs"; fi
        # the zone line: strings of at most 255 bytes that join to the record
        python3 - "$T/out" <<'PY' && ok "$alg zone line splits correctly" || bad "$alg zone line"
import json, re, sys
j = json.load(open(sys.argv[1]))
z = j["zone"]
assert z.startswith(j["name"] + ". IN TXT ( "), z
parts = re.findall(r'"([^"]*)"', z)
assert all(len(p) <= 255 for p in parts), [len(p) for p in parts]
assert "".join(parts) == j["txt"]
PY
done
if [ "$(json_get "$T/keygen-rsa.json" bits)" = 2048 ]; then ok "RSA default 2048 bits"; else bad "RSA bits"; fi
if grep -q '"p=' "$T/keygen-rsa.json" || [ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["zone"]))' "$T/keygen-rsa.json")" -gt 300 ]; then ok "RSA zone line long enough to be split"; else bad "RSA zone line"; fi
if "$HELPER" check-record "$T/k-rsa.example.test.pem" "$(json_get "$T/keygen-ed25519.json" txt)"; then bad "another key's record accepted"; else ok "another key's record refused"; fi
expect_rc 1 "keygen never overwrites a key" "$CTL" dkim keygen --domain example.test --selector k-rsa --output "$T"
expect_rc 1 "dkim record of a missing key" "$CTL" dkim record --key "$T/none.pem" --domain example.test --selector s

# RFC 8463's example key gives RFC 8463's record
(printf '\x30\x2e\x02\x01\x00\x30\x05\x06\x03\x2b\x65\x70\x04\x22\x04\x20'; printf 'nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=' | base64 -d) |
        openssl pkey -inform DER -out "$T/rfc8463.pem" 2>/dev/null
expect_rc 0 "dkim record of the RFC 8463 key" "$CTL" dkim record --key "$T/rfc8463.pem" --domain football.example.com --selector brisbane
if grep -qx ' *txt: v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=' "$T/out"; then ok "RFC 8463 record"; else bad "RFC 8463 record"; cat "$T/out"; fi
if grep -qx ' *name: brisbane._domainkey.football.example.com' "$T/out"; then ok "record name"; else bad "record name"; fi

# no server answers: the verdict is temperror, and that is still exit 0
printf 'From: a@example.test\r\nTo: b@example.test\r\nSubject: x\r\n\r\nbody\r\n' >"$T/msg"
expect_rc 0 "auth verify without an answering server" timeout 60 "$CTL" --json auth verify "$T/msg" --resolver 127.0.0.1:9
if [ "$(json_get "$T/out" dmarc)" = temperror ] && [ "$(json_get "$T/out" dkim-signatures)" = 0 ]; then ok "dmarc temperror, no signature"; else bad "verify output"; cat "$T/out"; fi
expect_rc 1 "auth verify of a missing file" "$CTL" auth verify "$T/none" --resolver 127.0.0.1:9
expect_rc 1 "dkim rotate without an answering server" timeout 60 "$CTL" dkim rotate --domain example.test --new-selector k-rsa --key "$T/k-rsa.example.test.pem" --resolver 127.0.0.1:9 --config-dir "$T/authd.conf.d"
if grep -q 'lookup-failed' "$T/out"; then ok "rotate says the lookup failed"; else bad "rotate output"; cat "$T/out"; fi
if [ ! -e "$T/authd.conf.d" ]; then ok "nothing switched while the key is not visible"; else bad "rotate wrote $(ls "$T/authd.conf.d")"; fi

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
