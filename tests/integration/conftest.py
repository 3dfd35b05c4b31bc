"""Integration tests run against the real Kafka broker and Redis that `make test` starts.

A missing service is a failure, never a skip: `make test` (or `make up`) starts both.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

from tests.integration.harness import BOOTSTRAP, REDIS_URL, Worker


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session", autouse=True)
def services() -> None:
    host, _, port = BOOTSTRAP.split(",")[0].rpartition(":")
    if not _answers(host, int(port)):
        pytest.fail(f"Kafka does not answer at {BOOTSTRAP}: run the tests with `make test` (it starts Kafka and Redis)")
    r = urlparse(REDIS_URL)
    if not _answers(r.hostname or "127.0.0.1", r.port or 6379):
        pytest.fail(f"Redis does not answer at {REDIS_URL}: run the tests with `make test`")


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    """One worker shared by the tests of a module; each test uses its own customers."""
    w = Worker("shared").start()
    try:
        yield w
    finally:
        w.close()
