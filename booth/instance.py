"""The node's ``instance/`` folder: secrets created once, readable only by their owner.

Run as ``python -m booth.instance DIR`` (``make run`` does) before the app is created: the
application itself refuses to start without its secret instead of inventing one.
"""
from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

SECRET_FILE = "secret_key"


class InstanceError(RuntimeError):
    """The instance folder is missing or unusable: the node must not start half-working."""


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 atomically (never world-readable, not even for a moment)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def ensure_instance(folder: Path) -> Path:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)  # the database and the keys live here (the clone's instance/ is 0755)
    secret = folder / SECRET_FILE
    if not secret.exists():
        write_private(secret, secrets.token_hex(32).encode())
    return folder


def read_secret(folder: Path) -> str:
    secret = folder / SECRET_FILE
    if not secret.exists():
        raise InstanceError(
            f"{secret} is missing. Run `make run` (or `python -m booth.instance {folder}`) "
            "to create the node's instance folder; the node will not start without its secret."
        )
    mode = secret.stat().st_mode & 0o777
    if mode & 0o077:
        raise InstanceError(f"{secret} is readable by other users (mode {mode:o}); run chmod 600 on it.")
    value = secret.read_text().strip()
    if len(value) < 32:
        raise InstanceError(f"{secret} is too short to be a secret key.")
    return value


if __name__ == "__main__":  # pragma: no cover - exercised by make run
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "instance"
    ensure_instance(target)
    print(f"instance ready: {target}")
