"""Connection files: how clients find a server and learn its secret.

Each server writes ``server-{port}.json`` (mode 0600) into the user's runtime folder:
its host, ports, pid, transport, the HMAC key every message is signed with, and the CURVE
public key when it encrypts. Being user-only is what keeps the key secret, so the file is
created with 0600 from the start (never chmod-ed after writing) and replaced atomically.

Discovery is by these files only — never by port scans or process names — and a file
whose pid is gone (or reused by another process) is stale and removed.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from openhcs.runtime.paths import runtime_dir
from openhcs.runtime.protocol import PROTOCOL_VERSION

CONTROL_PORT_OFFSET = 1000
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "")


def control_port_for(data_port: int) -> int:
    return data_port + CONTROL_PORT_OFFSET


def new_key() -> str:
    """A fresh 256-bit signing key, hex encoded."""
    return secrets.token_hex(32)


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


@dataclass
class ConnectionInfo:
    host: str
    data_port: int
    control_port: int
    pid: int
    key: str
    transport: str = "tcp"
    started_at: float = field(default_factory=time.time)
    version: int = PROTOCOL_VERSION
    curve_public_key: str | None = None
    pid_create_time: float | None = None
    log_file: str | None = None
    persistent: bool = False

    @property
    def key_bytes(self) -> bytes:
        return self.key.encode()

    @property
    def port(self) -> int:
        return self.data_port

    def _connect_host(self) -> str:
        # A server bound to every interface is reached locally through loopback.
        return "127.0.0.1" if self.host in ("0.0.0.0", "*", "") else self.host

    @property
    def data_endpoint(self) -> str:
        return f"{self.transport}://{self._connect_host()}:{self.data_port}"

    @property
    def control_endpoint(self) -> str:
        return f"{self.transport}://{self._connect_host()}:{self.control_port}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ConnectionInfo:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def connection_file_path(port: int, directory: Path | None = None) -> Path:
    return (directory or runtime_dir()) / f"server-{port}.json"


def write_connection_file(info: ConnectionInfo, directory: Path | None = None) -> Path:
    """Write ``info`` user-only (0600) and atomically; returns the path."""
    path = connection_file_path(info.data_port, directory)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # in case the temp name existed with looser bits
        with os.fdopen(fd, "w") as fh:
            json.dump(info.to_dict(), fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return path


def read_connection_file(path: str | os.PathLike) -> ConnectionInfo:
    with open(path) as fh:
        return ConnectionInfo.from_dict(json.load(fh))


def remove_connection_file(port: int, pid: int | None = None, directory: Path | None = None) -> None:
    """Remove the file for ``port`` — only if it still belongs to ``pid`` (when given),
    so a stopping server never deletes its successor's file."""
    path = connection_file_path(port, directory)
    if pid is not None:
        try:
            if read_connection_file(path).pid != pid:
                return
        except (OSError, ValueError, TypeError):
            pass
    path.unlink(missing_ok=True)


def process_create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def pid_alive(pid: int, create_time: float | None = None) -> bool:
    """Whether ``pid`` is a running (non-zombie) process — the same process if
    ``create_time`` is given, so a recycled pid is not mistaken for the server."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if create_time is not None and abs(proc.create_time() - create_time) > 1.0:
            return False
        return True
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def is_alive(info: ConnectionInfo, ping: bool = False, timeout: float = 1.0) -> bool:
    """Pid check; with ``ping=True`` the server must also answer a signed ping."""
    if is_loopback(info.host) or info.host in ("0.0.0.0", "*"):
        if not pid_alive(info.pid, info.pid_create_time):
            return False
    if ping:
        from openhcs.runtime.requester import ping_server  # sockets live in the transport layer

        return ping_server(info, timeout=timeout) is not None
    return True


def find_servers(directory: Path | None = None, remove_stale: bool = True) -> list[ConnectionInfo]:
    """Every server with a connection file in ``directory``, sorted by port.

    Files whose process is gone are deleted (``remove_stale``) and not returned;
    unreadable files are skipped.
    """
    folder = directory or runtime_dir()
    found = []
    for path in sorted(folder.glob("server-*.json")):
        try:
            info = read_connection_file(path)
        except (OSError, ValueError, TypeError, KeyError):
            continue
        if not pid_alive(info.pid, info.pid_create_time):
            if remove_stale:
                path.unlink(missing_ok=True)
            continue
        found.append(info)
    return sorted(found, key=lambda i: i.data_port)


def find_server(port: int, directory: Path | None = None) -> ConnectionInfo | None:
    """The live local server on ``port``, or None (a stale file is removed)."""
    path = connection_file_path(port, directory)
    try:
        info = read_connection_file(path)
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if not pid_alive(info.pid, info.pid_create_time):
        path.unlink(missing_ok=True)
        return None
    return info
