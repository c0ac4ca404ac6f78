"""HostRuntimeExecutor: one Lambda execution environment as local processes.

start()  runs ``courier-lambda-runtime -dir <code> -timeout <s>`` in a new
         session with the function's environment; it initialises the
         bootstrap and prints its control address once done.
invoke() POSTs LocalStack's invoke payload to it and waits for the answer;
         the Go side enforces the function's timeout and returns the
         invocation's logs.
stop()   ends the session (the Go server kills the bootstrap's process group).

Only zip functions on an OS-only runtime (provided.al2023, provided.al2)
built for the host's architecture can run this way; anything else fails at
create with a reason naming what to change (GetFunction's StateReason).
"""

import base64
import json
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request

from localstack import config
from localstack.aws.api.lambda_ import PackageType
from localstack.services.lambda_.invocation.executor_endpoint import NAMESPACE
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)

LOG = logging.getLogger(__name__)

RUNTIME_BINARY = "courier-lambda-runtime"
# The Go server answers at the function's timeout; this only bounds a hang.
INVOKE_GRACE_SECONDS = 30
STOP_GRACE_SECONDS = 3
HOST_ARCHITECTURES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def runtime_binary() -> str:
    """COURIER_LAMBDA_RUNTIME, else courier-lambda-runtime beside the venv's python."""
    path = os.environ.get("COURIER_LAMBDA_RUNTIME") or os.path.join(
        os.path.dirname(sys.executable), RUNTIME_BINARY
    )
    return path


def host_architecture() -> str:
    machine = platform.machine().lower()
    return HOST_ARCHITECTURES.get(machine, machine)


def gateway_host() -> str:
    host = config.GATEWAY_LISTEN[0].host
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


class HostRuntimeExecutor(RuntimeExecutor):
    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.process: subprocess.Popen | None = None
        self.control: str | None = None
        self.work_dir: str | None = None
        self.log_path: str | None = None
        self.lock = threading.Lock()

    # ------------------------------------------------------------ lifecycle

    def start(self, env_vars: dict[str, str]) -> None:
        cfg = self.function_version.config
        code = str(cfg.code.get_unzipped_code_location())
        self.work_dir = tempfile.mkdtemp(prefix=f"courier-lambda-{self.id}-")
        tmp = os.path.join(self.work_dir, "tmp")
        os.mkdir(tmp, 0o700)
        self.log_path = os.path.join(self.work_dir, "output.log")

        env = {k: str(v) for k, v in env_vars.items() if v is not None}
        # The container's paths do not exist here: the code dir and a /tmp of
        # this environment's own stand in for /var/task and /tmp.
        env.update(
            LAMBDA_TASK_ROOT=code,
            LAMBDA_RUNTIME_DIR=code,
            TMPDIR=tmp,
            PATH=os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        )
        for key in ("HOME", "LANG", "SSL_CERT_FILE", "SSL_CERT_DIR"):
            if key in os.environ:
                env.setdefault(key, os.environ[key])

        cmd = [runtime_binary(), "-dir", code, "-timeout", str(cfg.timeout)]
        LOG.debug("courier executor %s: starting %s", self.id, cmd)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                cmd,
                env=env,
                cwd=code,
                stdin=subprocess.PIPE,  # EOF when LocalStack goes: the server exits
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        # Blocks until the bootstrap initialised; LocalStack's startup timer
        # calls stop() if it takes too long, which ends this read with EOF.
        line = self.process.stdout.readline()
        if not line:
            code_ = self.process.wait()
            raise LambdaRuntimeException(
                f"{RUNTIME_BINARY} exited with {code_} during start-up: {self.get_logs()[-2000:]}"
            )
        self.control = json.loads(line)["control"]

    def stop(self) -> None:
        with self.lock:
            proc, self.process = self.process, None
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            except ProcessLookupError:
                pass
            for f in (proc.stdin, proc.stdout):
                if f:
                    f.close()
        if self.work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    # ------------------------------------------------------------ invoke

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        if not self.control:
            raise LambdaRuntimeException(f"execution environment {self.id} is not started")
        timeout = float(self.function_version.config.timeout) + INVOKE_GRACE_SECONDS
        req = urllib.request.Request(
            f"http://{self.control}/invoke",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=timeout) as resp:
                answer = json.loads(resp.read())
        except (urllib.error.URLError, OSError, ValueError) as e:
            error = {"errorType": "Runtime.Unavailable", "errorMessage": f"{RUNTIME_BINARY}: {e}"}
            return InvocationResult(
                payload["invoke-id"], json.dumps(error).encode(), is_error=True, logs=self.get_logs()[-4000:]
            )
        return InvocationResult(
            request_id=payload["invoke-id"],
            payload=base64.b64decode(answer.get("payload") or ""),
            is_error=bool(answer.get("is_error")),
            logs=answer.get("logs", ""),
        )

    def get_logs(self) -> str:
        try:
            with open(self.log_path or "", encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # ------------------------------------------------------------ addresses

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        # The function runs on this host: LocalStack's own gateway address
        # (AWS_ENDPOINT_URL of the function).
        return gateway_host()

    def get_runtime_endpoint(self) -> str:
        # Only LocalStack's init calls back here; ours answers over its
        # control port, but the variable is still set for the function.
        return f"http://{gateway_host()}:{config.GATEWAY_LISTEN[0].port}{NAMESPACE}/{self.id}"

    # ------------------------------------------------------------ versions

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        cfg = function_version.config
        name = function_version.id.function_name
        if cfg.package_type != PackageType.Zip:
            raise LambdaRuntimeException(
                f"{name}: container image functions need Docker; courier's executor runs zip packages only"
            )
        runtime = str(cfg.runtime or "")
        if not runtime.startswith("provided"):
            raise LambdaRuntimeException(
                f"{name}: runtime {runtime} needs its language runtime from a container; "
                "courier's executor runs OS-only runtimes (provided.al2023, provided.al2)"
            )
        arch, host = str(cfg.architectures[0]), host_architecture()
        if arch != host:
            raise LambdaRuntimeException(
                f"{name}: architecture {arch} cannot run on this {host} host without emulation; "
                f"build the bootstrap for {host} and deploy the function with architecture {host}"
            )
        if not os.access(runtime_binary(), os.X_OK):
            raise LambdaRuntimeException(
                f"{runtime_binary()} not found: scripts/emulator.sh install localstack builds it"
            )
        if cfg.code:
            cfg.code.prepare_for_execution()
            bootstrap = os.path.join(str(cfg.code.get_unzipped_code_location()), "bootstrap")
            if not os.path.isfile(bootstrap):
                raise LambdaRuntimeException(f"{name}: the code has no bootstrap at its root")

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass

    @classmethod
    def validate_environment(cls) -> bool:
        if not os.access(runtime_binary(), os.X_OK):
            LOG.warning("courier executor: %s not found or not executable", runtime_binary())
            return False
        return True
