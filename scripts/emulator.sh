#!/usr/bin/env bash
# Local emulators for courier: moto and LocalStack, installed into the project
# directory and run on a free loopback port. See localstack/FIDELITY.md
# ("Set-up") for every setting and why.
#
#   scripts/emulator.sh install moto|localstack
#   scripts/emulator.sh start   moto|localstack     install if needed, start, wait for health
#   scripts/emulator.sh stop    moto|localstack|all
#   scripts/emulator.sh env     moto|localstack     print the env file: eval "$(scripts/emulator.sh env localstack)"
#   scripts/emulator.sh reset   moto                drop all moto state
#   scripts/emulator.sh status
#
# start writes .courier/<backend>.env (export lines: AWS_ENDPOINT_URL,
# test credentials, region, COURIER_BACKEND, COURIER_EMULATOR_PID); logs go to
# .courier/<backend>.log. Progress goes to stderr; stdout carries only what
# `env` and `status` print.
#
# Exit codes: 0 ok; 1 install or start failed (log tail printed);
# 2 usage; 3 the backend is not running (env, reset).
#
# Settings (environment):
#   COURIER_LOCALSTACK_MODE     auto (default: docker when `docker info` answers, else host) | host | docker
#   COURIER_LOCALSTACK_SERVICES default sqs,sns,s3,dynamodb,sts,iam,cloudformation,ssm,lambda,logs
#
# LocalStack host mode runs Lambda functions without Docker through courier's
# runtime executor: install puts localstack/executor (the plugin) into
# .venv-localstack and builds cmd/courier-lambda-runtime into its bin/ (needs
# Go); start selects it with LAMBDA_RUNTIME_EXECUTOR=courier.
#   COURIER_<BACKEND>_PORT      fixed port instead of a free one (COURIER_MOTO_PORT, COURIER_LOCALSTACK_PORT)
#   COURIER_EMULATOR_TIMEOUT    seconds to wait for health (default 90)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=$ROOT/.courier

MOTO_VERSION=5.2.5
LOCALSTACK_VERSION=4.14.0
DDB_LOCAL_VERSION=3.3.1
MOTO_VENV=$ROOT/.venv-moto
LS_VENV=$ROOT/.venv-localstack
LS_CONSTRAINTS=$ROOT/localstack/constraints-$LOCALSTACK_VERSION.txt
LS_COMPOSE=$ROOT/localstack/docker-compose.yml
LS_COMPOSE_PROJECT=courier-localstack
# DynamoDB Local lives beside the venv (it survives `make clean`); start links
# it into LocalStack's lib dir.
DDB_DIR=$LS_VENV/dynamodb-local
LS_SERVICES_DEFAULT=sqs,sns,s3,dynamodb,sts,iam,cloudformation,ssm,lambda,logs
LS_EXECUTOR=$ROOT/localstack/executor
TIMEOUT=${COURIER_EMULATOR_TIMEOUT:-90}

say() { printf 'courier: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 1
}
usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}

check_backend() {
	case ${1:-} in
	moto | localstack) ;;
	*) usage ;;
	esac
}

