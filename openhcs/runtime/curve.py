"""CURVE encryption and client authentication for servers reachable off this machine.

HMAC signing proves who sent a message but the bytes still cross the network in the clear;
a server bound to a non-loopback address therefore must encrypt (libzmq's CURVE) and must
only accept clients whose public key it knows. Keys are made once by
``openhcs server keys`` with ``zmq.auth.create_certificates`` into ``data_dir()/keys``:

    keys/server.key         server public key (give to clients; also in the connection file)
    keys/server.key_secret  server secret key (stays on the server)
    keys/client.key         a client public key, also copied into keys/authorized/
    keys/client.key_secret  that client's secret key (copy to the client machine)
    keys/authorized/        public keys of the clients the server accepts
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth

from openhcs.runtime.paths import data_dir


class CurveKeysMissing(RuntimeError):
    """A non-loopback bind was requested but no CURVE keys exist."""


@dataclass(frozen=True)
class ServerKeys:
    public: bytes
    secret: bytes
    authorized_dir: Path


@dataclass(frozen=True)
class ClientKeys:
    public: bytes
    secret: bytes
    server_public: bytes


def keys_dir(directory: Path | None = None) -> Path:
    return Path(directory) if directory else data_dir() / "keys"


def create_keys(directory: Path | None = None, overwrite: bool = False) -> Path:
    """Create a server and a client key pair (and authorize the client); returns the folder."""
    folder = keys_dir(directory)
    if (folder / "server.key_secret").exists() and not overwrite:
        return folder
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    zmq.auth.create_certificates(folder, "server")
    zmq.auth.create_certificates(folder, "client")
    for secret in folder.glob("*.key_secret"):
        secret.chmod(0o600)
    authorized = folder / "authorized"
    authorized.mkdir(mode=0o700, exist_ok=True)
    shutil.copy(folder / "client.key", authorized / "client.key")
    return folder


def have_server_keys(directory: Path | None = None) -> bool:
    return (keys_dir(directory) / "server.key_secret").exists()


def load_server_keys(directory: Path | None = None) -> ServerKeys:
    folder = keys_dir(directory)
    secret_file = folder / "server.key_secret"
    if not secret_file.exists():
        raise CurveKeysMissing(
            f"no CURVE server keys in {folder}; run `openhcs server keys` first "
            "(required to bind a non-loopback address)"
        )
    public, secret = zmq.auth.load_certificate(secret_file)
    return ServerKeys(public=public, secret=secret, authorized_dir=folder / "authorized")


def load_client_keys(server_public: str | bytes | None = None, directory: Path | None = None) -> ClientKeys:
    """The client key pair from ``directory`` and the server's public key (from the
    connection file when given, else ``server.key`` in the same folder)."""
    folder = keys_dir(directory)
    public, secret = zmq.auth.load_certificate(folder / "client.key_secret")
    if server_public is None:
        server_public, _ = zmq.auth.load_certificate(folder / "server.key")
    if isinstance(server_public, str):
        server_public = server_public.encode()
    return ClientKeys(public=public, secret=secret, server_public=server_public)


def make_server_socket(sock: zmq.Socket, keys: ServerKeys) -> None:
    sock.curve_secretkey = keys.secret
    sock.curve_publickey = keys.public
    sock.curve_server = True


def make_client_socket(sock: zmq.Socket, keys: ClientKeys) -> None:
    sock.curve_secretkey = keys.secret
    sock.curve_publickey = keys.public
    sock.curve_serverkey = keys.server_public


def start_authenticator(context: zmq.Context, keys: ServerKeys):
    """A ZAP handler thread accepting only clients whose public key is in
    ``keys.authorized_dir``; call ``.stop()`` on the result when the server stops."""
    from zmq.auth.thread import ThreadAuthenticator

    auth = ThreadAuthenticator(context)
    auth.start()
    auth.configure_curve(domain="*", location=str(keys.authorized_dir))
    return auth
