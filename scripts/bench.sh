#!/usr/bin/env bash
# make bench: start the emulator (COURIER_BACKEND, default localstack), run
# the end-to-end benchmarks (COURIER_BENCH=1 tests printing BENCH lines) and
# the Go micro-benchmarks, and collect the BENCH lines in bench/results.json.
# perf/TestBenchShapes compares the ways a service sends (raw SDK loop,
# courier bulk and concurrent one-message Sends, gocloud both ways) on
# COURIER_BENCH_SHAPE_N messages a run (default 10,000; about 6 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${COURIER_BACKEND:-localstack}
say() { printf '\033[1mcourier: %s\033[0m\n' "$*" >&2; }
started=
cleanup() { [[ -n $started ]] && bash scripts/emulator.sh stop "$started" >/dev/null 2>&1 || true; }
trap cleanup EXIT
if [[ $backend != aws ]]; then
	say "starting $backend"
	# Stop it afterwards only if this run started it (someone else's
	# emulator, or one make test left running, stays up).
	bash scripts/emulator.sh env "$backend" >/dev/null 2>&1 || started=$backend
	bash scripts/emulator.sh start "$backend"
fi
mkdir -p bench
out=bench/last-run.txt
say "end-to-end benchmarks on $backend (one run; compare ratios, not absolute numbers)"
COURIER_BENCH=1 COURIER_BACKEND=$backend go test -count=1 -p 1 -timeout 30m -run '^TestBench' -v ./... | tee "$out.raw" | grep '^BENCH' | tee "$out"
if [[ -f perf/go.mod ]]; then
	say "peer comparisons, send shapes and client cost (perf/)"
	(cd perf && COURIER_BENCH=1 COURIER_BACKEND=$backend go test -count=1 -p 1 -timeout 30m -run '^TestBench' -v ./...) | tee -a "$out.raw" | grep '^BENCH' | tee -a "$out"
fi
say "Go micro-benchmarks (client CPU and allocations)"
go test -run '^$' -bench . -benchmem -count=1 ./... | tee "$out.micro" | grep -E '^(Benchmark|BENCH)' || true
grep '^BENCH' "$out.micro" >> "$out" || true
python3 - "$out" "$backend" > bench/results.json <<'PY'
import json, sys, platform, os, datetime
lines = [l.split() for l in open(sys.argv[1]) if l.startswith("BENCH ")]
print(json.dumps({
    "backend": sys.argv[2],
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    "results": [{"name": l[1], "value": float(l[2]), "unit": " ".join(l[3:])} for l in lines],
}, indent=2))
PY
say "written bench/results.json"
