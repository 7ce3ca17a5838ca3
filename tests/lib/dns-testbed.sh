# shellcheck shell=bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A hermetic DNSSEC world on loopback for mailsec's DNS tests. Source this file
# (after lib.sh), then:
#
#   dns_testbed_start DIR   generate keys and zones under DIR, start nsd and unbound
#   dns_testbed_stop DIR    stop both, by their pidfiles in DIR only
#
# nsd ($DNS_TB_AUTH_IP:53) is authoritative for a signed private root ".", a
# signed "test." and its children; unbound ($DNS_TB_RESOLVER_IP:53) validates,
# with the private root's DS as its only trust anchor and nsd as its only root
# server. Nothing leaves loopback, and every name outside test. is a secure
# NXDOMAIN.
#
#   example.test.  signed, secure: MX, A, CNAME, SPF/DMARC/DKIM TXT (the DKIM
#                  record in two character-strings), big TXT (truncated over UDP)
#   plain.test.    unsigned, delegated without DS: provably insecure
#   bogus.test.    signed, but the DS in test. is for another key: bogus (SERVFAIL)
#
# Needs nsd, unbound, ldnsutils (ldns-keygen, ldns-signzone, ldns-key2ds) and dig.

DNS_TB_AUTH_IP=${DNS_TB_AUTH_IP:-127.0.63.1}
DNS_TB_RESOLVER_IP=${DNS_TB_RESOLVER_IP:-127.0.63.2}
DNS_TB_MX_IP=${DNS_TB_MX_IP:-127.0.63.25}

# The DKIM key record of example.test, published as two character-strings.
DNS_TB_DKIM_1="v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
DNS_TB_DKIM_2="; t=s; n=split-across-two-character-strings"

_dns_tb_key() { # _dns_tb_key DIR ZONE: make a CSK (ECDSA P-256), print its base name
        (cd "$1/keys" && ldns-keygen -r /dev/urandom -a ECDSAP256SHA256 -k "$2")
}

_dns_tb_ds() { # _dns_tb_ds DIR KEY: its DS record (SHA-256)
        (cd "$1/keys" && ldns-key2ds -n -2 "$2.key")
}

_dns_tb_zone_head() { # _dns_tb_zone_head ORIGIN SERIAL
        printf '$ORIGIN %s\n$TTL 300\n' "$1"
        printf '@ SOA ns1.test. hostmaster.test. %s 3600 600 86400 60\n' "$2"
        printf '@ NS ns1.test.\n'
}

_dns_tb_zones() {
        local d=$1 serial k_ex k_bogus k_other k_test k_root
        serial=$(date +%s)
        mkdir -p "$d/keys" "$d/zones"

        {
                _dns_tb_zone_head example.test. "$serial"
                printf '@ MX 10 mx.example.test.\n'
                printf '@ TXT "v=spf1 ip4:%s -all"\n' "$DNS_TB_MX_IP"
                printf '_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.test"\n'
                printf 'sel1._domainkey TXT "%s" "%s"\n' "$DNS_TB_DKIM_1" "$DNS_TB_DKIM_2"
                printf 'mx A %s\n' "$DNS_TB_MX_IP"
                printf 'www CNAME mx.example.test.\n'
                # over 4096 octets, more than anyone sends over UDP: the reply is truncated
                for ((i = 0; i < 25; i++)); do
                        printf 'big TXT "%s-%0200d"\n' "$i" 0
                done
        } >"$d/zones/example.test.zone"
        {
                _dns_tb_zone_head plain.test. "$serial"
                printf '@ MX 10 mx.plain.test.\n'
                printf '@ TXT "v=spf1 ip4:%s ~all"\n' "$DNS_TB_MX_IP"
                printf 'mx A %s\n' "$DNS_TB_MX_IP"
        } >"$d/zones/plain.test.zone"
        {
                _dns_tb_zone_head bogus.test. "$serial"
                printf '@ TXT "v=spf1 -all"\n'
                printf 'mx A %s\n' "$DNS_TB_MX_IP"
        } >"$d/zones/bogus.test.zone"

        k_ex=$(_dns_tb_key "$d" example.test) || return 1
        k_bogus=$(_dns_tb_key "$d" bogus.test) || return 1
        k_other=$(_dns_tb_key "$d" bogus.test) || return 1     # its DS goes into test., the key nowhere
        ldns-signzone -f "$d/zones/example.test.signed" "$d/zones/example.test.zone" "$d/keys/$k_ex" || return 1
        ldns-signzone -f "$d/zones/bogus.test.signed" "$d/zones/bogus.test.zone" "$d/keys/$k_bogus" || return 1

        {
                _dns_tb_zone_head test. "$serial"
                printf 'ns1 A %s\n' "$DNS_TB_AUTH_IP"
                printf '%s NS ns1.test.\n' example plain bogus
                _dns_tb_ds "$d" "$k_ex"
                _dns_tb_ds "$d" "$k_other"
        } >"$d/zones/test.zone"
        k_test=$(_dns_tb_key "$d" test) || return 1
        ldns-signzone -f "$d/zones/test.signed" "$d/zones/test.zone" "$d/keys/$k_test" || return 1

        {
                _dns_tb_zone_head . "$serial"
                printf 'test. NS ns1.test.\n'
                printf 'ns1.test. A %s\n' "$DNS_TB_AUTH_IP"
                _dns_tb_ds "$d" "$k_test"
        } >"$d/zones/root.zone"
        k_root=$(_dns_tb_key "$d" .) || return 1
        ldns-signzone -o . -f "$d/zones/root.signed" "$d/zones/root.zone" "$d/keys/$k_root" || return 1
        _dns_tb_ds "$d" "$k_root" >"$d/root.ds" || return 1
        printf '. 3600000 IN NS ns1.test.\nns1.test. 3600000 IN A %s\n' "$DNS_TB_AUTH_IP" >"$d/root.hints"
}

