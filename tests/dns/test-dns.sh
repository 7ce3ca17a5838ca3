#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The stub resolver against real DNSSEC: tests/lib/dns-testbed.sh starts nsd
# (signed private root, test., example.test., unsigned plain.test., bogus
# bogus.test.) and a validating unbound on 127.0.63.0/24, then test-dns-live asks
# them through dns_resolver_query() and checks result, DNSSEC status and content.
#
# Needs root (port 53), nsd, unbound, ldnsutils and dig; skips (77) otherwise.
# Env: DNS_TEST_LIVE (the test program), MT_KEEP=1 keeps the state directory.

set -uo pipefail
MT_LIB_DIR=${MT_LIB_DIR:-$(cd "$(dirname "$0")/../lib" && pwd)}
. "$MT_LIB_DIR/lib.sh"
. "$MT_LIB_DIR/dns-testbed.sh"

if [ "$(id -u)" != 0 ]; then
        echo "SKIP: needs root (nsd and unbound listen on port 53)"
        exit 77
fi
mt_need nsd nsd-checkconf unbound unbound-checkconf ldns-keygen ldns-signzone ldns-key2ds dig timeout
PROG=${DNS_TEST_LIVE:-}
if [ -z "$PROG" ] || [ ! -x "$PROG" ]; then
        echo "SKIP: test-dns-live is not built (set DNS_TEST_LIVE)"
        exit 77
fi

T=$(mktemp -d /tmp/mailsec-dns.XXXXXX)
cleanup() {
        dns_testbed_stop "$T"
        if [ "${MT_KEEP:-0}" = 1 ]; then
                echo "state kept in $T"
        else
                rm -rf "$T"
        fi
}
trap cleanup EXIT

if ! dns_testbed_start "$T"; then
        echo "FAIL: the DNS testbed did not start"
        [ -f "$T/unbound.log" ] && tail -20 "$T/unbound.log"
        exit 1
fi

timeout 60 "$PROG" "$DNS_TB_RESOLVER_IP:53" "$DNS_TB_AUTH_IP:53" "$DNS_TB_DKIM_1$DNS_TB_DKIM_2"
rc=$?
if [ $rc != 0 ]; then
        echo "--- unbound.log (last lines)"
        tail -20 "$T/unbound.log"
fi
exit $rc