# lock <name>: serialise install/start/stop of one backend across processes
# (fd 9; the servers are started with 9>&- so they never hold it).
lock() {
	mkdir -p "$STATE"
	exec 9>"$STATE/$1.lock"
	flock -w 600 9 || die "timed out waiting for another emulator.sh on $1"
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_free() {
	python3 -c 'import socket, sys; s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

# ---------------------------------------------------------------- install

stamp_ok() { [[ -f $1/.courier-stamp && $(cat "$1/.courier-stamp") == "$2" ]]; }

install_moto() {
	local want="moto[server]==$MOTO_VERSION"
	if stamp_ok "$MOTO_VENV" "$want"; then
		return 0
	fi
	say "installing moto $MOTO_VERSION into .venv-moto (first run ~25 s)..."
	rm -rf "$MOTO_VENV"
	python3 -m venv "$MOTO_VENV"
	"$MOTO_VENV/bin/pip" install -q "$want" >&2 || die "pip install $want failed"
	printf '%s' "$want" >"$MOTO_VENV/.courier-stamp"
}

# LocalStack 4.14.0 needs Python >= 3.12 (3.12 generic-class syntax in its SQS code).
find_python312() {
	local root c
	root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
	for c in "$root"/versions/3.13.*/bin/python3 "$root"/versions/3.12.*/bin/python3 \
		"$(command -v python3.13 || true)" "$(command -v python3.12 || true)" "$(command -v python3 || true)"; do
		[[ -n $c && -x $c ]] || continue
		if "$c" -c 'import sys, venv; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
			echo "$c"
			return 0
		fi
	done
	return 1
}

install_localstack() {
	local py want
	want="localstack-core[runtime]==$LOCALSTACK_VERSION $(sha256sum "$LS_CONSTRAINTS" | cut -c1-16)"
	if ! stamp_ok "$LS_VENV" "$want"; then
		py=$(find_python312) || die "LocalStack $LOCALSTACK_VERSION needs Python >= 3.12 and none was found (tried \$(pyenv root)/versions/3.13.*, 3.12.*, python3.13, python3.12, python3). Install one (e.g. pyenv install 3.13) or use COURIER_LOCALSTACK_MODE=docker."
		say "installing LocalStack $LOCALSTACK_VERSION host mode with $("$py" -V) into .venv-localstack (first run ~40 s)..."
		rm -rf "$LS_VENV"
		"$py" -m venv "$LS_VENV"
		"$LS_VENV/bin/pip" install -q -c "$LS_CONSTRAINTS" "localstack-core[runtime]==$LOCALSTACK_VERSION" >&2 ||
			die "pip install localstack-core $LOCALSTACK_VERSION failed"
		printf '%s' "$want" >"$LS_VENV/.courier-stamp"
	fi
	install_dynamodb_local || say "WARNING: DynamoDB Local not installed; LocalStack runs without dynamodb (see localstack/FIDELITY.md)"
	install_executor || say "WARNING: courier's Lambda executor not installed; LocalStack cannot run Lambda functions"
}

# install_executor: courier's Lambda runtime executor into .venv-localstack:
# the plugin (reinstalled when localstack/executor changes) and the Go
# Runtime API server beside the venv's python, where the plugin looks.
install_executor() {
	local want tmp
	command -v go >/dev/null || {
		say "go not found: cannot build cmd/courier-lambda-runtime"
		return 1
	}
	(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$LS_VENV/bin/courier-lambda-runtime" ./cmd/courier-lambda-runtime) >&2 ||
		return 1
	want="courier-lambda-executor $(cd "$LS_EXECUTOR" && find . -name '*.py' -o -name pyproject.toml | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)"
	[[ -f $LS_VENV/.courier-executor-stamp && $(cat "$LS_VENV/.courier-executor-stamp") == "$want" ]] && return 0
	say "installing courier's Lambda executor (localstack/executor) into .venv-localstack"
	# From a copy: setuptools writes build/ and egg-info next to the sources.
	tmp=$(mktemp -d)
	cp -r "$LS_EXECUTOR/pyproject.toml" "$LS_EXECUTOR/courier_lambda_executor" "$tmp/"
	"$LS_VENV/bin/pip" install -q --no-deps --no-build-isolation --force-reinstall "$tmp" >&2 || {
		rm -rf "$tmp"
		return 1
	}
	rm -rf "$tmp"
	printf '%s' "$want" >"$LS_VENV/.courier-executor-stamp"
}

# java_home: a JDK >= 17 (DynamoDB Local 3.x needs 17+), from JAVA_HOME or PATH.
java_home() {
	local java home
	if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
		java=$JAVA_HOME/bin/java
	else
		java=$(command -v java) || return 1
	fi
	home=$(dirname "$(dirname "$(readlink -f "$java")")")
	"$home/bin/java" -version 2>&1 | head -1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])' || return 1
	echo "$home"
}

# install_dynamodb_local: AWS's DynamoDB Local from Maven Central, laid out
# like LocalStack's own download (which needs the internet):
#   DynamoDBLocal.jar    a manifest-only launcher: Main-Class + Class-Path of the Maven jars
#   DynamoDBLocal_lib/   the jars and sqlite4java natives from Maven
#   ddb-local-loader-0.1.jar  a no-op java agent: LocalStack always passes
#                        -javaagent (its own agent, from GitHub, lifts the 20-GSI limit)
install_dynamodb_local() {
	local want="DynamoDBLocal $DDB_LOCAL_VERSION" tmp home
	stamp_ok "$DDB_DIR" "$want" && return 0
	command -v mvn >/dev/null || {
		say "mvn not found: cannot fetch DynamoDB Local"
		return 1
	}
	home=$(java_home) || {
		say "no JDK >= 17 found: DynamoDB Local cannot run"
		return 1
	}
	[[ -x $home/bin/javac && -x $home/bin/jar ]] || {
		say "JDK at $home has no javac/jar"
		return 1
	}
	say "fetching DynamoDB Local $DDB_LOCAL_VERSION from Maven Central (first run ~10 s)..."
	rm -rf "$DDB_DIR"
	tmp=$DDB_DIR.tmp
	rm -rf "$tmp"
	mkdir -p "$tmp/DynamoDBLocal_lib" "$tmp/agent/src"
	mvn -q -B -Dstyle.color=never -f "$ROOT/localstack/dynamodb-local/pom.xml" -Ddynamodb.local.version="$DDB_LOCAL_VERSION" \
		dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp/DynamoDBLocal_lib" \
		>"$tmp/mvn.log" 2>&1 || {
		tail -n 30 "$tmp/mvn.log" >&2
		say "mvn dependency:copy-dependencies failed"
		return 1
	}
	rm -f "$tmp/mvn.log"
	# sqlite4java also looks for the natives without the version suffix.
	(
		cd "$tmp/DynamoDBLocal_lib"
		for f in libsqlite4java-*-[0-9]*.so libsqlite4java-*-[0-9]*.dylib; do
			[[ -e $f ]] && ln -sf "$f" "$(echo "$f" | sed -E 's/-[0-9][0-9.]*\.(so|dylib)$/.\1/')"
		done
	)
	python3 - "$tmp" <<'PY' || return 1
import os, sys, zipfile
d = sys.argv[1]
jars = sorted(j for j in os.listdir(os.path.join(d, "DynamoDBLocal_lib")) if j.endswith(".jar"))
main = next(j for j in jars if j.startswith("DynamoDBLocal-"))
jars.remove(main)
cp = " ".join("DynamoDBLocal_lib/" + j for j in [main] + jars)
def header(name, value):  # manifest lines are at most 72 bytes; continuations start with a space
    line, out = f"{name}: {value}", []
    out.append(line[:72]); line = line[72:]
    while line:
        out.append(" " + line[:71]); line = line[71:]
    return "\r\n".join(out) + "\r\n"
mf = (header("Manifest-Version", "1.0")
      + header("Main-Class", "software.amazon.dynamodb.services.local.main.ServerRunner")
      + header("Class-Path", cp) + "\r\n")
with zipfile.ZipFile(os.path.join(d, "DynamoDBLocal.jar"), "w") as z:
    z.writestr("META-INF/MANIFEST.MF", mf)
PY
	cat >"$tmp/agent/src/CourierNoopAgent.java" <<'JAVA'
// Stands in for LocalStack's ddb-local-loader agent: does nothing.
public final class CourierNoopAgent {
    public static void premain(String args) {}
}
JAVA
	printf 'Premain-Class: CourierNoopAgent\n' >"$tmp/agent/manifest.txt"
	if ! "$home/bin/javac" -d "$tmp/agent/classes" "$tmp/agent/src/CourierNoopAgent.java" >&2 ||
		! "$home/bin/jar" --create --file "$tmp/ddb-local-loader-0.1.jar" --manifest "$tmp/agent/manifest.txt" \
			-C "$tmp/agent/classes" . >&2; then
		say "building the no-op agent jar failed"
		return 1
	fi
	rm -rf "$tmp/agent"
	printf '%s' "$want" >"$tmp/.courier-stamp"
	mv "$tmp" "$DDB_DIR"
}

