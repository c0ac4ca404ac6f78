#!/usr/bin/env bash
# make demo: start the emulator (COURIER_BACKEND, default localstack), run
# every pattern (PATTERN=name for one), stop what was started.
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${COURIER_BACKEND:-localstack}
pattern=${PATTERN:-all}
say() { printf '\033[1mcourier: %s\033[0m\n' "$*" >&2; }
started=
cleanup() { [[ -n $started ]] && bash scripts/emulator.sh stop "$started" >/dev/null 2>&1 || true; }
trap cleanup EXIT
if [[ $backend != aws ]]; then
	say "starting $backend (installs it on first use)"
	# Stop it afterwards only if this run started it (someone else's
	# emulator, or one make test left running, stays up).
	bash scripts/emulator.sh env "$backend" >/dev/null 2>&1 || started=$backend
	bash scripts/emulator.sh start "$backend"
	eval "$(bash scripts/emulator.sh env "$backend")"
else
	say "running against AWS with the SDK's default credentials and region (resources are created and removed)"
fi
go run ./cmd/courier-demo -pattern "$pattern" -out demo-out
say "diagrams written to demo-out/"
