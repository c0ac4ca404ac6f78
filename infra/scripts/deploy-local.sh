#!/usr/bin/env bash
# make deploy-local: deploy the CourierMessaging stack (queues, topics, the
# aggregate table) to LocalStack with the plain CDK CLI: bootstrap the
# emulator's account first, then deploy. CourierCompute is not deployed:
# LocalStack's community build runs no Go Lambda functions without Docker
# (see /localstack/FIDELITY.md); run the same handlers locally on the
# deployed queues with lambdas/localrunner.
#
#   infra/scripts/deploy-local.sh            bootstrap + deploy; outputs in .courier/messaging-outputs.json
#   infra/scripts/deploy-local.sh destroy    remove the stack again
#
# LocalStack comes from scripts/emulator.sh (started if not running, and
# left running: scripts/emulator.sh stop localstack). Only a loopback
# endpoint is accepted, so this never deploys to AWS.
set -euo pipefail
INFRA=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=$(dirname "$INFRA")
ACCOUNT=000000000000
STACK=CourierMessaging

say() { printf 'deploy-local: %s\n' "$*" >&2; }

bash "$ROOT/scripts/emulator.sh" start localstack
# shellcheck disable=SC1091
source "$ROOT/.courier/localstack.env"
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

cd "$INFRA"
npm ci --no-audit --no-fund --loglevel=error
# The emulator's aggregate table goes with the stack (on AWS it is kept).
cdk() { npx --no-install cdk "$@" -c aggregateTableRemoval=destroy; }

if [[ ${1:-} == destroy ]]; then
	say "destroying $STACK at $AWS_ENDPOINT_URL"
	cdk destroy "$STACK" --force
	exit 0
fi

say "bootstrapping aws://$ACCOUNT/$REGION at $AWS_ENDPOINT_URL"
cdk bootstrap "aws://$ACCOUNT/$REGION"
say "deploying $STACK"
cdk deploy "$STACK" --exclusively --require-approval never \
	--outputs-file "$ROOT/.courier/messaging-outputs.json"
say "outputs: .courier/messaging-outputs.json"
