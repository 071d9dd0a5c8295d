"""Helpers for the Python tests that start torii-server themselves: a free
loopback port, and a pre-exec hook that ties the server's life to the test's.

The tests in this folder run as `/usr/bin/python3 -B tests/e2e/<file>.py`, so
`import torii_server` finds this file next to them; tests elsewhere put this
folder on sys.path first.
"""

import ctypes
import signal
import socket

# Resolved here, at import and before any fork: the child of a threaded
# process (grpc has threads) should do as little as possible between fork and
# exec.
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None
_PR_SET_PDEATHSIG = 1
_SIGKILL = int(signal.SIGKILL)


def die_with_parent():
    """preexec_fn for the server: the kernel kills it if the test process dies
    for any reason (even SIGKILL from ctest's timeout)."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, _SIGKILL)


def free_port():
    """A free TCP port on 127.0.0.1 (bound and released; good enough for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
