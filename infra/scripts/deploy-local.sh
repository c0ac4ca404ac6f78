#!/usr/bin/env bash
# make deploy-local: deploy both stacks of the infra app to LocalStack with
# the plain CDK CLI: CourierMessaging (queues, topics, tables, bucket) and
# CourierCompute (the functions, their roles, event source mappings and
# subscriptions). LocalStack host mode runs the functions as local
# processes through courier's runtime executor (localstack/executor,
# selected by scripts/emulator.sh), so they are built for this machine's
# architecture into dist/lambdas-local and deployed with it
# (-c lambdaArchitecture); AWS gets arm64 from `make lambdas`, which this
# does not need.
#
#   infra/scripts/deploy-local.sh            bootstrap + deploy; outputs in .courier/messaging-outputs.json
#                                            and .courier/compute-outputs.json
#   infra/scripts/deploy-local.sh messaging  CourierMessaging only (no Lambda needed)
#   infra/scripts/deploy-local.sh destroy    remove both stacks again
#
# The app is synthesized once (into .courier/deploy-local.cdk.out) while
# the environment is bootstrapped, and both stacks are deployed from that
# assembly by one CDK process. Once both are deployed,
# .courier/deploy-local.json records the LocalStack they are on (endpoint
# and pid): scripts/demo.sh and scripts/test.sh read it to tell whether
# this LocalStack has the deployment.
#
# LocalStack comes from scripts/emulator.sh (started if not running, and
# left running: scripts/emulator.sh stop localstack), or from
# COURIER_LOCALSTACK_ENDPOINT when set. Only a loopback
# endpoint is accepted, so this never deploys to AWS.
set -euo pipefail
INFRA=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=$(dirname "$INFRA")
ACCOUNT=000000000000
LOCAL_ASSETS=$ROOT/dist/lambdas-local
STATE=$ROOT/.courier
ASSEMBLY=$STATE/deploy-local.cdk.out
MARKER=$STATE/deploy-local.json
t0=$(date +%s)

say() { printf 'deploy-local: [%3d s] %s\n' "$(($(date +%s) - t0))" "$*" >&2; }

mkdir -p "$STATE"
if [[ -n ${COURIER_LOCALSTACK_ENDPOINT:-} ]]; then
	# A LocalStack started by other means (it must run courier's executor).
	export AWS_ENDPOINT_URL=$COURIER_LOCALSTACK_ENDPOINT AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
	COURIER_EMULATOR_PID=
else
	bash "$ROOT/scripts/emulator.sh" start localstack
	# shellcheck disable=SC1091
	source "$STATE/localstack.env"
fi
case ${AWS_ENDPOINT_URL:-} in
http://127.0.0.1:* | http://localhost:*) ;;
*)
	say "refusing endpoint '${AWS_ENDPOINT_URL:-}': not a local emulator"
	exit 1
	;;
esac
REGION=${AWS_REGION:-us-east-1}
export AWS_REGION=$REGION AWS_DEFAULT_REGION=$REGION
export CDK_DEFAULT_ACCOUNT=$ACCOUNT CDK_DEFAULT_REGION=$REGION
unset AWS_PROFILE
node_major=$(node -p 'process.versions.node.split(".")[0]')
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=${JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION:-$node_major}
export CDK_DISABLE_VERSION_CHECK=1
# The AWS SDK for JavaScript's notice that it will need Node 22 is noise here.
export NODE_NO_WARNINGS=1

case $(uname -m) in
x86_64 | amd64) GOARCH_HOST=amd64 LAMBDA_ARCH=x86_64 ;;
aarch64 | arm64) GOARCH_HOST=arm64 LAMBDA_ARCH=arm64 ;;
*)
	say "no Lambda architecture for this $(uname -m) machine"
	exit 1
	;;
esac

cd "$INFRA"
# npm ci only when package-lock.json changed since the last one here (it
# removes and reinstalls node_modules: a few seconds, every time).
lock_sum=$(sha256sum package-lock.json | cut -c1-16)
if [[ ! -x node_modules/.bin/cdk || $(cat node_modules/.courier-stamp 2>/dev/null) != "$lock_sum" ]]; then
	npm ci --no-audit --no-fund --loglevel=error
	echo "$lock_sum" >node_modules/.courier-stamp
