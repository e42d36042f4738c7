#!/usr/bin/env bash
# Runs the README's quick start word for word, as a new user would: a fresh
# copy of the checkout, `make run` in the background with its defaults
# (./ignis-data, 127.0.0.1:9000), then the commands of the README's
# `<!-- quickstart:NAME -->` blocks, extracted from README.md so that the
# README cannot drift from what is tested. It asserts on what they print,
# on `ignis logs --follow` answering within 2 s, on `ignis bench --embedded
# --quick`, and on Ctrl-C of `make run`: a graceful exit 0 that leaves no
# process or cgroup behind.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d -t ignis-quickstart.XXXXXX)
app=$work/ignis
mkdir -p "$app" "$work/bin"
makepid=""

fail() { echo "quickstart: FAIL: $*"; exit 1; }
cleanup() {
  if [ -n "$makepid" ] && kill -0 "$makepid" 2>/dev/null; then
    kill -INT -- "-$makepid" 2>/dev/null
    for _ in $(seq 1 300); do kill -0 "$makepid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$makepid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# The examples need AWS CLI v2, as the README says; `aws` on this machine's
# PATH may be pip's v1, so put Debian's v2 first.
v2=/usr/bin/aws
[ -x "$v2" ] && "$v2" --version 2>&1 | grep -q '^aws-cli/2' || fail "no AWS CLI v2 at $v2 (make deps installs it)"
v1=""
for a in $(type -ap aws); do
  if "$a" --version 2>&1 | grep -q '^aws-cli/1'; then v1=$a; break; fi
done
ln -s "$v2" "$work/bin/aws"
export PATH=$work/bin:$PATH AWS_PAGER="" AWS_MAX_ATTEMPTS=1
# A new user's shell: no make of ours around it (`make test` runs this).
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE IGNIS_ACCESS_KEY_ID IGNIS_SECRET_ACCESS_KEY

# block NAME: the commands of the README block marked <!-- quickstart:NAME -->.
block() {
  awk -v m="<!-- quickstart:$1 -->" '
    $0 == m { armed = 1; next }
    armed && /^```sh$/ { inside = 1; next }
    inside && /^```$/ { exit }
    inside { print }' "$src/README.md"
}
for b in server client cli-v1 ignis; do
  [ -n "$(block "$b")" ] || fail "README.md has no quickstart:$b block"
done
# The later blocks run in the terminal where the client block's first line
# (credentials and region) was typed.
session=$(block client | head -1)
case $session in eval*credentials*) ;; *) fail "the client block should start with the credentials line, not: $session" ;; esac

# A fresh checkout: the tracked files as they are in the working tree.
(cd "$src" && git ls-files -z | tar --null -T - -cf -) | tar -xf - -C "$app"
cd "$app"

# leftovers: processes started from the fresh copy (by working directory or
# command line), this script and its command substitutions aside.
leftovers() {
  local p c
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$p" = $$ ] || [ "$p" = "$BASHPID" ] && continue
    c=$(readlink "/proc/$p/cwd" 2>/dev/null) || continue
    if [[ $c == "$work"* ]] || tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$work"; then
      [ "$(cat /proc/$p/comm 2>/dev/null)" = bash ] && grep -qF quickstart.sh "/proc/$p/cmdline" 2>/dev/null && continue
      echo "$p"
    fi
  done
}
# cgroups PARENT: the cgroups under the sandbox driver's parent, in every
# hierarchy (its name is in the server's log).
cgroups() { find /sys/fs/cgroup -mindepth 2 -type d -path "*/$1" -o -type d -path "*/$1/*" 2>/dev/null | sort; }
if (exec 3<>/dev/tcp/127.0.0.1/9000) 2>/dev/null; then fail "127.0.0.1:9000 is taken: the quick start needs its default port"; fi

echo "== quickstart: $(block server) (in $app)"
setsid bash -c "$(block server)" >"$work/run.log" 2>&1 &
makepid=$!
for _ in $(seq 1 600); do
  grep -q 'Ignis is listening' "$work/run.log" && break
  kill -0 "$makepid" 2>/dev/null || { cat "$work/run.log"; fail "make run exited"; }
  sleep 0.2
done
grep -q 'Ignis is listening' "$work/run.log" || { cat "$work/run.log"; fail "make run did not start Ignis in 120 s"; }
grep -q '^export AWS_ACCESS_KEY_ID=' "$work/run.log" || fail "make run printed no credentials"
cgparent=$(sed -n 's/.*cgroupParent=\([^ ]*\).*/\1/p' "$work/run.log" | head -1)
# gVisor puts each sandbox's cgroup at the hierarchies' roots, named for it.
if [ -z "$cgparent" ] && grep -q 'sandbox driver gvisor' "$work/run.log"; then cgparent='ignis-gvisor-*'; fi

