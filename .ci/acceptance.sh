#!/usr/bin/env bash
# Runs the shared acceptance scripts (real AWS CLI against a real server) and
# fails when any check fails: every check counts. A script that ends without
# its summary line fails too, and a server a script leaves running is an
# error (lib.sh stops every server it starts, restarted ones included).
set -uo pipefail
dir=${ACCEPTANCE_DIR:-../shared/acceptance}
scripts=${ACCEPTANCE:-control-plane.sh invoke.sh}

if [ ! -d "$dir" ]; then echo "no $dir: skipping acceptance"; exit 0; fi
# invoke.sh needs AWS CLI v2 (--cli-binary-format); the scripts pick
# /usr/bin/aws (Debian's awscli, v2) when present, which `make deps` installs.
cli=${AWSCLI:-$(command -v /usr/bin/aws || command -v aws)}
echo "== AWS CLI: $cli ($($cli --version 2>&1 | head -1))"
status=0
for s in $scripts; do
  echo "== acceptance $s"
  out=$(mktemp)
  bash "$dir/$s" 2>&1 | tee "$out"
  if ! grep -qE '^[0-9]+ passed, 0 failed$' "$out"; then
    echo "== $s: failed: $(sed -n 's/^failed://p' "$out")"; status=1
  fi
  rm -f "$out"
  if pids=$(pgrep -f '/tmp/ignis-acc\.[A-Za-z0-9]+/ignis server'); then
    echo "== $s left servers running: $pids"; status=1
    kill -TERM $pids 2>/dev/null
  fi
done
exit $status
