#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A test PKI made with openssl at test time:
#
#   ca.crt ca.key                 root CA "mailsec Test Root CA" (ECDSA P-256)
#   mx-rsa.{key,crt,chain.pem}    the proxy's RSA 2048 certificate
#   mx-ec.{key,crt,chain.pem}     the proxy's ECDSA P-256 certificate
#   backend.{key,crt,chain.pem}   the backend mail server's certificate
#   other-ca.crt other-ca.key     a second CA that signed nothing we use (wrong-CA tests)
#
# Leaf names: mx.example.test, smtp.example.test, localhost and IP 127.0.0.1
# for the proxy; backend.example.test, localhost and IP 127.0.0.1 for the
# backend. *.chain.pem is leaf + CA (what CertificateFile= takes); the key is in
# *.key. Existing files are kept, so running it twice is cheap.
#
# Source it and call mt_pki DIR, or run it: tests/lib/pki.sh DIR

mt_pki_ca() { # mt_pki_ca STEM SUBJECT-CN
        local stem=$1 cn=$2
        [ -s "$stem.crt" ] && return 0
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$stem.key" 2>/dev/null || return 1
        openssl req -x509 -new -key "$stem.key" -sha256 -days 3650 \
                -subj "/O=mailsec test/CN=$cn" \
                -addext "basicConstraints=critical,CA:TRUE" \
                -addext "keyUsage=critical,keyCertSign,cRLSign" \
                -addext "subjectKeyIdentifier=hash" -out "$stem.crt" 2>/dev/null
}

mt_pki_leaf() { # mt_pki_leaf DIR STEM rsa|ec NAME... (IP:a.b.c.d for addresses)
        local dir=$1 stem=$2 kt=$3 san="" n ku=digitalSignature
        shift 3
        [ -s "$dir/$stem.crt" ] && return 0
        for n in "$@"; do
                case $n in
                IP:*) san="${san:+$san,}$n" ;;
                *) san="${san:+$san,}DNS:$n" ;;
                esac
        done
        if [ "$kt" = rsa ]; then
                openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/$stem.key" 2>/dev/null || return 1
                ku="$ku,keyEncipherment"
        else
                openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$stem.key" 2>/dev/null || return 1
        fi
        # The CRL URI is never fetched; it keeps testssl.sh's revocation check quiet.
        cat >"$dir/$stem.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,$ku
extendedKeyUsage=serverAuth
subjectAltName=$san
authorityKeyIdentifier=keyid
subjectKeyIdentifier=hash
crlDistributionPoints=URI:http://ca.example.test/mailsec-test.crl
EOF
        openssl req -new -key "$dir/$stem.key" -subj "/CN=$1" -out "$dir/$stem.csr" 2>/dev/null &&
        openssl x509 -req -in "$dir/$stem.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
                -CAcreateserial -days 825 -sha256 -extfile "$dir/$stem.ext" \
                -out "$dir/$stem.crt" 2>/dev/null || return 1
        cat "$dir/$stem.crt" "$dir/ca.crt" >"$dir/$stem.chain.pem"
        rm -f "$dir/$stem.csr" "$dir/$stem.ext"
}

mt_pki() { # mt_pki DIR
        local dir=$1
        mkdir -p "$dir" || return 1
        mt_pki_ca "$dir/ca" "mailsec Test Root CA" || return 1
        mt_pki_ca "$dir/other-ca" "mailsec Unrelated CA" || return 1
        mt_pki_leaf "$dir" mx-rsa rsa mx.example.test smtp.example.test localhost IP:127.0.0.1 || return 1
        mt_pki_leaf "$dir" mx-ec ec mx.example.test smtp.example.test localhost IP:127.0.0.1 || return 1
        mt_pki_leaf "$dir" backend ec backend.example.test localhost IP:127.0.0.1 || return 1
        chmod 600 "$dir"/*.key
        # readable by the unprivileged users the services may run as
        chmod 644 "$dir"/*.crt "$dir"/*.chain.pem
        # swaks --tls-ca-path and openssl -CApath want a hashed directory
        mkdir -p "$dir/capath" "$dir/other-capath"
        cp "$dir/ca.crt" "$dir/capath/ca.pem"
        cp "$dir/other-ca.crt" "$dir/other-capath/ca.pem"
        openssl rehash "$dir/capath" "$dir/other-capath" 2>/dev/null
        openssl verify -CAfile "$dir/ca.crt" "$dir/mx-rsa.crt" "$dir/mx-ec.crt" "$dir/backend.crt" >/dev/null
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
        set -euo pipefail
        [ $# = 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
        mt_pki "$1"
        echo "test PKI in $1 (CA: $1/ca.crt)"
fi