# ---------------------------------------------------------------- state

pidfile() { echo "$STATE/$1.pid"; }
envfile() { echo "$STATE/$1.env"; }
portfile() { echo "$STATE/$1.port"; }
modefile() { echo "$STATE/$1.mode"; }

# pid_alive <backend>: the recorded process is alive and is ours.
pid_alive() {
	local pid args
	[[ -f $(pidfile "$1") ]] || return 1
	pid=$(cat "$(pidfile "$1")")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	args=$(ps -o args= -p "$pid" 2>/dev/null) || return 1
	case $1 in
	moto) [[ $args == *moto_server* ]] ;;
	localstack) [[ $args == *localstack/run_host.py* ]] ;;
	esac
}

# health <backend> <port>: 0 when the emulator answers and is ready.
health() {
	local url=http://127.0.0.1:$2
	case $1 in
	moto)
		local code
		code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url/moto-api/" || true)
		[[ $code != 000 && -n $code ]]
		;;
	localstack)
		local body
		body=$(curl -s -m 2 "$url/_localstack/health" || true)
		[[ -n $body ]] || return 1
		ls_ready "$body"
		;;
	esac
}

# ls_ready <health json>: of the services asked for (LS_SERVICES_RUN), sqs
# and sns running if asked, and none still starting. Prints services in
# error to stderr once ready.
ls_ready() {
	python3 - "$1" "${LS_SERVICES_RUN:-sqs,sns}" <<'PY'
import json, sys
try:
    svc = json.loads(sys.argv[1]).get("services", {})
except ValueError:
    sys.exit(1)
ok = ("running", "available")
wanted = [s for s in sys.argv[2].split(",") if s]
if any(svc.get(s) not in ok for s in ("sqs", "sns") if s in wanted):
    sys.exit(1)
if any(svc.get(s) in ("initialized", "starting") for s in wanted):
    sys.exit(1)
bad = [f"{s}={svc.get(s)}" for s in wanted if svc.get(s) not in ok]
if bad:
    print("courier: WARNING: LocalStack services not running: " + " ".join(bad), file=sys.stderr)
PY
}

