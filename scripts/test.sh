#!/usr/bin/env bash
# make test: vet and format checks, unit and integration tests with -race
# against LocalStack and moto (started here, stopped at the end), brief
# fuzzing, and the infra tests. Absent backends are listed loudly at the end;
# COURIER_REQUIRE_BACKENDS turns them into failures (CI sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1mcourier: %s\033[0m\n' "$*" >&2; }

started=()
up=()
bg=() # process groups of the deploy and of the deployed tests, while they run
cleanup() {
	for g in "${bg[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
	for b in "${started[@]}"; do bash scripts/emulator.sh stop "$b" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

say "go vet and gofmt"
go mod download
go vet ./...
unformatted=$(gofmt -l $(git ls-files '*.go') 2>/dev/null || true)
if [[ -n $unformatted ]]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi

rm -f .courier/skips.log .courier/conformance.log
backends=${COURIER_TEST_BACKENDS:-localstack moto}
for b in $backends; do
	say "starting $b"
	# Stopped at the end only if this run started it.
	was_running=false
	bash scripts/emulator.sh env "$b" >/dev/null 2>&1 && was_running=true
	if bash scripts/emulator.sh start "$b"; then
		up+=("$b")
		$was_running || started+=("$b")
	elif [[ ",${COURIER_REQUIRE_BACKENDS:-}," == *",$b,"* ]]; then
		say "BACKEND ABSENT: $b could not be started and is required"
		exit 1
	else
		say "BACKEND ABSENT: $b could not be started; its tests will be skipped"
	fi
done

# The deployed functions' tests (lambdas/functions TestDeployed*) need both
# stacks on LocalStack. The deploy (about 30 s, mostly LocalStack's
# CloudFormation at work) starts now, in the background, beside the tests
# below; those tests leave the deployed ones out (COURIER_SKIP_DEPLOYED),
# which run once the deploy is done and that run is over, beside the steps
# after it (their 2-odd minutes are mostly waits on retry backoffs). A
# failed deploy fails them (COURIER_REQUIRE_DEPLOYED). LocalStack in Docker
# has no courier executor: no deploy there, and they skip.
deploy_t0=$(date +%s)
deploy_log=.courier/deploy-local.log
deployed_log=.courier/deployed-tests.log
rm -f .courier/deploy-local.status .courier/deployed-tests.status
if [[ " ${up[*]} " == *" localstack "* && $(cat .courier/localstack.mode 2>/dev/null) == host ]]; then
	say "deploying CourierMessaging and CourierCompute to LocalStack in the background (log: $deploy_log)"
	setsid bash -c 'bash infra/scripts/deploy-local.sh; echo $? >.courier/deploy-local.status' >"$deploy_log" 2>&1 </dev/null &
	deploy_pid=$!
	bg+=("$deploy_pid")
	export COURIER_SKIP_DEPLOYED=1
else
	deploy_pid=
	say "no LocalStack in host mode: the deployed functions' tests are skipped"
fi

bash scripts/peers.sh # .venv-peers: the Python peers of the interop tests (interop/)

say "unit and integration tests (-race) on: ${up[*]:-no backend}"
# One process per package; backends run as subtests of each integration test.
COURIER_BACKEND= go test -race -count=1 -timeout 25m ./...

if [[ -n $deploy_pid ]]; then
	wait "$deploy_pid" || true
	bg=()
	deploy_status=$(cat .courier/deploy-local.status 2>/dev/null || echo 1)
	if [[ $deploy_status != 0 ]]; then
		tail -n 30 "$deploy_log" >&2
		say "deploy-local FAILED (log: $deploy_log): the deployed functions' tests will fail"
	else
		say "deployed both stacks ($(grep -o '\[ *[0-9]* s\] outputs' "$deploy_log" | grep -o '[0-9]*' || echo '?') s; done $(($(date +%s) - deploy_t0)) s after it started)"
	fi
	say "the deployed functions' tests (-race) in the background, beside the steps below (log: $deployed_log)"
	deployed_t0=$(date +%s)
	# -parallel: the tests wait on LocalStack, not on CPU.
	setsid bash -c 'COURIER_SKIP_DEPLOYED= COURIER_REQUIRE_DEPLOYED=1 COURIER_DEPLOY_LOG='"$deploy_log"' COURIER_BACKEND= \
		go test -race -count=1 -timeout 10m -parallel 8 -v -run "^TestDeployed" ./lambdas/functions/
		echo $? >.courier/deployed-tests.status' >"$deployed_log" 2>&1 </dev/null &
	deployed_pid=$!
	bg+=("$deployed_pid")
fi

say "conformance suite: results per backend (memory is the in-process memaws)"
if [[ -s .courier/conformance.log ]]; then
	awk -F'\t' '{n[$1]++; r[$1 FS $2]++} END {
		printf "%-12s %6s %6s %6s %6s\n", "backend", "tests", "pass", "fail", "skip"
		for (b in n) printf "%-12s %6d %6d %6d %6d\n", b, n[b], r[b FS "pass"], r[b FS "fail"], r[b FS "skip"]
	}' .courier/conformance.log | sort >&2
fi

say "simulation: seeded faults on the in-memory backend (internal/sim, no -race: 10,000 scenarios)"
set +e
go test -count=1 -timeout 10m -v -run '^TestSimulation$' ./internal/sim | grep -E '^(SIM |ok|FAIL|panic)|seed=[0-9]+ '
status=${PIPESTATUS[0]}
set -e
[[ $status -eq 0 ]] || { say "simulation found violations (replay one: COURIER_SIM_SEED=<seed> go test -run TestSimulation ./internal/sim)"; exit 1; }

say "fuzzing each target briefly"
FUZZTIME=${FUZZTIME:-5s} bash scripts/fuzz.sh

if [[ -f perf/go.mod ]]; then
	say "fault-injection suite (perf/: toxiproxy, total-queue checker)"
	# -v for the FAULTS lines (sent, handled, duplicates, lost per scenario).
	set +e
	(cd perf && go vet ./... && COURIER_BACKEND= go test -race -count=1 -v -timeout 20m ./...) |
		grep -E '^(FAULTS|--- (FAIL|PASS)|ok|FAIL|panic)|^\s+\S+_test\.go:'
	status=${PIPESTATUS[0]}
	set -e
	[[ $status -eq 0 ]] || { say "fault suite failed"; exit 1; }
fi

if [[ -f infra/go.mod ]]; then
	say "infra tests (CDK synth, assertions, cdk-nag)"
	bash scripts/lambdas.sh >/dev/null
	# jsii runs the CDK in Node; its end-of-life notice for Node 20 is noise here.
	export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=$(node -p 'process.versions.node.split(".")[0]')
	(cd infra && go vet ./... && go test -count=1 -timeout 20m ./...)
fi

if [[ -n $deploy_pid ]]; then
	waited_t0=$(date +%s)
	wait "$deployed_pid" || true
	bg=()
	waited=$(($(date +%s) - waited_t0))
	grep -E '^(--- |ok|FAIL|panic)|^\s+deployed_\S+_test\.go:' "$deployed_log" >&2 || true
	say "deployed functions' tests: $(($(date +%s) - deployed_t0)) s, of which make test waited $waited s at the end (log: $deployed_log)"
	[[ $(cat .courier/deployed-tests.status 2>/dev/null) == 0 ]] || { say "the deployed functions' tests failed"; exit 1; }
fi

if [[ -s .courier/skips.log ]]; then
	say "BACKENDS ABSENT: these tests were skipped:"
	sort -u .courier/skips.log >&2
fi
say "all tests passed"