_dns_tb_configs() {
        local d=$1 z f
        {
                printf 'server:\n'
                printf '    ip-address: %s\n    port: 53\n    do-ip6: no\n' "$DNS_TB_AUTH_IP"
                printf '    server-count: 1\n    username: ""\n    chroot: ""\n'
                printf '    zonesdir: "%s/zones"\n    database: ""\n' "$d"
                printf '    zonelistfile: "%s/zone.list"\n    xfrdfile: "%s/xfrd.state"\n' "$d" "$d"
                printf '    xfrdir: "%s"\n    pidfile: "%s/nsd.pid"\n    logfile: "%s/nsd.log"\n' "$d" "$d" "$d"
                printf '    verbosity: 1\nremote-control:\n    control-enable: no\n'
                printf 'zone:\n    name: "."\n    zonefile: "root.signed"\n'
                for z in test example.test plain.test bogus.test; do
                        f=$z.signed
                        [ "$z" = plain.test ] && f=$z.zone
                        printf 'zone:\n    name: "%s."\n    zonefile: "%s"\n' "$z" "$f"
                done
        } >"$d/nsd.conf"

        # do-not-query-localhost: nsd is on 127.x, which unbound refuses by default;
        # local-zone "test." transparent: else unbound answers test. itself (RFC 6761).
        {
                printf 'server:\n'
                printf '    interface: %s\n    port: 53\n    do-ip6: no\n' "$DNS_TB_RESOLVER_IP"
                printf '    num-threads: 1\n    username: ""\n    chroot: ""\n'
                printf '    directory: "%s"\n    pidfile: "%s/unbound.pid"\n' "$d" "$d"
                printf '    logfile: "%s/unbound.log"\n    use-syslog: no\n' "$d"
                printf '    verbosity: 1\n    val-log-level: 2\n    log-servfail: yes\n'
                printf '    access-control: 127.0.0.0/8 allow\n'
                printf '    do-not-query-localhost: no\n'
                printf '    module-config: "validator iterator"\n'
                printf '    root-hints: "%s/root.hints"\n' "$d"
                printf '    trust-anchor-file: "%s/root.ds"\n' "$d"
                printf '    local-zone: "test." transparent\n'
                printf '    cache-max-negative-ttl: 5\n'
                printf 'remote-control:\n    control-enable: no\n'
        } >"$d/unbound.conf"
}

dns_testbed_stop() {
        local d=$1
        [ -n "$d" ] || return 1
        mt_kill_pidfile "$d/unbound.pid"
        mt_kill_pidfile "$d/nsd.pid"
}

dns_testbed_start() {
        local d=$1 i
        [ -n "$d" ] || return 1
        dns_testbed_stop "$d"
        mkdir -p "$d"
        rm -rf "${d:?}/zones" "${d:?}/keys"
        if ! _dns_tb_zones "$d" >"$d/zones.log" 2>&1; then
                mt_log "DNS zone generation failed"
                cat "$d/zones.log" >&2
                return 1
        fi
        _dns_tb_configs "$d"
        nsd-checkconf "$d/nsd.conf" || return 1
        unbound-checkconf "$d/unbound.conf" >/dev/null || return 1
        if ! nsd -c "$d/nsd.conf"; then
                mt_log "nsd did not start"
                return 1
        fi
        if ! unbound -c "$d/unbound.conf"; then
                mt_log "unbound did not start"
                return 1
        fi
        for ((i = 0; i < 50; i++)); do
                if grep -q 'status: NOERROR' < <(dig +time=1 +tries=1 @"$DNS_TB_RESOLVER_IP" test SOA 2>/dev/null); then
                        return 0
                fi
                sleep 0.1
        done
        mt_log "unbound on $DNS_TB_RESOLVER_IP does not answer for test."
        return 1
}