running_port() {
	local b=$1 port
	[[ -f $(portfile "$b") ]] || return 1
	port=$(cat "$(portfile "$b")")
	if [[ $b == localstack && $(cat "$(modefile "$b")" 2>/dev/null) == docker ]]; then
		:
	else
		pid_alive "$b" || return 1
	fi
	health "$b" "$port" 2>/dev/null || return 1
	echo "$port"
}

write_env() {
	local b=$1 port=$2 pid=$3 f
	f=$(envfile "$b")
	{
		echo "# written by scripts/emulator.sh start $b; eval \"\$(scripts/emulator.sh env $b)\""
		echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$port"
		echo "export AWS_ACCESS_KEY_ID=test"
		echo "export AWS_SECRET_ACCESS_KEY=test"
		echo "export AWS_REGION=us-east-1"
		echo "export AWS_DEFAULT_REGION=us-east-1"
		echo "export COURIER_BACKEND=$b"
		echo "export COURIER_EMULATOR_PID=$pid"
	} >"$f.tmp"
	mv "$f.tmp" "$f"
}

# ---------------------------------------------------------------- start

docker_up() { command -v docker >/dev/null && timeout 10 docker info >/dev/null 2>&1; }

ls_mode() {
	local mode=${COURIER_LOCALSTACK_MODE:-auto}
	case $mode in
	host) echo host ;;
	docker)
		docker_up || die "COURIER_LOCALSTACK_MODE=docker but no Docker engine answers (docker info failed)"
		echo docker
		;;
	auto)
		if docker_up; then
			echo docker
		else
			echo host
		fi
		;;
	*) die "COURIER_LOCALSTACK_MODE must be auto, host or docker (got $mode)" ;;
	esac
}

compose() {
	if docker compose version >/dev/null 2>&1; then
		docker compose -p "$LS_COMPOSE_PROJECT" -f "$LS_COMPOSE" "$@"
	elif command -v docker-compose >/dev/null; then
		docker-compose -p "$LS_COMPOSE_PROJECT" -f "$LS_COMPOSE" "$@"
	else
		die "neither 'docker compose' nor 'docker-compose' is installed"
	fi
}

# ls_services: the configured services, without dynamodb when DynamoDB Local
# could not be installed (LocalStack would try to download it and fail).
ls_services() {
	local s=${COURIER_LOCALSTACK_SERVICES:-$LS_SERVICES_DEFAULT}
	if [[ $1 == host && ,$s, == *,dynamodb,* ]] && ! stamp_ok "$DDB_DIR" "DynamoDBLocal $DDB_LOCAL_VERSION"; then
		say "WARNING: DynamoDB Local is not installed: starting LocalStack without dynamodb"
		s=$(echo ",$s," | sed 's/,dynamodb,/,/; s/^,//; s/,$//')
	fi
	echo "$s"
}

