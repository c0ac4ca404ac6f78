#!/usr/bin/env bash
# make deploy-local: deploy both stacks of the infra app to LocalStack with
# the plain CDK CLI: CourierMessaging (queues, topics, tables, bucket) and
# CourierCompute (the functions, their roles, event source mappings and
# subscriptions). LocalStack host mode runs the functions as local
# processes through courier's runtime executor (localstack/executor,
# selected by scripts/emulator.sh), so they are built for this machine's
# architecture into dist/lambdas-local and deployed with it
# (-c lambdaArchitecture); AWS gets arm64 from `make lambdas`.
#
#   infra/scripts/deploy-local.sh            bootstrap + deploy; outputs in .courier/messaging-outputs.json
#                                            and .courier/compute-outputs.json
#   infra/scripts/deploy-local.sh messaging  CourierMessaging only (no Lambda needed)
#   infra/scripts/deploy-local.sh destroy    remove both stacks again
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

say() { printf 'deploy-local: %s\n' "$*" >&2; }

if [[ -n ${COURIER_LOCALSTACK_ENDPOINT:-} ]]; then
	# A LocalStack started by other means (it must run courier's executor).
	export AWS_ENDPOINT_URL=$COURIER_LOCALSTACK_ENDPOINT AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
else
	bash "$ROOT/scripts/emulator.sh" start localstack
	# shellcheck disable=SC1091
	source "$ROOT/.courier/localstack.env"
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

case $(uname -m) in
x86_64 | amd64) GOARCH_HOST=amd64 LAMBDA_ARCH=x86_64 ;;
aarch64 | arm64) GOARCH_HOST=arm64 LAMBDA_ARCH=arm64 ;;
*)
	say "no Lambda architecture for this $(uname -m) machine"
	exit 1
	;;
esac
say "building the functions for linux/$GOARCH_HOST into dist/lambdas-local"
bash "$ROOT/scripts/lambdas.sh" -out "$LOCAL_ASSETS" -arch "$GOARCH_HOST"

cd "$INFRA"
npm ci --no-audit --no-fund --loglevel=error
# The emulator's tables and bucket go with the stack (on AWS they are kept).
# Cross-stack references are strong (Fn::ImportValue) here: cdk.json's weak
# ones synthesise Fn::GetStackOutput, which LocalStack 4.14.0's
# CloudFormation leaves unresolved (PutRolePolicy: "Syntax errors in policy").
cdk() {
	npx --no-install cdk "$@" -c aggregateTableRemoval=destroy -c @aws-cdk/core:defaultCrossStackReferences=strong \
		-c lambdaAssets="$LOCAL_ASSETS" -c lambdaArchitecture="$LAMBDA_ARCH"
}

if [[ ${1:-} == destroy ]]; then
	say "destroying CourierCompute and CourierMessaging at $AWS_ENDPOINT_URL"
	cdk destroy CourierCompute CourierMessaging --force
	exit 0
fi

t0=$(date +%s)
say "bootstrapping aws://$ACCOUNT/$REGION at $AWS_ENDPOINT_URL"
cdk bootstrap "aws://$ACCOUNT/$REGION"
say "deploying CourierMessaging"
cdk deploy CourierMessaging --exclusively --require-approval never \
	--outputs-file "$ROOT/.courier/messaging-outputs.json"
if [[ ${1:-} == messaging ]]; then
	say "outputs: .courier/messaging-outputs.json ($(($(date +%s) - t0)) s)"
	exit 0
fi
say "deploying CourierCompute ($LAMBDA_ARCH functions, run by LocalStack's courier executor)"
cdk deploy CourierCompute --exclusively --require-approval never \
	--outputs-file "$ROOT/.courier/compute-outputs.json"
say "outputs: .courier/messaging-outputs.json, .courier/compute-outputs.json ($(($(date +%s) - t0)) s)"
