#!/usr/bin/env bash
# Runs the shared acceptance scripts (real AWS CLI against a real server) and
# fails when any check fails, except the checks listed in KNOWN_IMPOSSIBLE:
# checks no server can pass, each with the reason. Everything else counts.
#
#   control-plane.sh:bad_zip  The script uploads 1000 random bytes with
#       --zip-file and greps for InvalidParameterValueException, but both AWS
#       CLI v1 and v2 validate --zip-file locally (awscli/customizations/
#       awslambda.py, _should_contain_zip_content) and exit with "--zip-file
#       must be a zip file with the fileb:// prefix" before sending a request.
#       Ignis's zip validation is covered by Go tests and a fuzz target
#       (internal/registry).
set -uo pipefail
dir=${ACCEPTANCE_DIR:-../shared/acceptance}
scripts=${ACCEPTANCE:-control-plane.sh invoke.sh}
KNOWN_IMPOSSIBLE=${KNOWN_IMPOSSIBLE:-"control-plane.sh:bad_zip"}

if [ ! -d "$dir" ]; then echo "no $dir: skipping acceptance"; exit 0; fi
# The scripts work with either AWS CLI. Unless told otherwise, use the
# machine's pip CLI v1 by its real path: the pyenv shim and Debian's v2 spend
# about a third more CPU per call, which matters to invoke.sh's parallel
# check (six CLIs at once on two cores).
if [ -z "${AWSCLI:-}" ] && command -v pyenv >/dev/null 2>&1 && v1=$(pyenv which aws 2>/dev/null); then
  export AWSCLI=$v1
fi
echo "== AWS CLI: ${AWSCLI:-default} ($(${AWSCLI:-aws} --version 2>&1 | head -1))"
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
      echo "== $s: $name failed: known impossible for any server (see .ci/acceptance.sh)"
    else
      echo "== $s: $name FAILED"; status=1
    fi
  done
  rm -f "$out"
done
exit $status
