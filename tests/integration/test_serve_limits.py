"""`devmesh serve` as a real process, probed over raw sockets as an attacker would:
huge or slow headers, huge or unending bodies, answered without reading them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.backends import free_port

pytestmark = pytest.mark.integration

DEVMESH = str(Path(sys.executable).parent / "devmesh")
TIMEOUT = 1.0  # the header and body deadlines the service runs with here


class Service:
    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.key = key

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return sock


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    port = free_port()
    env = {
        **os.environ,
        "DEVMESH_DATA_DIR": str(tmp_path_factory.mktemp("serve") / "data"),
        "DEVMESH_HTTP__HEADER_TIMEOUT": str(TIMEOUT),
        "DEVMESH_HTTP__BODY_TIMEOUT": str(TIMEOUT),
    }
    env.pop("DEVMESH_DATABASE_URL", None)
    created = subprocess.run(
        [DEVMESH, "tenants", "create", "acme"], env=env, capture_output=True, check=True
    )
    key = json.loads(created.stdout)["api_key"]
    process = subprocess.Popen(
        [DEVMESH, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("devmesh serve did not come up")
            time.sleep(0.05)
        yield Service(port, key)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def read_answer(sock: socket.socket) -> tuple[int, bytes, float]:
    """(status, raw response, seconds taken) once the server answers and closes, or
    has sent a whole response."""
    started = time.monotonic()
    data = b""
    while b"\r\n\r\n" not in data or not _complete(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    assert data, "the server closed without an answer"
    return int(data.split(b" ", 2)[1]), data, time.monotonic() - started


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return False


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_headers_and_a_huge_content_length_without_a_key_get_413_at_once(
    service: Service,
) -> None:
    with service.connect() as sock:
        sock.sendall(
            b"POST /api/v1/tools HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n"
        )
        status, raw, took = read_answer(sock)

    assert status == 413
    assert b"application/problem+json" in raw
    assert took < TIMEOUT


@pytest.mark.parametrize("path", [b"/api/v1/tools", b"/mcp"])
def test_a_body_never_sent_without_a_key_gets_401_at_once(service: Service, path: bytes) -> None:
    with service.connect() as sock:
        sock.sendall(
            b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        )
        status, raw, took = read_answer(sock)

    assert status == 401
    assert b"www-authenticate: bearer" in raw.lower()
    assert took < TIMEOUT


def test_a_body_that_never_completes_gets_408_after_the_body_timeout(service: Service) -> None:
    with service.connect() as sock:
        sock.sendall(
            b"POST /api/v1/tools HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer " + service.key.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        status, raw, took = read_answer(sock)

        assert status == 408
        assert b"connection: close" in raw.lower()
        assert TIMEOUT * 0.8 <= took < TIMEOUT + 5
        assert closed_by_server(sock)


def test_a_header_over_the_cap_gets_431_and_the_connection_closes(service: Service) -> None:
    with service.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        for _ in range(64):  # 1 MiB, far over the 16 KiB cap; stopped long before
            try:
                sock.sendall(b"a" * 16384)
            except (BrokenPipeError, ConnectionResetError):
                break
        status, _, _ = read_answer(sock)

    assert status == 431


def test_headers_that_never_complete_get_408_after_the_header_timeout(service: Service) -> None:
    with service.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        status, _, took = read_answer(sock)

        assert status == 408
        assert took < TIMEOUT + 5
        assert closed_by_server(sock)


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    service: Service,
) -> None:
    with service.connect() as sock:
        started = time.monotonic()
        assert closed_by_server(sock)
        assert time.monotonic() - started < TIMEOUT + 5


def test_keep_alive_requests_still_work_one_after_another(service: Service) -> None:
    with service.connect() as sock:
        for _ in range(3):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            status, _, _ = read_answer(sock)
            assert status == 200
