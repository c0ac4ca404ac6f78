"""The plux plugin LocalStack finds through the entry point; it imports the
executor only when LocalStack loads it (LAMBDA_RUNTIME_EXECUTOR=courier)."""

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class CourierRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "courier"

    def load(self, *args, **kwargs):
        from courier_lambda_executor.executor import HostRuntimeExecutor

        return HostRuntimeExecutor