fi
# The emulator's tables and bucket go with the stack (on AWS they are kept).
# Cross-stack references are strong (Fn::ImportValue) here: cdk.json's weak
# ones synthesise Fn::GetStackOutput, which LocalStack 4.14.0's
# CloudFormation leaves unresolved (PutRolePolicy: "Syntax errors in policy").
context=(-c aggregateTableRemoval=destroy -c @aws-cdk/core:defaultCrossStackReferences=strong
	-c lambdaAssets="$LOCAL_ASSETS" -c lambdaArchitecture="$LAMBDA_ARCH")
cdk() { npx --no-install cdk "$@"; }

if [[ ${1:-} == destroy ]]; then
	say "destroying CourierCompute and CourierMessaging at $AWS_ENDPOINT_URL"
	rm -f "$MARKER" "$STATE/messaging-outputs.json" "$STATE/compute-outputs.json"
	if [[ ! -f $LOCAL_ASSETS/worker/bootstrap ]]; then
		bash "$ROOT/scripts/lambdas.sh" -out "$LOCAL_ASSETS" -arch "$GOARCH_HOST" >/dev/null
	fi
	cdk destroy CourierCompute CourierMessaging --force "${context[@]}"
	exit 0
fi
rm -f "$MARKER"

# Bootstrapping needs LocalStack only; the build and the synth need it
# not: they run meanwhile.
# Bootstrapping runs outside infra/: with cdk.json there, the CLI would
# synthesize the app (without this deploy's context) first.
boot_dir=$(mktemp -d)
trap 'rm -rf "$boot_dir"' EXIT
say "bootstrapping aws://$ACCOUNT/$REGION at $AWS_ENDPOINT_URL (in the background)"
(cd "$boot_dir" && "$INFRA/node_modules/.bin/cdk" bootstrap "aws://$ACCOUNT/$REGION") >"$boot_dir/log" 2>&1 &
boot=$!
say "building the functions for linux/$GOARCH_HOST into dist/lambdas-local"
if ! bash "$ROOT/scripts/lambdas.sh" -out "$LOCAL_ASSETS" -arch "$GOARCH_HOST"; then
	kill "$boot" 2>/dev/null || true
	exit 1
fi
say "synthesizing the app ($LAMBDA_ARCH functions) into .courier/deploy-local.cdk.out"
rm -rf "$ASSEMBLY"
if ! cdk synth --quiet -o "$ASSEMBLY" "${context[@]}"; then
	kill "$boot" 2>/dev/null || true
	exit 1
fi
if ! wait "$boot"; then
	cat "$boot_dir/log" >&2
	say "bootstrap failed"
	exit 1
fi
say "bootstrapped"

stacks=(CourierMessaging CourierCompute)
[[ ${1:-} == messaging ]] && stacks=(CourierMessaging)
say "deploying ${stacks[*]} (functions run by LocalStack's courier executor)"
outputs=$STATE/deploy-local-outputs.json
rm -f "$outputs"
cdk deploy --app "$ASSEMBLY" "${stacks[@]}" --exclusively --require-approval never --progress events --outputs-file "$outputs"
# One file per stack, as before: what tests, the demo and users read.
node - "$outputs" "$STATE" "${stacks[@]}" <<'JS'
const fs = require("fs");
const [file, dir, ...stacks] = process.argv.slice(2);
const all = JSON.parse(fs.readFileSync(file, "utf8"));
const names = { CourierMessaging: "messaging-outputs.json", CourierCompute: "compute-outputs.json" };
for (const s of stacks) {
  const out = all[s] ? { [s]: all[s] } : {};
  fs.writeFileSync(`${dir}/${names[s]}`, JSON.stringify(out, null, 2) + "\n");
}
JS
rm -f "$outputs"
if [[ ${1:-} == messaging ]]; then
	say "outputs: .courier/messaging-outputs.json"
	exit 0
fi
printf '{"endpoint": "%s", "localstack_pid": "%s", "deployed_at": "%s"}\n' \
	"$AWS_ENDPOINT_URL" "${COURIER_EMULATOR_PID:-}" "$(date -u +%FT%TZ)" >"$MARKER"
say "outputs: .courier/messaging-outputs.json, .courier/compute-outputs.json"
