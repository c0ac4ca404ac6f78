"""courier's LocalStack Lambda runtime executor (plux namespace
``localstack.lambda.runtime_executor``, name ``courier``).

LocalStack's default executor runs each execution environment in a Docker
container with its own Runtime API server (the "init"). This one runs it as
local processes instead: ``courier-lambda-runtime`` (cmd/courier-lambda-runtime
in the courier repository, Go) serves the Lambda Runtime API to the
function's ``bootstrap`` and takes invocations from :mod:`.executor`.
"""
