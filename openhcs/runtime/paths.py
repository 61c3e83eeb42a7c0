"""Where openhcs keeps its files, decided in one place.

Connection files (keys!) live in the runtime folder, so it must be user-only; history and
logs live in the data folder, which outlives reboots. Both can be moved with environment
variables (``OPENHCS_RUNTIME_DIR``, ``OPENHCS_DATA_DIR``) so tests and several users or
deployments on one machine never see each other's servers.
"""

from __future__ import annotations

import getpass
import os
import stat
import tempfile
from pathlib import Path

import platformdirs

APP_NAME = "openhcs"
RUNTIME_ENV = "OPENHCS_RUNTIME_DIR"
DATA_ENV = "OPENHCS_DATA_DIR"


def _make_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _private_temp_dir() -> Path:
    """A stable per-user folder under the system temp dir, refused if someone else owns it."""
    path = Path(tempfile.gettempdir()) / f"{APP_NAME}-{getpass.getuser()}"
    _make_dir(path)
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise RuntimeError(f"{path} is not a plain folder; set {RUNTIME_ENV} to a private folder")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise RuntimeError(f"{path} belongs to another user; set {RUNTIME_ENV} to a private folder")
    os.chmod(path, 0o700)
    return path


def runtime_dir() -> Path:
    """Folder for connection files and other per-session state (user-only, mode 0700)."""
    env = os.environ.get(RUNTIME_ENV)
    if env:
        return _make_dir(Path(env))
    path = Path(platformdirs.user_runtime_dir(APP_NAME))
    try:
        _make_dir(path)
        if os.access(path, os.W_OK | os.X_OK):
            return path
    except OSError:
        pass
    return _private_temp_dir()


def data_dir() -> Path:
    """Folder for files that outlive a session: run history, logs."""
    env = os.environ.get(DATA_ENV)
    return _make_dir(Path(env) if env else Path(platformdirs.user_data_dir(APP_NAME)))


def log_dir() -> Path:
    """Folder for server logs (``data_dir()/logs``)."""
    return _make_dir(data_dir() / "logs")
