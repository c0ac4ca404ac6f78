# courier: the verbs. Two do all set-up on a fresh machine:
#   make demo   runs every pattern end to end on the local emulator
#   make test   runs all tests (unit, integration on memaws, LocalStack and moto,
#               the seeded fault simulation, infra)
# Both install what they need (Go modules, the emulators from PyPI, npm
# packages for CDK) into the project directory.

SHELL := /bin/bash
COURIER_BACKEND ?= localstack
PATTERN ?= all
export COURIER_BACKEND

.PHONY: all test unit integration fuzz infra-test demo bench soak lambdas synth deploy-local \
        emulators emulators-down vet fmt tidy clean

all: test

## test: everything CI runs: vet, gofmt, unit + integration tests (-race) on
## memaws, LocalStack and moto, 10,000 simulated fault scenarios (internal/sim),
## brief fuzzing, the fault suite, and the infra (CDK) tests.
test:
	@bash scripts/test.sh

## unit: tests that need nothing running.
unit:
	go test -race -count=1 -short ./...

## fuzz: each fuzz target briefly (FUZZTIME, default 10s).
fuzz:
	@bash scripts/fuzz.sh

## demo: every pattern end to end on the emulator (COURIER_BACKEND=localstack|moto|aws,
## PATTERN=all|one-way|competing-consumers|...).
demo:
	@bash scripts/demo.sh

## bench: BENCH lines (API requests per message, throughput, latency) on the emulator.
bench:
	@bash scripts/bench.sh

## soak: 100,000 messages (one-way and FIFO) through LocalStack under the
## fault schedule of perf/, with throttling and a consumer SIGKILLed every
## 15-30 s; prints SOAK lines and writes bench/soak.json. Not in make test
## (about 7 minutes on 2 cores).
soak:
	@bash scripts/soak.sh

## lambdas: linux/arm64 bootstrap binaries and zips in dist/lambdas for infra/.
lambdas:
	@bash scripts/lambdas.sh

## synth: cdk synth of the infra app.
synth: lambdas
	@bash infra/scripts/synth.sh

## deploy-local: deploy both stacks, CourierMessaging and CourierCompute, to
## LocalStack with the CDK CLI; the functions are built for this machine
## (dist/lambdas-local) and run by LocalStack's courier executor.
deploy-local:
	@bash infra/scripts/deploy-local.sh

## emulators / emulators-down: start or stop LocalStack and moto by hand.
emulators:
	@bash scripts/emulator.sh start localstack && bash scripts/emulator.sh start moto

emulators-down:
	@bash scripts/emulator.sh stop all

vet:
	go vet ./...
	cd infra && go vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	-bash scripts/emulator.sh stop all
	rm -rf .courier dist demo-out infra/cdk.out
