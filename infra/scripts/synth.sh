#!/usr/bin/env bash
# make synth: `cdk synth` of the infra app (both stacks) into infra/cdk.out,
# with the CDK CLI pinned in infra/package-lock.json (no global install).
#
#   infra/scripts/synth.sh                      both stacks
#   infra/scripts/synth.sh CourierMessaging     one stack (its template on stdout)
#   infra/scripts/synth.sh -c lambdaAssets=DIR  other Lambda assets (default ../dist/lambdas)
#
# Needs the Lambda assets (`make lambdas`: dist/lambdas/<name>/bootstrap);
# the app says so if they are missing. Needs Go and Node (npm).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# jsii (the CDK's bridge from Go to Node) prints a full-screen banner on
# every start under Node 20, which it no longer supports but still runs on.
node_major=$(node -p 'process.versions.node.split(".")[0]')
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=${JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION:-$node_major}
export CDK_DISABLE_VERSION_CHECK=1

npm ci --no-audit --no-fund --loglevel=error
npx --no-install cdk synth "$@"
