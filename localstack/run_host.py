"""Runs LocalStack host mode (`python -m localstack.runtime.main`) with its
gateway bound to the loopback interface only.

LocalStack 4.14.0's default (twisted) gateway server ignores the host part of
GATEWAY_LISTEN and listens on every interface (its code has a
"TODO: interface = host?"). The hypercorn server would honour it, but it runs
request handlers in a small thread pool, so a handful of 20 s SQS long polls
would stall every other request. This shim keeps twisted and gives its TCP
endpoints a default interface of 127.0.0.1. Started by scripts/emulator.sh.
"""

import runpy
import sys

from twisted.internet import endpoints

_tcp4 = endpoints.TCP4ServerEndpoint


def _loopback_tcp4(reactor, port, backlog=50, interface=""):
    return _tcp4(reactor, port, backlog, interface or "127.0.0.1")


endpoints.TCP4ServerEndpoint = _loopback_tcp4

if __name__ == "__main__":
    sys.path.pop(0)  # this directory is not a package root
    runpy.run_module("localstack.runtime.main", run_name="__main__", alter_sys=True)
