#!/usr/bin/env bash
# Foreign peers for the interop tests (interop/): a Python venv, .venv-peers,
# with boto3 and the AWS SQS and SNS Extended Clients for Python, pinned.
#
#   scripts/peers.sh        install if missing or out of date; otherwise do nothing
#
# Idempotent: a stamp file in the venv names what was installed, so a second
# run returns at once. Prints one line when it installs; nothing otherwise.
# The interop tests skip (loudly) when .venv-peers is missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=$ROOT/.venv-peers

# Both Extended Clients 1.0.1 ask for boto3 >=1.26.91,<2; botocore pinned with
# it, so that every machine runs the same SDK.
PACKAGES=(boto3==1.44.5 botocore==1.44.5 amazon-sqs-extended-client==1.0.1 amazon-sns-extended-client==1.0.1)
WANT="${PACKAGES[*]}"

if [[ -f $VENV/.courier-stamp && $(cat "$VENV/.courier-stamp") == "$WANT" && -x $VENV/bin/python ]]; then
	exit 0
fi

mkdir -p "$ROOT/.courier"
exec 9>"$ROOT/.courier/peers.lock"
flock -w 600 9 || {
	echo "courier: timed out waiting for another scripts/peers.sh" >&2
	exit 1
}
# Another run may have installed it while this one waited.
if [[ -f $VENV/.courier-stamp && $(cat "$VENV/.courier-stamp") == "$WANT" && -x $VENV/bin/python ]]; then
	exit 0
fi

echo "courier: installing the interop tests' Python peers ($WANT) into .venv-peers" >&2
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q "${PACKAGES[@]}" >&2 || {
	echo "courier: pip install ${PACKAGES[*]} failed" >&2
	exit 1
}
printf '%s' "$WANT" >"$VENV/.courier-stamp"
