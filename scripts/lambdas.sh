#!/usr/bin/env bash
# make lambdas: every function lambdas/contract lists, built as a static
# linux/arm64 `bootstrap` for provided.al2023 (-tags lambda.norpc -trimpath
# -ldflags='-s -w', CGO_ENABLED=0) into dist/lambdas/<name>/bootstrap and
# zipped reproducibly as dist/lambdas/<name>.zip (the infra/ assets); each
# binary is checked to be aarch64, static, and built with those settings.
# For one function: scripts/lambdas.sh worker
# For this machine (LocalStack's courier executor; deploy-local does this):
#   scripts/lambdas.sh -out dist/lambdas-local -arch host
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./lambdas/internal/cmd/buildlambdas -out dist/lambdas "$@"