# link_dynamodb_local <fs root>: LocalStack looks for dynamodb-local/2 and a
# java/21 in <fs>/var/lib/localstack/lib; point both at what install made.
link_dynamodb_local() {
	local lib=$1/var/lib/localstack/lib home
	stamp_ok "$DDB_DIR" "DynamoDBLocal $DDB_LOCAL_VERSION" || return 0
	home=$(java_home) || return 0
	mkdir -p "$lib/dynamodb-local" "$lib/java"
	ln -sfn "$DDB_DIR" "$lib/dynamodb-local/2"
	ln -sfn "$home" "$lib/java/21"
}

launch() { # launch <backend> <log> cmd...: new session, so stop can kill the whole group
	local b=$1 log=$2
	shift 2
	setsid "$@" </dev/null >"$log" 2>&1 9>&- &
	echo $! >"$(pidfile "$b")"
}

start() {
	local b=$1 port pid log mode services t0 deadline
	lock "$b"
	if port=$(running_port "$b"); then
		say "$b already running on 127.0.0.1:$port"
		return 0
	fi
	stop_locked "$b" quiet
	mode=host
	[[ $b == localstack ]] && mode=$(ls_mode)
	if [[ $mode == host ]]; then
		"install_$b"
	fi
	port=${COURIER_MOTO_PORT:-}
	[[ $b == localstack ]] && port=${COURIER_LOCALSTACK_PORT:-}
	if [[ -z $port ]]; then
		port=$(free_port)
	elif ! port_free "$port"; then
		die "port $port (COURIER_${b^^}_PORT) is in use"
	fi
	log=$STATE/$b.log
	echo "$port" >"$(portfile "$b")"
	echo "$mode" >"$(modefile "$b")"
	t0=$(date +%s.%N)
	case $b/$mode in
	moto/host)
		say "starting moto $MOTO_VERSION on 127.0.0.1:$port (log: .courier/moto.log)"
		launch moto "$log" env -u AWS_ENDPOINT_URL -u AWS_PROFILE \
			"$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$port"
		;;
	localstack/host)
		local fs=$STATE/localstack-fs
		services=$(ls_services host)
		mkdir -p "$fs" "$STATE/localstack-tmp"
		link_dynamodb_local "$fs"
		say "starting LocalStack $LOCALSTACK_VERSION (host mode) on 127.0.0.1:$port with $services (log: .courier/localstack.log)"
		launch localstack "$log" env -u AWS_ENDPOINT_URL -u AWS_PROFILE \
			OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$fs" TMPDIR="$STATE/localstack-tmp" CONFIG_DIR="$fs/config" \
			GATEWAY_LISTEN="127.0.0.1:$port" LOCALSTACK_HOST="127.0.0.1:$port" SQS_ENDPOINT_STRATEGY=path \
			DNS_ADDRESS=0 SERVICES="$services" EAGER_SERVICE_LOADING=1 \
			DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 DYNAMODB_IN_MEMORY=1 \
			LAMBDA_RUNTIME_EXECUTOR=courier \
			"$LS_VENV/bin/python" "$ROOT/localstack/run_host.py"
		;;
	localstack/docker)
		services=$(ls_services docker)
		say "starting LocalStack $LOCALSTACK_VERSION (docker compose) on 127.0.0.1:$port (logs: docker compose -p $LS_COMPOSE_PROJECT logs)"
		COURIER_LOCALSTACK_PORT=$port LOCALSTACK_SERVICES=$services compose up -d >&2 ||
			die "docker compose up failed"
		echo docker >"$(pidfile "$b")"
		;;
	esac
	pid=$(cat "$(pidfile "$b")")
	export LS_SERVICES_RUN=${services:-}
	deadline=$(($(date +%s) + TIMEOUT))
	while :; do
		if [[ $mode == host ]] && ! pid_alive "$b"; then
			start_failed "$b" "$log" "exited during start-up"
		fi
		health "$b" "$port" && break
		if (($(date +%s) >= deadline)); then
			start_failed "$b" "$log" "not healthy after ${TIMEOUT}s"
		fi
		sleep 0.3
	done
	write_env "$b" "$port" "$pid"
	say "$b ready on 127.0.0.1:$port in $(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$t0" "$(date +%s.%N)") s; env: .courier/$b.env"
}

