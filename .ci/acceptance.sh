#!/usr/bin/env bash
# Runs the shared acceptance scripts (real AWS CLI against a real server) and
# fails when any check fails, except the checks listed in KNOWN_IMPOSSIBLE:
# checks no server can pass on this kind of machine, each with the reason
# and the evidence. Their results are still printed. Everything else counts.
#
#   control-plane.sh:bad_zip  The script uploads 1000 random bytes with
#       --zip-file and greps for InvalidParameterValueException, but both AWS
#       CLI v1 and v2 validate --zip-file locally (awscli/customizations/
#       awslambda.py, _should_contain_zip_content) and exit with "--zip-file
#       must be a zip file with the fileb:// prefix" before sending a request.
#       Ignis's zip validation is covered by Go tests and a fuzz target
#       (internal/registry).
#
#   invoke.sh:parallel  Six `aws lambda invoke` processes of a function that
#       sleeps 1 s must all finish within 4.0 s. On this machine kind (2
#       CPUs) the AWS CLI v2 that the script needs costs ~0.9 CPU-s per call
#       (importing awscli.clidriver alone: 0.59 s); six `aws lambda
#       list-functions` at once, with no function work at all, took 3.5 s of
#       wall time (2026-11-23, load 2.4), so six CLIs plus the 1 s sleep do
#       not fit in 4.0 s whatever the server does. Ignis's share there was
#       ~0.5 s (six warm invokes: 4.95 s vs 3.5 s for list-functions).
#       Parallel execution itself is tested in Go without CLI start-up:
#       internal/invoke TestInvoke_ParallelOnSeparateSandboxes (distinct
#       sandboxes, overlapping run intervals).
set -uo pipefail
dir=${ACCEPTANCE_DIR:-../shared/acceptance}
scripts=${ACCEPTANCE:-control-plane.sh invoke.sh}
KNOWN_IMPOSSIBLE=${KNOWN_IMPOSSIBLE:-"control-plane.sh:bad_zip invoke.sh:parallel"}

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
  failed=$(sed -n 's/^failed://p' "$out" | tr ' ' '\n' | sed '/^$/d')
  if ! grep -qE '^[0-9]+ passed, [0-9]+ failed$' "$out"; then
    echo "== $s ended without its summary line"; status=1
  fi
  for name in $failed; do
    if [[ " $KNOWN_IMPOSSIBLE " == *" $s:$name "* ]]; then
      echo "== $s: $name failed: known not passable on this machine kind (see .ci/acceptance.sh)"
    else
      echo "== $s: $name FAILED"; status=1
    fi
  done
  rm -f "$out"
  # control-plane.sh's restart_persists check restarts the server inside
  # check's subshell, so the script's own stop_server (EXIT trap) only knows
  # the first server's PID and the restarted one outlives the script (a
  # lib.sh bug). Stop any such server so it does not run on after CI.
  pkill -TERM -f '/tmp/ignis-acc\.[A-Za-z0-9]+/ignis server' 2>/dev/null && sleep 2
  pkill -KILL -f '/tmp/ignis-acc\.[A-Za-z0-9]+/ignis server' 2>/dev/null
done
exit $status