echo "== quickstart: the client block"
bash -e -o pipefail -c "$(block client)" >"$work/client.out" 2>&1 || { cat "$work/client.out"; tail -20 "$work/run.log"; fail "the README's client commands failed"; }
cat "$work/client.out"
grep -q '^hello from hello' "$work/client.out" || fail "the invoke's Tail log has no line from the function"
grep -qE '^REPORT RequestId: [0-9a-f-]+.*Duration: .* ms' "$work/client.out" || fail "the invoke's Tail log has no REPORT line"
grep -qx '{"hello": "ignis"}' "$work/client.out" || fail "out.json is not the function's answer"
[ "$(grep -c 'hello from hello' "$work/client.out")" -ge 2 ] || fail "aws logs tail did not print the function's log line"
grep -E '^[0-9T:.+-]+ [^ ]+ hello from hello' "$work/client.out" >/dev/null || fail "aws logs tail printed no event line"

# The function's sandbox is idle now, kept alive: its cgroup is where the
# leftover check below looks.
if [ -n "$cgparent" ] && [ -z "$(cgroups "$cgparent")" ]; then fail "no sandbox cgroup under $cgparent while a sandbox is alive: the leftover check would look in the wrong place"; fi

if [ -n "$v1" ]; then
  echo "== quickstart: the AWS CLI v1 block ($v1)"
  rm -f out.json
  PATH=$(dirname "$v1"):$PATH bash -e -c "$session"$'\n'"$(block cli-v1)" >"$work/v1.out" 2>&1 || { cat "$work/v1.out"; fail "the README's AWS CLI v1 form failed"; }
  grep -qx '{"hello": "ignis"}' out.json || { cat out.json; fail "the v1 invoke's out.json is not the function's answer"; }
else
  echo "== quickstart: no AWS CLI v1 on PATH: its block is not run"
fi

echo "== quickstart: the ignis block"
mapfile -t ignis_cmds < <(block ignis)
[ "${#ignis_cmds[@]}" = 2 ] || fail "the quickstart:ignis block should be two commands (invoke, logs --follow)"
bash -e -c "$session"$'\n'"${ignis_cmds[0]}" >"$work/ignis.out" 2>"$work/ignis.err" || { cat "$work/ignis.out" "$work/ignis.err"; fail "${ignis_cmds[0]}"; }
grep -q '"hello": "ignis"' "$work/ignis.out" || fail "ignis invoke printed $(cat "$work/ignis.out")"
grep -q '^REPORT RequestId' "$work/ignis.err" || fail "ignis invoke --tail printed no REPORT line"
t0=$(date +%s.%N)
bash -c "$session"$'\n'"exec ${ignis_cmds[1]}" >"$work/follow.out" 2>&1 &
follow=$!
first=""
for _ in $(seq 1 50); do
  [ -s "$work/follow.out" ] && { first=$(date +%s.%N); break; }
  sleep 0.05
done
kill -INT "$follow"; wait "$follow" || true
[ -n "$first" ] || { cat "$work/follow.out"; fail "ignis logs --follow printed nothing in 2.5 s"; }
python3 -c "import sys; d=$first-$t0; print(f'ignis logs --follow: first line after {d:.2f} s'); sys.exit(d > 2)" || fail "ignis logs --follow took more than 2 s for its first line"
grep -q 'hello from hello' "$work/follow.out" || fail "ignis logs --follow did not print the function's log"

echo "== quickstart: Ctrl-C of make run"
kill -INT -- "-$makepid"
for _ in $(seq 1 600); do kill -0 "$makepid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$makepid" 2>/dev/null && { tail -20 "$work/run.log"; fail "make run still running 60 s after Ctrl-C"; }
rc=0; wait "$makepid" || rc=$?
makepid=""
tail -5 "$work/run.log"
[ "$rc" = 0 ] || fail "make run exited $rc after Ctrl-C, want 0"
bad='level=ERROR|panic:|^make(\[[0-9]+\])?: \*\*\*'
grep -qE "$bad" "$work/run.log" && { grep -E "$bad" "$work/run.log"; fail "errors while stopping"; }
left=$(leftovers)
[ -z "$left" ] || fail "processes left running: $(ps -o pid,args -p "${left//$'\n'/,}")"
if [ -n "$cgparent" ]; then
  left=$(cgroups "$cgparent")
  [ -z "$left" ] || { echo "$left" | head; fail "cgroups left behind under $cgparent"; }
else
  echo "== quickstart: the server logged no cgroup parent (sandbox driver $(grep -o 'sandbox driver [a-z]*' "$work/run.log"))"
fi

echo "== quickstart: ignis bench --embedded --quick (fresh checkout)"
./bin/ignis bench --embedded --quick >"$work/bench.out" 2>&1 || { tail -30 "$work/bench.out"; fail "ignis bench --embedded --quick"; }
tail -15 "$work/bench.out"
left=$(leftovers)
[ -z "$left" ] || fail "ignis bench left processes running: $(ps -o pid,args -p "${left//$'\n'/,}")"
echo "quickstart: all passed"
