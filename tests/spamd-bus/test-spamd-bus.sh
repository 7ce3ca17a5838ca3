#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# mailsec-spamd on a private bus, driven with mailsecctl and busctl:
#
#   training       mailsecctl spam learn of generated spam and ham, one by one and in
#                  bulk (files, a Maildir, an mbox); the totals; no spam verdict before each
#                  class has SpamVerdictMinMessages= (20) learned
#   classify       new messages of each kind get confident verdicts; explain names tokens
#   domains        what a domain learned outweighs the global statistics for its mail
#   lists          a spam posted to a list whose ham was learned: the list's fields
#                  count once (field families), and it is called spam
#   reports        the same message twice counts once; the other class moves it; forget
#                  takes it out exactly (by digest, file or mbox); per-reporter rate
#                  limit, which stops a bulk report; reports by mail only from
#                  ReportDomains=; only trusted callers name a reporter; Learn is for
#                  root and the group mailsec
#   durability     learns acknowledged before a kill -9 are all there after a restart
#                  (the journal record is synced before the reply); rebuild gives the
#                  same totals; compact keeps them and shrinks the journal; reset
#                  empties them (root and the group mailsec only); compaction forgets
#                  auto-learned messages beyond AutoLearnKeep= and those older than
#                  ForgetAfterSec=
#   interface      the live introspection equals interfaces/ch.webtrend.Mailsec.Spam1.Manager.xml
#
# Environment: MAILSEC_SPAMD, MAILSECCTL, CHECK_INTERFACES, SPAMD_XML, MT_LIB_DIR.
# Exit status: 0 pass, 1 fail, 77 skipped.
set -u -o pipefail

MT_LIB_DIR=${MT_LIB_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/lib.sh
. "$MT_LIB_DIR/lib.sh"
# shellcheck source=tests/lib/private-bus.sh
. "$MT_LIB_DIR/private-bus.sh"

NAME=ch.webtrend.Mailsec.Spam1
OBJ=/ch/webtrend/Mailsec/Spam1
IFACE=ch.webtrend.Mailsec.Spam1.Manager

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (calls as another user)"; exit 77; }
mt_need dbus-daemon busctl setpriv "$MT_PYTHON" timeout
for v in MAILSEC_SPAMD MAILSECCTL; do
        [ -x "${!v:-}" ] || { echo "SKIP: $v is not built"; exit 77; }
done

PASS=0
FAILS=0
ok() { echo "ok: $*"; PASS=$((PASS + 1)); }
bad() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }

W=$(mktemp -d /tmp/mailsec-spamd-bus.XXXXXX)
chmod 755 "$W"
SPAMD_PID=
cleanup() {
        local rc=$?
        [ -n "$SPAMD_PID" ] && { kill "$SPAMD_PID" 2>/dev/null; wait "$SPAMD_PID" 2>/dev/null; }
        bus_stop "$W/bus"
        if [ "${MT_KEEP:-0}" = 1 ]; then echo "state kept in $W"; else rm -rf "$W"; fi
        exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bus_start "$W/bus" || { echo "FAIL: the private bus did not start"; exit 1; }

cat >"$W/spamd.conf" <<CONF
[Learning]
ReportsPerHour=5
ReportDomains=example.org
AutoLearnMinMessages=5
AutoLearnMaxRatio=1.01
AutoLearnHamBelow=0.02
[Service]
IdleTimeoutSec=0
CONF
# IdleTimeoutSec=0 would exit at once: keep it running for the test
sed -i 's/^IdleTimeoutSec=0$/IdleTimeoutSec=10min/' "$W/spamd.conf"

start_spamd() { # start_spamd LOG
        "$MAILSEC_SPAMD" --config="$W/spamd.conf" --state-dir="$W/state" --log-level=debug 2>>"$1" &
        SPAMD_PID=$!
        for ((i = 0; i < 200; i++)); do
                busctl --system --timeout=1 status "$NAME" >/dev/null 2>&1 && return 0
                kill -0 "$SPAMD_PID" 2>/dev/null || break
                sleep 0.05
        done
        tail -n 20 "$1"
        echo "FAIL: $NAME did not appear"
        exit 1
}
stat_of() { busctl --system --timeout=10 get-property "$NAME" "$OBJ" "$IFACE" "$1" 2>/dev/null | awk '{print $2}'; }
json() { "$MT_PYTHON" -c 'import json,sys; v=json.load(sys.stdin); print(v[sys.argv[1]] if not isinstance(v[sys.argv[1]], bool) else str(v[sys.argv[1]]).lower())' "$1"; }

mkdir -p "$W/state"
start_spamd "$W/spamd.log"
ok "mailsec-spamd is on the private bus"
[ -s "$W/state/tokenizer-version" ] && ok "a new store records its tokenizer version ($(cat "$W/state/tokenizer-version"))" ||
        bad "no tokenizer-version in the state directory"

# --- training
"$MT_PYTHON" "$HERE/gen-messages.py" "$W/train" 40 1 t
"$MT_PYTHON" "$HERE/gen-messages.py" "$W/new" 10 2 n
# A spam verdict waits until each class has 20 learned messages (SpamVerdictMinMessages=):
# with 19 of each a clear spam is unsure, its score in the unsure band; one more of each
# and it is spam. Learning the same message again below counts once.
for ((k = 0; k < 19; k++)); do
        "$MAILSECCTL" spam learn spam "$W/train/t-spam-$k.eml" >/dev/null &&
                "$MAILSECCTL" spam learn ham "$W/train/t-ham-$k.eml" >/dev/null || bad "learning t-*-$k"
done
out=$("$MAILSECCTL" --json spam classify "$W/new/n-spam-0.eml")
verdict=$(echo "$out" | json verdict) score=$(echo "$out" | json score)
[ "$verdict" = unsure ] && "$MT_PYTHON" -c "import sys; sys.exit(0 if 0.2 <= float('$score') < 0.9 else 1)" &&
        ok "with 19 of each class learned a clear spam is unsure ($score)" || bad "with 19 of each: $verdict $score"
"$MAILSECCTL" spam learn spam "$W/train/t-spam-19.eml" >/dev/null &&
        "$MAILSECCTL" spam learn ham "$W/train/t-ham-19.eml" >/dev/null || bad "learning t-*-19"
out=$("$MAILSECCTL" --json spam classify "$W/new/n-spam-0.eml")
verdict=$(echo "$out" | json verdict) score=$(echo "$out" | json score)
[ "$verdict" = spam ] && "$MT_PYTHON" -c "import sys; sys.exit(0 if float('$score') >= 0.9 else 1)" &&
        ok "with 20 of each it is spam ($score)" || bad "with 20 of each: $verdict $score"

# The rest of the training in bulk: the spam as a list of files, the ham from a Maildir
# (cur/ and new/; not tmp/, its folders or dot files, where a spam waits to be learned
# wrongly). The first 20 of each class are learned already.
mkdir -p "$W/Maildir/cur" "$W/Maildir/new" "$W/Maildir/tmp" "$W/Maildir/.Junk/cur"
for ((k = 0; k < 40; k++)); do
        cp "$W/train/t-ham-$k.eml" "$W/Maildir/$([ $((k % 2)) = 0 ] && echo cur || echo new)/1700000$k.M1P1.host:2,S"
done
for d in tmp .Junk/cur; do cp "$W/train/t-spam-0.eml" "$W/Maildir/$d/1700000999.M1P1.host"; done
cp "$W/train/t-spam-0.eml" "$W/Maildir/cur/.1700000999.M1P1.host"
summary() { echo "$1" | "$MT_PYTHON" -c 'import json,sys; v=json.load(sys.stdin); print("%(messages)s/%(changed)s/%(unchanged)s/%(failed)s" % v)'; }
out=$("$MAILSECCTL" --json spam learn spam "$W"/train/t-spam-*.eml 2>>"$W/ctl.err") &&
        [ "$(summary "$out")" = 40/20/20/0 ] && ok "40 spam files learned at once: 20 new, 20 known already" ||
        bad "bulk learn of files: $out $(tail -3 "$W/ctl.err")"
out=$("$MAILSECCTL" --json spam learn ham "$W/Maildir" 2>>"$W/ctl.err") &&
        [ "$(summary "$out")" = 40/20/20/0 ] && ok "40 ham learned from a Maildir's cur/ and new/" ||
        bad "bulk learn of a Maildir: $out $(tail -3 "$W/ctl.err")"
out=$("$MAILSECCTL" --json spam learn ham "$W/train/t-ham-0.eml" "$W/no-such.eml" 2>"$W/err"); rc=$?
[ $rc = 1 ] && [ "$(summary "$out")" = 1/0/1/1 ] && grep -q "no-such.eml" "$W/err" &&
        ok "a file that cannot be read: the others learned, it is named, exit status 1" ||
        bad "bulk learn with a missing file: rc $rc, $out, $(cat "$W/err")"
"$MAILSECCTL" spam learn ham - "$W/train/t-ham-0.eml" </dev/null >/dev/null 2>&1; rc=$?
[ $rc = 2 ] && ok "standard input among other files is a usage error" || bad "- among files: exit $rc"
[ "$(stat_of SpamLearned)" = 40 ] && [ "$(stat_of HamLearned)" = 40 ] &&
        ok "SpamLearned=40 HamLearned=40" || bad "totals: spam $(stat_of SpamLearned) ham $(stat_of HamLearned)"
[ "$(stat_of Tokens)" -gt 100 ] 2>/dev/null && ok "Tokens=$(stat_of Tokens)" || bad "Tokens=$(stat_of Tokens)"

# pending counts are written once learning pauses (2 s), the journal at once
"$MAILSECCTL" spam learn spam "$W/new/n-spam-9.eml" >/dev/null
[ -e "$W/state/tokens.dirty" ] && ok "right after a learn the counts are pending (tokens.dirty)" || bad "no tokens.dirty after a learn"
for ((i = 0; i < 60; i++)); do [ -e "$W/state/tokens.dirty" ] || break; sleep 0.1; done
[ ! -e "$W/state/tokens.dirty" ] && ok "2 s later they are written without another call" || bad "tokens.dirty still there after 6 s"
"$MAILSECCTL" spam forget "$(sha256sum <"$W/new/n-spam-9.eml" | cut -d' ' -f1)" >/dev/null

# --- classify
right=0 unsure=0 wrong=0
for f in "$W"/new/*.eml; do
        want=spam; case $f in *-ham-*) want=ham;; esac
        v=$("$MAILSECCTL" --json spam classify "$f" | json verdict)
        if [ "$v" = "$want" ]; then right=$((right + 1)); elif [ "$v" = unsure ]; then unsure=$((unsure + 1)); else wrong=$((wrong + 1)); fi
done
[ $wrong = 0 ] && [ $right -ge 18 ] && ok "20 new messages: $right right, $unsure unsure, $wrong wrong" ||
        bad "20 new messages: $right right, $unsure unsure, $wrong wrong"
score=$("$MAILSECCTL" --json spam classify "$W/new/n-spam-0.eml" | json score)
"$MT_PYTHON" -c "import sys; sys.exit(0 if float('$score') >= 0.9 else 1)" && ok "a new spam scores $score" || bad "new spam scores $score"
"$MAILSECCTL" spam explain "$W/new/n-spam-0.eml" >"$W/explain.txt" 2>&1
grep -Eq '^[0-9.]+ +spam +(w|h:subject):' "$W/explain.txt" && ok "explain names the tokens that pushed towards spam" ||
        { bad "explain output"; cat "$W/explain.txt"; }
[ "$(stat_of MessagesClassified)" -ge 21 ] && ok "MessagesClassified=$(stat_of MessagesClassified)" || bad "MessagesClassified=$(stat_of MessagesClassified)"

# --- auto-learning: confident verdicts only, and the class-balance guard (AutoLearnMaxRatio=1.01)
"$MAILSECCTL" spam classify --autolearn "$W/new/n-spam-8.eml" >/dev/null
[ "$(stat_of AutoLearned)" = 1 ] && [ "$(stat_of SpamLearned)" = 41 ] && ok "a confident spam verdict is auto-learned (41/40)" ||
        bad "auto-learn: AutoLearned=$(stat_of AutoLearned) spam=$(stat_of SpamLearned)"
"$MAILSECCTL" spam classify --autolearn "$W/new/n-spam-9.eml" >/dev/null
[ "$(stat_of AutoLearned)" = 1 ] && [ "$(stat_of SpamLearned)" = 41 ] &&
        ok "the next spam is not auto-learned: spam would outnumber ham by more than AutoLearnMaxRatio=" ||
        bad "balance guard: AutoLearned=$(stat_of AutoLearned) spam=$(stat_of SpamLearned)"
# Of the new ham, one scored below AutoLearnHamBelow= (confident) and, if the filter has
# one, one called ham above it: only the first is learned.
confident="" unconfident="" unconfident_score=""
for k in 0 1 2 4 5 6 7 8 9; do
        s=$("$MAILSECCTL" --json spam classify "$W/new/n-ham-$k.eml" | json score)
        if "$MT_PYTHON" -c "import sys; sys.exit(0 if float('$s') < 0.02 else 1)"; then
                [ -n "$confident" ] || confident=n-ham-$k
        elif "$MT_PYTHON" -c "import sys; sys.exit(0 if float('$s') < 0.2 else 1)"; then
                [ -n "$unconfident" ] || { unconfident=n-ham-$k; unconfident_score=$s; }
        fi
done
if [ -n "$unconfident" ]; then
        "$MAILSECCTL" spam classify --autolearn "$W/new/$unconfident.eml" >/dev/null
        [ "$(stat_of AutoLearned)" = 1 ] && [ "$(stat_of HamLearned)" = 40 ] &&
                ok "a ham verdict that is not confident ($unconfident, $unconfident_score) is not auto-learned" ||
                bad "unconfident ham auto-learned: AutoLearned=$(stat_of AutoLearned) ham=$(stat_of HamLearned)"
else
        ok "no new ham is called ham without confidence (nothing to check there)"
fi
if [ -n "$confident" ]; then
        "$MAILSECCTL" spam classify --autolearn "$W/new/$confident.eml" >/dev/null
        [ "$(stat_of AutoLearned)" = 2 ] && [ "$(stat_of HamLearned)" = 41 ] &&
                ok "a confident ham verdict is auto-learned ($confident, 41/41)" ||
                bad "ham auto-learn: AutoLearned=$(stat_of AutoLearned) ham=$(stat_of HamLearned)"
else
        bad "none of the new ham scores below AutoLearnHamBelow=0.02"
fi
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
chmod -R a+rX "$W/new"
as_nobody "$MAILSECCTL" spam classify --autolearn "$W/new/n-spam-9.eml" >/dev/null 2>"$W/err"
grep -q "may ask for auto-learning" "$W/err" && ok "a plain user may not ask for auto-learning" || bad "autolearn by nobody: $(cat "$W/err")"
# weights: auto-learning never moves what a person classified, a report never moves an admin's Learn
out=$("$MAILSECCTL" --json spam report ham "$W/new/n-spam-5.eml" --reporter imap:bob)
[ "$(echo "$out" | json changed)" = true ] && ok "imap:bob reports a spam message as ham" || bad "report as ham: $out"
learned=$(stat_of AutoLearned) ham=$(stat_of HamLearned)
"$MAILSECCTL" spam classify --autolearn "$W/new/n-spam-5.eml" >/dev/null
[ "$(stat_of AutoLearned)" = "$learned" ] && [ "$(stat_of HamLearned)" = "$ham" ] &&
        ok "a confident spam verdict does not auto-learn over the user's report" ||
        bad "auto-learning moved a reported message: AutoLearned $(stat_of AutoLearned), ham $(stat_of HamLearned)"
"$MAILSECCTL" spam report spam "$W/train/t-ham-2.eml" --reporter imap:bob >/dev/null 2>"$W/err"
grep -q "classified by an administrator" "$W/err" && ok "a report does not move a message an administrator learned" ||
        bad "report over Learn: $(cat "$W/err")"
"$MAILSECCTL" spam forget "$(sha256sum <"$W/new/n-spam-5.eml" | cut -d' ' -f1)" >/dev/null
# undo, so the figures below stay those of the training set
for f in n-spam-8 ${confident:-n-ham-8}; do "$MAILSECCTL" spam forget "$(sha256sum <"$W/new/$f.eml" | cut -d' ' -f1)" >/dev/null; done
[ "$(stat_of SpamLearned)" = 40 ] && [ "$(stat_of HamLearned)" = 40 ] && ok "forgotten again (40/40)" ||
        bad "after forgetting the auto-learned: $(stat_of SpamLearned)/$(stat_of HamLearned)"

# --- reports: once, move, forget
out=$("$MAILSECCTL" --json spam report spam "$W/train/t-spam-0.eml")
[ "$(echo "$out" | json changed)" = false ] && ok "reporting a learned spam as spam changes nothing" || bad "report again: $out"
"$MAILSECCTL" spam report ham "$W/new/n-ham-3.eml" --reporter imap:carol >/dev/null
[ "$(stat_of HamLearned)" = 41 ] && ok "imap:carol reports a new message as ham (40/41)" || bad "report ham: $(stat_of HamLearned)"
out=$("$MAILSECCTL" --json spam report spam "$W/new/n-ham-3.eml" --reporter imap:carol)
digest=$(echo "$out" | json digest)
[ "$(echo "$out" | json changed)" = true ] && [ "$(stat_of SpamLearned)" = 41 ] && [ "$(stat_of HamLearned)" = 40 ] &&
        ok "reporting it as spam moves it (41/40)" || bad "move: $out, $(stat_of SpamLearned)/$(stat_of HamLearned)"
[ "$digest" = "$(sha256sum <"$W/new/n-ham-3.eml" | cut -d' ' -f1)" ] && ok "the digest of a message as sent is its SHA-256" || bad "digest $digest"
# the copy in a mailbox: delivery fields added, LF line ends, an empty line at the end
{ printf 'Return-Path: <alice@example.org>\nDelivered-To: user@example.org\nReceived: from mx by imap; Fri, 27 Nov 2026 10:00:01 +0000\nX-Spam-Status: No\n'
  tr -d '\r' <"$W/new/n-ham-3.eml"; printf '\n'; } >"$W/delivered.eml"
out=$("$MAILSECCTL" --json spam report spam "$W/delivered.eml" --reporter imap:carol)
[ "$(echo "$out" | json digest)" = "$digest" ] && [ "$(echo "$out" | json changed)" = false ] &&
        ok "the delivered copy (trace fields, LF, trailing empty line) has the same digest: counted once" ||
        bad "delivered copy: $out"
out=$("$MAILSECCTL" --json spam forget "$digest")
[ "$(echo "$out" | json forgotten)" = true ] && [ "$(stat_of SpamLearned)" = 40 ] && [ "$(stat_of HamLearned)" = 40 ] &&
        ok "forget takes it out (40/40)" || bad "forget: $out, $(stat_of SpamLearned)/$(stat_of HamLearned)"
"$MAILSECCTL" spam forget "$digest" >/dev/null 2>&1; [ $? = 1 ] && ok "forgetting it again: exit 1" || bad "second forget"
"$MAILSECCTL" spam forget nothex >/dev/null 2>"$W/err"; grep -q "64 hex digits" "$W/err" && ok "a bad digest is refused" || bad "bad digest: $(cat "$W/err")"

# --- reports by a local user: attributed, rate-limited, no reporter of its own, no Learn
n_ok=0 last=
for k in 0 1 2 3 4 5; do
        if as_nobody "$MAILSECCTL" spam report spam "$W/new/n-spam-$k.eml" >/dev/null 2>"$W/err"; then
                n_ok=$((n_ok + 1))
        else
                last=$(cat "$W/err")
        fi
done
[ $n_ok = 5 ] && grep -q "reports in the last hour" <<<"$last" && ok "ReportsPerHour=5: the sixth report of uid nobody is refused" ||
        bad "rate limit: $n_ok accepted, last error: $last"
grep -q "uid:$(id -u nobody)" "$W/spamd.log" && ok "reports are attributed to uid:$(id -u nobody)" || bad "no uid attribution in the log"
as_nobody "$MAILSECCTL" spam report spam "$W/new/n-spam-6.eml" --reporter imap:alice >/dev/null 2>"$W/err"
grep -qi "may only report for itself" "$W/err" && ok "a plain user may not name a reporter" || bad "reporter by nobody: $(cat "$W/err")"
as_nobody "$MAILSECCTL" spam learn spam "$W/new/n-spam-6.eml" >/dev/null 2>"$W/err"
grep -qi "access denied\|denied" "$W/err" && ok "Learn is refused to a plain user" || bad "Learn by nobody: $(cat "$W/err")"
"$MAILSECCTL" spam report spam "$W/new/n-spam-7.eml" --reporter mail:eve@evil.test >/dev/null 2>"$W/err"
grep -q "not an address of the organisation" "$W/err" && ok "a report by mail from outside ReportDomains= is refused" || bad "outside reporter: $(cat "$W/err")"
out=$("$MAILSECCTL" --json spam report spam "$W/new/n-spam-7.eml" --reporter mail:bob@sub.example.org)
[ "$(echo "$out" | json changed)" = true ] && ok "a report by mail from a subdomain of ReportDomains= is taken" || bad "inside reporter: $out"
[ "$(stat_of ReportsRefused)" -ge 3 ] && ok "ReportsRefused=$(stat_of ReportsRefused)" || bad "ReportsRefused=$(stat_of ReportsRefused)"

# --- per-domain statistics (DomainStatistics=, on by default): what a domain learned
#     outweighs the global statistics for its mail, and only for its mail
"$MT_PYTHON" "$HERE/gen-messages.py" "$W/dom" 6 4 d
fails=0
for k in 0 1 2 3 4; do
        # a pharmacy: the pill offers its users get are ham to it, the meeting notes spam
        "$MAILSECCTL" spam learn ham "$W/dom/d-spam-$k.eml" --domain pharma.example >/dev/null 2>>"$W/ctl.err" || fails=$((fails + 1))
        "$MAILSECCTL" spam learn spam "$W/dom/d-ham-$k.eml" --domain pharma.example >/dev/null 2>>"$W/ctl.err" || fails=$((fails + 1))
done
[ $fails = 0 ] && ok "10 messages learned for the domain pharma.example" || bad "$fails domain learns failed: $(tail -3 "$W/ctl.err")"
global=$("$MAILSECCTL" --json spam classify "$W/dom/d-spam-5.eml" | json score)
other=$("$MAILSECCTL" --json spam classify --domain elsewhere.example "$W/dom/d-spam-5.eml" | json score)
out=$("$MAILSECCTL" --json spam classify --domain pharma.example "$W/dom/d-spam-5.eml")
domain=$(echo "$out" | json score)
"$MT_PYTHON" -c "import sys; sys.exit(0 if float('$global') >= 0.9 and float('$domain') < 0.5 else 1)" &&
        [ "$(echo "$out" | json verdict)" != spam ] &&
        ok "a new pill offer: spam globally ($global), not for pharma.example ($domain)" ||
        bad "domain statistics: global $global, pharma.example $domain ($out)"
[ "$other" = "$global" ] && ok "a domain without statistics scores as the global statistics do" ||
        bad "elsewhere.example scores $other, globally $global"

# --- field families: a spam posted to a list the users' ham comes through is not
#     outvoted by the list's dozen fields; they count once, in their strongest token
list_block=$'List-Id: Team <team.lists.example.org>\r\nList-Post: <mailto:team@lists.example.org>\r\nList-Help: <mailto:team-request@lists.example.org?subject=help>\r\nList-Unsubscribe: <https://lists.example.org/team>, <mailto:team-leave@lists.example.org>\r\nList-Archive: <https://lists.example.org/archive/team>\r\nPrecedence: list\r\nSender: team-bounces@lists.example.org\r\nErrors-To: team-bounces@lists.example.org\r\nX-BeenThere: team@lists.example.org\r\n'
via_list() { # via_list IN OUT: IN with the list's fields before its Subject
        "$MT_PYTHON" -c 'import sys
m = open(sys.argv[1], newline="").read()
i = m.index("\r\nSubject: ") + 2
open(sys.argv[2], "w", newline="").write(m[:i] + sys.argv[3] + m[i:])' "$1" "$2" "$list_block"
}
fails=0
for k in 0 1 2 3 4 5; do
        via_list "$W/train/t-ham-$k.eml" "$W/list-ham-$k.eml"
        "$MAILSECCTL" spam learn ham "$W/list-ham-$k.eml" >/dev/null 2>>"$W/ctl.err" || fails=$((fails + 1))
done
via_list "$W/new/n-spam-3.eml" "$W/list-spam.eml"
grep -q '^X-BeenThere: team@lists.example.org' "$W/list-spam.eml" && [ $fails = 0 ] &&
        ok "6 ham learned through the list team.lists.example.org" || bad "list ham: $fails learns failed"
"$MAILSECCTL" spam explain --top 100 "$W/list-spam.eml" >"$W/explain-list.txt" 2>&1
family='^h(f)?:(list-[a-z]+|precedence|sender|errors-to|x-beenthere)(:|$)'
n_list=$(awk -v re="$family" '$3 ~ re' "$W/explain-list.txt" | wc -l)
n_word=$(awk '$3 ~ /^w:/' "$W/explain-list.txt" | wc -l)
[ "$n_list" = 1 ] && [ "$n_word" -gt 0 ] && ok "the list's fields count once in a spam sent through it ($n_word body words beside)" ||
        bad "list tokens used: $n_list, body words: $n_word: $(head -12 "$W/explain-list.txt")"
grep -Eq '^ *verdict: spam$' "$W/explain-list.txt" && ok "and it is called spam" ||
        bad "the spam through the list: $(grep -E 'score|verdict' "$W/explain-list.txt" | tr -s ' ')"

# --- interface
if [ -n "${CHECK_INTERFACES:-}" ] && [ -n "${SPAMD_XML:-}" ]; then
        busctl --system --timeout=5 introspect --xml-interface "$NAME" "$OBJ" >"$W/live.xml" &&
                "$MT_PYTHON" "$CHECK_INTERFACES" compare "$SPAMD_XML" "$W/live.xml" &&
                ok "live introspection equals $(basename "$SPAMD_XML")" || bad "introspection differs"
fi

# --- durability: kill -9 while learning; everything acknowledged is there afterwards
"$MT_PYTHON" "$HERE/gen-messages.py" "$W/burst" 60 3 b
: >"$W/acked"
(
        for f in "$W"/burst/*.eml; do
                class=spam; case $f in *-ham-*) class=ham;; esac
                if "$MAILSECCTL" spam learn "$class" "$f" >/dev/null 2>&1; then
                        echo "$class $f" >>"$W/acked"
                fi
        done
) &
loop=$!
for ((i = 0; i < 200; i++)); do
        [ "$(wc -l <"$W/acked")" -ge 25 ] && break
        sleep 0.05
done
kill -KILL "$SPAMD_PID"
wait "$SPAMD_PID" 2>/dev/null
SPAMD_PID=
wait "$loop" 2>/dev/null
n_acked=$(wc -l <"$W/acked")
[ "$n_acked" -ge 25 ] && [ "$n_acked" -lt 120 ] && ok "$n_acked learns acknowledged before kill -9" ||
        bad "$n_acked learns acknowledged (the kill came too late or too early)"
start_spamd "$W/spamd2.log"
lost=0
while read -r class f; do
        out=$("$MAILSECCTL" --json spam learn "$class" "$f" 2>&1)
        [ "$(echo "$out" | json changed 2>/dev/null)" = false ] || { lost=$((lost + 1)); echo "    lost: $f ($out)"; }
done <"$W/acked"
[ $lost = 0 ] && ok "all $n_acked acknowledged learns survived kill -9" || bad "$lost of $n_acked acknowledged learns lost"
spam=$(stat_of SpamLearned) ham=$(stat_of HamLearned)
records=$(busctl --system --timeout=120 call "$NAME" "$OBJ" "$IFACE" Rebuild | awk '{print $2}')
[ -n "$records" ] && [ "$records" -gt "$n_acked" ] && ok "Rebuild replayed $records journal records" || bad "Rebuild: $records"
[ "$(stat_of SpamLearned)" = "$spam" ] && [ "$(stat_of HamLearned)" = "$ham" ] &&
        ok "rebuild gives the same totals ($spam/$ham)" || bad "after rebuild: $(stat_of SpamLearned)/$(stat_of HamLearned), before $spam/$ham"

# --- ScanSize=: only the beginning of a message is read
{ printf 'From: a@example.org\r\nTo: user@example.org\r\nSubject: notes\r\n\r\n'
  for i in $(seq 1 40); do printf 'meeting agenda project schedule review notes\r\n'; done
  for i in $(seq 1 20); do printf 'cheap pills pharmacy discount viagra cialis prize\r\n'; done; } >"$W/late-spam.eml"
"$MAILSECCTL" spam explain --top 100 "$W/late-spam.eml" >"$W/explain-full.txt"
grep -q 'w:viagra' "$W/explain-full.txt" && ok "read whole, the late spam words count" || bad "late words not read: $(head -5 "$W/explain-full.txt")"
kill -TERM "$SPAMD_PID"; wait "$SPAMD_PID" 2>/dev/null; SPAMD_PID=
mkdir -p "$W/spamd.conf.d"
printf '[Filter]\nScanSize=1K\n' >"$W/spamd.conf.d/scan.conf"
start_spamd "$W/spamd3.log"
"$MAILSECCTL" spam explain --top 100 "$W/late-spam.eml" >"$W/explain-1k.txt"
grep -q 'w:viagra' "$W/explain-1k.txt" && bad "ScanSize=1K still reads the end: $(grep viagra "$W/explain-1k.txt")" ||
        ok "with ScanSize=1K the words after the first KiB are not read"
printf '[Filter]\nScanSize=100\n' >"$W/spamd.conf.d/scan.conf"
"$MAILSEC_SPAMD" --config="$W/spamd.conf" --check-config >"$W/check.log" 2>&1 &&
        bad "ScanSize=100 accepted" || { grep -q "ScanSize=100 is below 1K" "$W/check.log" && ok "ScanSize= below 1K is refused" || bad "check-config: $(cat "$W/check.log")"; }
rm -f "$W/spamd.conf.d/scan.conf"

# --- statistics of another tokenizer: used, with a notice
kill -TERM "$SPAMD_PID"; wait "$SPAMD_PID" 2>/dev/null; SPAMD_PID=
version=$(cat "$W/state/tokenizer-version")
echo 1 >"$W/state/tokenizer-version"
start_spamd "$W/spamd4.log"
grep -q "learned with tokenizer version 1; this mailsec-spamd tokenizes as version $version" "$W/spamd4.log" &&
        ok "statistics of an older tokenizer are named at start" || bad "no notice about the tokenizer version"
[ "$(stat_of SpamLearned)" -ge 40 ] && ok "and still used ($(stat_of SpamLearned) spam)" || bad "statistics gone: $(stat_of SpamLearned)"
echo "$version" >"$W/state/tokenizer-version"

# --- compaction keeps the statistics, shrinks the journal; reset empties them
spam=$(stat_of SpamLearned) ham=$(stat_of HamLearned)
records=$(busctl --system --timeout=120 call "$NAME" "$OBJ" "$IFACE" Rebuild | awk '{print $2}')
as_nobody "$MAILSECCTL" spam compact >/dev/null 2>"$W/err" && bad "compact by nobody accepted" ||
        ok "a plain user may not compact"
tokens=$(stat_of Tokens)
"$MAILSECCTL" --json spam explain --top 10 "$W/new/n-spam-9.eml" >"$W/explain-before.json"
size_before=$(stat -c %s "$W/state/journal")
[ "$(stat_of JournalRecords)" = "$records" ] && [ "$(stat_of JournalBytes)" = "$size_before" ] &&
        ok "JournalRecords and JournalBytes ($records, $size_before)" || bad "journal properties: $(stat_of JournalRecords)/$(stat_of JournalBytes), records $records, size $size_before"
out=$("$MAILSECCTL" --json spam compact) || bad "compact failed: $out"
kept=$(echo "$out" | json records) bytes=$(echo "$out" | json bytes)
[ "$kept" = $((spam + ham)) ] && [ "$kept" -lt "$records" ] &&
        ok "compact keeps one record per learned message ($kept of $records)" || bad "compact: $out (records $records, learned $((spam + ham)))"
[ "$(stat_of JournalRecords)/$(stat_of JournalBytes)" = "$kept/$bytes" ] &&
        ok "JournalRecords and JournalBytes say so" || bad "properties: $(stat_of JournalRecords)/$(stat_of JournalBytes)"
db=$("$MAILSECCTL" --json spam stats | json DatabaseBytes)
[ "$db" = "$(stat -c %s "$W/state/tokens.gdbm")" ] && [ "$db" -gt 0 ] &&
        ok "mailsecctl spam stats gives the database's size ($db bytes)" || bad "DatabaseBytes $db, file $(stat -c %s "$W/state/tokens.gdbm")"
[ "$bytes" = "$(stat -c %s "$W/state/journal")" ] && [ "$bytes" -lt "$size_before" ] &&
        ok "the journal shrank from $size_before to $bytes bytes" || bad "journal size: $bytes, file $(stat -c %s "$W/state/journal"), before $size_before"
grep -q "Compaction kept $kept learned messages: the training journal went from $size_before to $bytes bytes, the counts' database from [0-9]* to $db bytes" "$W/spamd4.log" &&
        ok "the compaction's sizes are logged" || bad "no compaction sizes in the log: $(grep Compaction "$W/spamd4.log")"
[ "$(stat_of SpamLearned)/$(stat_of HamLearned)/$(stat_of Tokens)" = "$spam/$ham/$tokens" ] &&
        ok "compact keeps totals and tokens ($spam/$ham/$tokens)" || bad "after compact: $(stat_of SpamLearned)/$(stat_of HamLearned)/$(stat_of Tokens)"
"$MAILSECCTL" --json spam explain --top 10 "$W/new/n-spam-9.eml" >"$W/explain-after.json"
cmp -s "$W/explain-before.json" "$W/explain-after.json" && ok "and the same classification, token for token" ||
        bad "classification changed: $(diff "$W/explain-before.json" "$W/explain-after.json" | head -4)"
"$MAILSECCTL" spam reset >/dev/null 2>&1; [ $? = 2 ] && [ "$(stat_of SpamLearned)" = "$spam" ] &&
        ok "reset without --yes is a usage error and changes nothing" || bad "reset without --yes: $(stat_of SpamLearned)"
as_nobody "$MAILSECCTL" spam reset --yes >/dev/null 2>&1 && bad "reset by nobody accepted" || ok "a plain user may not reset"
"$MAILSECCTL" spam reset --yes || bad "reset failed"
[ "$(stat_of SpamLearned)/$(stat_of HamLearned)/$(stat_of Tokens)" = "0/0/0" ] && [ "$(stat -c %s "$W/state/journal")" = 0 ] &&
        ok "reset: nothing learned, an empty journal" || bad "after reset: $(stat_of SpamLearned)/$(stat_of HamLearned)/$(stat_of Tokens)"
verdict=$("$MAILSECCTL" --json spam classify "$W/new/n-spam-9.eml" | json verdict)
[ "$verdict" = unsure ] && ok "after reset a spam is unsure again" || bad "after reset: $verdict"
while read -r class f; do "$MAILSECCTL" spam learn "$class" "$f" >/dev/null || bad "learning again: $f"; done <"$W/acked"
[ "$(( $(stat_of SpamLearned) + $(stat_of HamLearned) ))" = "$n_acked" ] &&
        ok "learning starts again after reset ($n_acked)" || bad "after relearning: $(stat_of SpamLearned)/$(stat_of HamLearned)"

# --- what compaction forgets: auto-learned messages beyond AutoLearnKeep=, then (after a
# restart with ForgetAfterSec=2s) everything learned longer ago than that
restart_with() { # restart_with LOG KEY=VALUE... (under [Learning])
        local log=$1 kv
        shift
        kill -TERM "$SPAMD_PID"; wait "$SPAMD_PID" 2>/dev/null; SPAMD_PID=
        for kv in "$@"; do
                sed -i "/^${kv%%=*}=/d" "$W/spamd.conf"
                sed -i "s/^\[Learning\]\$/[Learning]\n$kv/" "$W/spamd.conf"
        done
        start_spamd "$log"
}
restart_with "$W/spamd5.log" AutoLearnKeep=1 AutoLearnMaxRatio=3
"$MAILSECCTL" spam reset --yes || bad "reset failed"
for f in "$W"/train/*.eml; do
        class=spam; case $f in *-ham-*) class=ham;; esac
        "$MAILSECCTL" spam learn "$class" "$f" >/dev/null || bad "learning $f"
done
learned=$(( $(stat_of SpamLearned) + $(stat_of HamLearned) ))
first=
for ((k = 0; k < 10; k++)); do  # the first two new spam with a confident verdict
        "$MAILSECCTL" spam classify --autolearn "$W/new/n-spam-$k.eml" >/dev/null
        [ -z "$first" ] && [ "$(stat_of AutoLearned)" = 1 ] && first=n-spam-$k
        [ "$(stat_of AutoLearned)" = 2 ] && break
done
[ "$(stat_of AutoLearned)" = 2 ] && [ "$(( $(stat_of SpamLearned) + $(stat_of HamLearned) ))" = $((learned + 2)) ] &&
        ok "two spam auto-learned ($first, n-spam-$k) beside $learned learned by the administrator" ||
        bad "auto-learning before compaction: AutoLearned=$(stat_of AutoLearned), learned $(( $(stat_of SpamLearned) + $(stat_of HamLearned) ))"
out=$("$MAILSECCTL" --json spam compact) || bad "compact failed: $out"
[ "$(echo "$out" | json records)" = $((learned + 1)) ] &&
        [ "$(( $(stat_of SpamLearned) + $(stat_of HamLearned) ))" = $((learned + 1)) ] &&
        ok "AutoLearnKeep=1: compaction forgot the older auto-learned spam, kept the administrator's" ||
        bad "AutoLearnKeep=1: $out, learned $(( $(stat_of SpamLearned) + $(stat_of HamLearned) )) of $((learned + 2))"
grep -q "Compaction forgot 1 of the learned messages" "$W/spamd5.log" && ok "and says so in its log" ||
        bad "no log line of what compaction forgot: $(grep -i compact "$W/spamd5.log" | tail -2)"
"$MAILSECCTL" spam classify --autolearn "$W/new/$first.eml" >/dev/null
[ "$(stat_of AutoLearned)" = 3 ] && ok "a forgotten message is new again: $first auto-learned once more" ||
        bad "$first after it was forgotten: AutoLearned=$(stat_of AutoLearned)"

restart_with "$W/spamd6.log" ForgetAfterSec=2s
sleep 3
"$MAILSECCTL" spam learn ham "$W/new/n-ham-0.eml" >/dev/null || bad "learning n-ham-0"
out=$("$MAILSECCTL" --json spam compact) || bad "compact failed: $out"
[ "$(echo "$out" | json records)" = 1 ] && [ "$(stat_of SpamLearned)/$(stat_of HamLearned)" = 0/1 ] &&
        [ "$(stat_of JournalRecords)" = 1 ] &&
        ok "ForgetAfterSec=2s: compaction forgot all but the message learned just now" ||
        bad "ForgetAfterSec=2s: $out, learned $(stat_of SpamLearned)/$(stat_of HamLearned)"

# --- an mbox (--mbox): the messages between its "From " lines, without them or the empty
# line before each, and ">From " unquoted; each is the message a user would report
{ cat "$W/new/n-ham-8.eml"; printf 'From the desk of the team\n>From a quoted line\n'; } >"$W/from-lines.eml"
for f in "$W/new/n-ham-5.eml" "$W/new/n-ham-6.eml" "$W/from-lines.eml"; do
        echo "From sender@example.org  Sat Nov 28 12:00:00 2026"
        sed 's/^\(>*From \)/>\1/' "$f"
        echo
done >"$W/inbox.mbox"
out=$("$MAILSECCTL" --json spam learn ham --mbox "$W/inbox.mbox" 2>"$W/err")
[ "$(summary "$out")" = 3/3/0/0 ] && ok "3 ham learned from an mbox" || bad "mbox: $out $(cat "$W/err")"
out=$("$MAILSECCTL" --json spam learn ham "$W/new/n-ham-5.eml" "$W/new/n-ham-6.eml" "$W/from-lines.eml" 2>"$W/err")
[ "$(summary "$out")" = 3/0/3/0 ] && ok "the same messages as files are known already (the same digests)" ||
        bad "mbox messages as files: $out $(cat "$W/err")"
out=$("$MAILSECCTL" --json spam learn ham --mbox "$W/new/n-ham-7.eml" 2>"$W/err"); rc=$?
[ $rc = 1 ] && [ "$(summary "$out")" = 0/0/0/1 ] && grep -q "not an mbox" "$W/err" &&
        ok "a file that is not an mbox is refused with --mbox" || bad "--mbox on a message: rc $rc, $out, $(cat "$W/err")"

# --- forget by message: each by the digest mailsec-spamd gives it, from an mbox, files
# and digests alike
fsummary() { echo "$1" | "$MT_PYTHON" -c 'import json,sys; v=json.load(sys.stdin); print("%(messages)s/%(forgotten)s/%(not_learned)s/%(failed)s" % v)'; }
out=$("$MAILSECCTL" --json spam forget --mbox "$W/inbox.mbox" 2>"$W/err")
[ "$(fsummary "$out")" = 3/3/0/0 ] && [ "$(stat_of HamLearned)" = 1 ] &&
        ok "forget --mbox takes the mbox's 3 ham out again" || bad "forget --mbox: $out, ham $(stat_of HamLearned), $(cat "$W/err")"
digest=$("$MAILSECCTL" --json spam learn ham "$W/new/n-ham-9.eml" | json digest)
out=$("$MAILSECCTL" --json spam forget "$digest" "$W/new/n-ham-5.eml" "$W/from-lines.eml" "$W/new/n-ham-0.eml" 2>"$W/err")
[ "$(fsummary "$out")" = 4/2/2/0 ] && [ "$(stat_of SpamLearned)/$(stat_of HamLearned)" = 0/0 ] &&
        ok "forget of a digest and three files: two were learned, two no longer" ||
        bad "forget of files: $out, learned $(stat_of SpamLearned)/$(stat_of HamLearned), $(cat "$W/err")"

# --- a bulk report stops at the first one ReportsPerHour= refuses: the rest would be too
"$MT_PYTHON" "$HERE/gen-messages.py" "$W/bulk" 4 5 r
chmod -R a+rX "$W/bulk"
out=$(setpriv --reuid=daemon --regid=daemon --clear-groups "$MAILSECCTL" --json spam report spam "$W"/bulk/r-*.eml 2>"$W/err"); rc=$?
[ $rc = 1 ] && [ "$(echo "$out" | "$MT_PYTHON" -c 'import json,sys; v=json.load(sys.stdin); print("%(messages)s/%(failed)s" % v)')" = 5/1 ] &&
        grep -q "the rest were not tried" "$W/err" && [ "$(grep -c refused "$W/err")" = 1 ] &&
        ok "a bulk report stops at the first refused one (5 taken, 1 refused, 2 not tried)" ||
        bad "bulk report over the limit: rc $rc, $out, $(cat "$W/err")"

# --- SIGTERM: pending counts written, clean exit
kill -TERM "$SPAMD_PID"
wait "$SPAMD_PID"; rc=$?; SPAMD_PID=
[ $rc = 0 ] && ok "SIGTERM: exit 0" || bad "SIGTERM: exit $rc"
[ ! -e "$W/state/tokens.dirty" ] && ok "no unsynced counts left behind after SIGTERM" || bad "tokens.dirty left after SIGTERM"

echo "$PASS passed, $FAILS failed"
if [ $FAILS != 0 ]; then
        echo "--- mailsec-spamd log (tail)"
        tail -n 30 "$W/spamd.log"
        exit 1
fi
exit 0
