"""A redis-server of the tests' own: on a free loopback port, its files in a temp dir, every write
appended and fsynced (so a restart on the same dir keeps everything), stopped after."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from helpers import free_port, stop


def require_redis_server() -> str:
    found = shutil.which("redis-server")
    if found is None:
        message = "redis-server is not installed (apt-get install redis-server; .ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)  # CI must run the Redis store's tests, not skip them
        pytest.skip(message)
    return found


@contextlib.contextmanager
def redis_server(directory: Path, port: int | None = None) -> Iterator[int]:
    binary = require_redis_server()
    port = port or free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--save", "",
                                "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        waiting = threading.Event()
        for _ in range(200):
            if process.poll() is not None:
                pytest.fail(f"redis-server exited with {process.returncode}")
            client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1)
            try:
                if client.ping():
                    break
            except redis.RedisError:
                waiting.wait(0.05)
            finally:
                client.close()
        else:
            pytest.fail("redis-server did not answer within 10 s")
        yield port
    finally:
        stop(process)
