#!/usr/bin/env bash
# make soak (not part of make test): COURIER_SOAK_MESSAGES (default 100,000)
# messages through LocalStack, one-way and FIFO, under perf/'s fault schedule
# in a loop, with throttling and consumer processes SIGKILLed (one every 15-30 s)
# (perf/soak_test.go). Prints the SOAK lines and writes bench/soak.json.
# LocalStack is started if it is not running, and then stopped at the end.
# About 7 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1mcourier: %s\033[0m\n' "$*" >&2; }
backend=${COURIER_SOAK_BACKEND:-localstack}

started=
cleanup() { [[ -n $started ]] && bash scripts/emulator.sh stop "$started" >/dev/null 2>&1 || true; }
trap cleanup EXIT
say "starting $backend"
# Stopped at the end only if this run started it.
bash scripts/emulator.sh env "$backend" >/dev/null 2>&1 || started=$backend
bash scripts/emulator.sh start "$backend"

mkdir -p .courier bench
say "soak on $backend (no -race: the load is the point; the full log is .courier/soak.log)"
set +e
(cd perf && COURIER_SOAK=1 COURIER_SOAK_BACKEND=$backend COURIER_BACKEND=$backend \
	go test -count=1 -v -timeout 60m -run '^TestSoak$' ./...) 2>&1 |
	tee .courier/soak.log | grep -E '^(SOAK|--- |ok|FAIL|panic)|^\s+\S+_test\.go:'
status=${PIPESTATUS[0]}
set -e
[[ $status -eq 0 ]] || { say "soak failed"; exit 1; }
say "written bench/soak.json"