start_failed() {
	local b=$1 log=$2
	say "$b $3; last lines of $log:"
	if [[ $(cat "$(modefile "$b")" 2>/dev/null) == docker ]]; then
		compose logs --tail 40 >&2 || true
	else
		tail -n 40 "$log" >&2 || true
	fi
	stop_locked "$b" quiet
	exit 1
}

# ---------------------------------------------------------------- stop

# descendants <pid>: the pids of all processes below pid.
descendants() {
	ps -eo pid=,ppid= | awk -v root="$1" '
		{ parent[$1] = $2 }
		END {
			for (p in parent) {
				q = parent[p]
				while (q != "" && q != root && q > 1) q = parent[q]
				if (q == root) print p
			}
		}'
}

stop_locked() {
	local b=$1 quiet=${2:-} pid i kids k
	if [[ $b == localstack && $(cat "$(modefile "$b")" 2>/dev/null) == docker ]]; then
		[[ -n $quiet ]] || say "stopping LocalStack (docker compose)"
		compose down >&2 || true
	elif pid_alive "$b"; then
		pid=$(cat "$(pidfile "$b")")
		[[ -n $quiet ]] || say "stopping $b (pid $pid)"
		# LocalStack runs DynamoDB Local in a session of its own: note every
		# descendant now, to end any it leaves behind.
		kids=$(descendants "$pid")
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 150; i++)); do
			kill -0 -- "-$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 -- "-$pid" 2>/dev/null; then
			say "$b did not stop in 15 s: killing"
			kill -KILL -- "-$pid" 2>/dev/null || true
		fi
		for k in $kids; do
			kill -KILL "$k" 2>/dev/null || true
		done
	elif [[ -z $quiet ]]; then
		say "$b is not running"
	fi
	if [[ $b == localstack ]]; then
		# A DynamoDB Local left behind by a LocalStack that died hard: its
		# command line names this checkout's state dir, so nothing else matches.
		for k in $(ps -eo pid=,args= | awk -v d="$STATE/localstack-fs/" 'index($0, d) && /java/ { print $1 }'); do
			kill -KILL "$k" 2>/dev/null || true
		done
	fi
	rm -f "$(pidfile "$b")" "$(envfile "$b")" "$(portfile "$b")" "$(modefile "$b")"
}

stop() {
	lock "$1"
	stop_locked "$1"
}

# ---------------------------------------------------------------- other verbs

cmd_env() {
	local b=$1
	if running_port "$b" >/dev/null && [[ -f $(envfile "$b") ]]; then
		cat "$(envfile "$b")"
	else
		say "$b is not running (scripts/emulator.sh start $b)"
		exit 3
	fi
}

reset() {
	local port
	[[ $1 == moto ]] || {
		say "reset is for moto only (LocalStack: stop and start)"
		exit 2
	}
	port=$(running_port moto) || {
		say "moto is not running"
		exit 3
	}
	curl -sf -m 10 -X POST "http://127.0.0.1:$port/moto-api/reset" >/dev/null || die "moto reset failed"
}

status() {
	local b port
	for b in localstack moto; do
		if port=$(running_port "$b"); then
			printf '%-10s running  http://127.0.0.1:%s  %s pid %s\n' "$b" "$port" \
				"$(cat "$(modefile "$b")" 2>/dev/null || echo host)" "$(cat "$(pidfile "$b")")"
		elif [[ -f $(pidfile "$b") ]]; then
			printf '%-10s stale    (recorded but not healthy; stop %s cleans up)\n' "$b" "$b"
		else
			printf '%-10s stopped\n' "$b"
		fi
	done
}

main() {
	local verb=${1:-} b=${2:-}
	case $verb in
	install)
		check_backend "$b"
		lock "$b"
		"install_$b"
		;;
	start)
		check_backend "$b"
		start "$b"
		;;
	stop)
		case $b in
		all)
			stop localstack
			stop moto
			;;
		*)
			check_backend "$b"
			stop "$b"
			;;
		esac
		;;
	env)
		check_backend "$b"
		cmd_env "$b"
		;;
	reset)
		check_backend "$b"
		reset "$b"
		;;
	status) status ;;
	-h | --help | help) usage ;;
	*) usage ;;
	esac
}

# Sourced (by scripts/emulator_test.go) it only defines the functions.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
