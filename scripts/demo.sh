#!/usr/bin/env bash
# make demo: start the emulator (COURIER_BACKEND, default localstack), run
# every pattern (PATTERN=name for one), stop what was started. On LocalStack
# lambda-worker runs on the deployed worker function: the stacks are
# deployed first (infra/scripts/deploy-local.sh) unless they are there.
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
	if [[ $backend == localstack && ($pattern == all || $pattern == lambda-worker) &&
		$(cat .courier/localstack.mode 2>/dev/null) == host ]]; then
		# lambda-worker runs on the deployed worker function, fed by
		# LocalStack's event source mapping: deploy both stacks unless this
		# LocalStack has them (deploy-local records which one it deployed
		# to). On moto, and on a LocalStack in Docker (no courier executor),
		# the worker runs under lambdas/localrunner.
		marker=.courier/deploy-local.json
		if [[ -f $marker ]] && grep -q "\"endpoint\": \"$AWS_ENDPOINT_URL\"" "$marker" &&
			grep -q "\"localstack_pid\": \"${COURIER_EMULATOR_PID:-}\"" "$marker"; then
			say "the stacks are deployed on this LocalStack (make deploy-local)"
		else
			say "deploying CourierMessaging and CourierCompute to LocalStack for lambda-worker (about 30 s; log: .courier/deploy-local.log)"
			if ! bash infra/scripts/deploy-local.sh >.courier/deploy-local.log 2>&1; then
				tail -n 30 .courier/deploy-local.log >&2
				say "deploy-local failed (.courier/deploy-local.log)"
				exit 1
			fi
		fi
	fi
else
	say "running against AWS with the SDK's default credentials and region (resources are created and removed)"
fi
go run ./cmd/courier-demo -pattern "$pattern" -out demo-out
say "diagrams written to demo-out/"
