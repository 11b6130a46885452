"""Fault injectors for the reliability suite: servers we can kill, and a proxy that answers 503.

Nothing here imitates our code or the systems it talks to. The registry and the S3 API are the
real servers of the local stack, started on free ports so a test can SIGKILL them mid-release
and start them again on the same port (the registry on the same data directory). `FaultProxy`
sits between the release and moto and forwards every request unchanged, except the ones its
policy picks, which it answers 503 itself, like an overloaded S3 front end; it also counts
what went through, so a test can assert how many attempts a retry loop made.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from deploy_assets.local import stack as local_stack
from deploy_assets_tests.stack_fixtures import S3_TEST_REGION, STOP_GRACE

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    ]
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def sigkill(pidfile: Path) -> int:
    """SIGKILL the process a pid file names (a crash, not a shutdown); wait until it is gone."""
    pid = int(pidfile.read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return pid


@dataclass
class KillableRegistry:
    """A distribution registry on a fixed port and data directory, so it can come back as it was."""

    state_dir: Path
    port: int = field(default_factory=local_stack.free_port)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.state_dir / "registry.log"

    def start(self) -> None:
        local_stack.start_registry(self.port, self.state_dir / "data", self.state_dir)

    def kill(self) -> None:
        sigkill(self.state_dir / "registry.pid")

    def stop(self) -> None:
        local_stack.stop_process(
            self.state_dir / "registry.pid", grace=STOP_GRACE, expect="docker-registry"
        )


@dataclass
class KillableS3:
    """moto's S3 on a fixed port. Its state is in memory: a restart comes back empty."""

    state_dir: Path
    bucket: str
    port: int = field(default_factory=local_stack.free_port)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.state_dir / "s3.log"

    def start(self) -> None:
        local_stack.start_s3(self.port, self.state_dir, self.bucket, S3_TEST_REGION)

    def kill(self) -> None:
        sigkill(self.state_dir / "s3.pid")

    def stop(self) -> None:
        local_stack.stop_process(self.state_dir / "s3.pid", grace=STOP_GRACE, expect="moto_server")


def when_log_line(
    path: Path, pattern: str, action: Callable[[], None], timeout: float = 300
) -> threading.Thread:
    """Run action (in a thread) as soon as a line matching pattern appears in a server's log."""
    regex = re.compile(pattern)

    def watch() -> None:
        deadline, offset = time.monotonic() + timeout, path.stat().st_size if path.exists() else 0
        while time.monotonic() < deadline:
            if path.exists():
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    text = fh.read().decode(errors="replace")
                if regex.search(text):
                    action()
                    return
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def missing_blobs(host: str, name: str, tag: str) -> list[str] | None:
    """None if name:tag does not exist; else the blobs its manifest names that the registry lacks."""
    got = requests.get(
        f"http://{host}/v2/{name}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT}, timeout=10
    )
    if got.status_code == 404:
        return None
    got.raise_for_status()
    manifest = got.json()
    blobs = [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]
    return [
        b
        for b in blobs
        if requests.head(f"http://{host}/v2/{name}/blobs/{b}", timeout=10).status_code != 200
    ]


# --- a 503-injecting reverse proxy in front of an S3 API server -----------------------------

Policy = Callable[
    [str, str, int], bool
]  # (method, path, nth time this method+path is seen) -> answer 503?


class FaultProxy:
    """Forwards HTTP to `upstream`; requests the policy picks are answered 503 SlowDown, and
    requests `corrupt` picks are forwarded with one byte in the middle of the body flipped
    (a transfer corrupted on the way, which the server then stores as received)."""

    def __init__(self, upstream: str, policy: Policy | None = None):
        self.upstream = upstream.removeprefix("http://")
        self.policy: Policy = policy or (lambda method, path, nth: False)
        self.corrupt: Policy = lambda method, path, nth: False
        self.seen: Counter[tuple[str, str]] = Counter()
        self.refused: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def writes(self) -> dict[tuple[str, str], int]:
        """Requests that could change the bucket (PUT/POST/DELETE), by (method, path)."""
        return {k: n for k, n in self.seen.items() if k[0] in ("PUT", "POST", "DELETE")}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while (size := int(self.rfile.readline().strip().split(b";")[0], 16)) > 0:
                        data += self.rfile.read(size)
                        self.rfile.readline()
                    self.rfile.readline()
                    return data
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _serve(self) -> None:
                body = self._body()
                path = self.path.split("?", 1)[0]
                with proxy._lock:
                    proxy.seen[(self.command, path)] += 1
                    nth = proxy.seen[(self.command, path)]
                    refuse = proxy.policy(self.command, path, nth)
                    if refuse:
                        proxy.refused[(self.command, path)] += 1
                    elif body and proxy.corrupt(self.command, path, nth):
                        middle = len(body) // 2
                        body = body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]
                if refuse:
                    payload = (
                        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                        b"<Message>Please reduce your request rate.</Message></Error>"
                    )
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"
                }
                headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                finally:
                    conn.close()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in (
                        "transfer-encoding",
                        "content-length",
                        "connection",
                        "date",
                        "server",
                    ):
                        self.send_header(key, value)
                # A HEAD answer has no body but announces the object's length: pass that through.
                length = response.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

        return Handler


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
