"""Make, list and restore encrypted backups of the node's SQLite database.

The copy is taken with SQLite's online backup API (``sqlite3.Connection.backup``) into memory, so the
database keeps serving and no plaintext copy ever touches a disk; it is encrypted (``crypto``) and written
0600 under a neutral, time-based name to ``BACKUP_DIR`` (``VINCULO_BACKUP_DIR``, e.g. a USB stick;
default ``instance/backups``). Only the recovery *public* key lives on the node
(``instance/backup_recovery.pub``); the central key, when set, comes from ``BACKUP_CENTRAL_PUBLIC_KEY``.
"""
from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from booth.backup import crypto
from booth.instance import write_private

RECOVERY_PUB = "backup_recovery.pub"
NAME_RE = re.compile(r"^backup-(\d{8}T\d{6}Z)(?:-\d+)?\.enc$")
# tables whose rows must come back from a restore (the restore test compares them)
CHECK_TABLES = ("events", "booths", "staff", "visits", "consents", "screenings", "screening_results",
                "referrals", "audit_entries")


class BackupError(RuntimeError):
    """A backup or a restore cannot be done; the message says what to do."""


@dataclass
class BackupInfo:
    path: Path
    created: datetime
    size: int


def backup_dir(config, instance_path) -> Path:
    return Path(config.get("BACKUP_DIR") or Path(instance_path) / "backups")


def sqlite_path(uri: str) -> Path:
    if not uri.startswith("sqlite:///"):
        raise BackupError("Backups are for a booth node on SQLite.")
    return Path(uri[len("sqlite:///"):].split("?", 1)[0])


# ------------------------------------------------------------------------------------------- keys

def recovery_public(instance_path) -> bytes | None:
    path = Path(instance_path) / RECOVERY_PUB
    if not path.exists():
        return None
    return crypto.public_from_text(path.read_text())


def init_recovery(instance_path, *, replace: bool = False) -> tuple[str, str]:
    """Create the recovery key pair; store only the public key. Returns (private key text, fingerprint)."""
    path = Path(instance_path) / RECOVERY_PUB
    if path.exists() and not replace:
        raise BackupError("This node already has a recovery key. Use --replace to make a new one "
                          "(backups made before stay readable only with the old key).")
    private = crypto.new_private_key()
    public = crypto.public_of(private)
    write_private(path, (crypto.public_to_text(public) + "\n").encode())
    return crypto.key_to_text(private), crypto.fingerprint(public)


def recipients(config, instance_path) -> dict[str, bytes]:
    out = {}
    rec = recovery_public(instance_path)
    if rec is None:
        raise BackupError("No recovery key yet: run `flask --app wsgi backup init-recovery` first.")
    out["recovery"] = rec
    central = config.get("BACKUP_CENTRAL_PUBLIC_KEY")
    if not central:   # an enrolled node knows central's key (sent at enrollment, for bundles too)
        from booth.sync.client import load_state

        state = load_state(instance_path)
        central = state.central_public_key if state is not None else ""
    if central:
        out["central"] = crypto.public_from_text(central)
    return out


# ------------------------------------------------------------------------------------------- backup

def snapshot(db_file: Path) -> bytes:
    """A consistent copy of the live database (online backup API), as bytes, never on disk."""
    if not db_file.exists():
        raise BackupError("There is no database to back up yet.")
    src = sqlite3.connect(db_file, timeout=30)
    dst = sqlite3.connect(":memory:")
    try:
        src.backup(dst)
        return rollback_journal(dst.serialize())
    finally:
        dst.close()
        src.close()


def rollback_journal(data: bytes) -> bytes:
    """Mark a database image as rollback-journal (header bytes 18–19 = 1): a WAL-mode image cannot be
    opened in memory. The restored file is switched back to WAL."""
    if len(data) >= 100 and data[18:20] == b"\x02\x02":
        data = data[:18] + b"\x01\x01" + data[20:]
    return data


def make_backup(*, db_file: Path, dest: Path, recipients: dict[str, bytes], now: datetime) -> Path:
    now = now.astimezone(timezone.utc)
    blob = crypto.encrypt(snapshot(db_file), recipients, created=now.isoformat(timespec="seconds"))
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    path, n = dest / f"backup-{stamp}.enc", 1
    while path.exists():
        n += 1
        path = dest / f"backup-{stamp}-{n}.enc"
    write_private(path, blob)
    return path


def list_backups(dest: Path) -> list[BackupInfo]:
    if not dest.is_dir():
        return []
    out = []
    for p in dest.iterdir():
        m = NAME_RE.match(p.name)
        if m and p.is_file():
            created = datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
            out.append(BackupInfo(p, created, p.stat().st_size))
    return sorted(out, key=lambda b: (b.created, b.path.name))


# ------------------------------------------------------------------------------------------- restore

def node_has_data(db_file: Path) -> bool:
    if not db_file.exists():
        return False
    con = sqlite3.connect(db_file, timeout=30)
    try:
        for table in ("events", "visits", "audit_entries"):
            try:
                if con.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():  # noqa: S608 - fixed names
                    return True
            except sqlite3.OperationalError:  # not migrated yet: nothing in it
                continue
        return False
    finally:
        con.close()


def integrity(con: sqlite3.Connection) -> list[str]:
    return [r[0] for r in con.execute("PRAGMA integrity_check").fetchall()]


def decrypt_file(path: Path, private: bytes) -> bytes:
    try:
        blob = Path(path).read_bytes()
    except OSError as e:
        raise BackupError(f"Cannot read the backup file ({e.strerror}).") from None
    try:
        return crypto.decrypt(blob, private)
    except crypto.BackupCryptoError as e:
        raise BackupError(str(e)) from None


def restore(*, path: Path, private: bytes, db_file: Path) -> dict[str, int]:
    """Replace ``db_file`` with the backup's database after checking it; returns row counts."""
    data = decrypt_file(path, private)
    mem = sqlite3.connect(":memory:")
    try:
        try:
            mem.deserialize(rollback_journal(data))
            rows = integrity(mem)
        except sqlite3.DatabaseError:
            raise BackupError("The backup opened but does not hold a usable database.") from None
        if rows != ["ok"]:
            raise BackupError("The backup's database failed PRAGMA integrity_check: " + "; ".join(rows[:3]))
        db_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = db_file.with_name(db_file.name + ".restoring")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        out = sqlite3.connect(tmp)
        try:
            mem.backup(out)
            out.execute("PRAGMA journal_mode=WAL")
            if integrity(out) != ["ok"]:
                raise BackupError("The restored copy failed PRAGMA integrity_check; nothing was replaced.")
            counts = table_counts(out)
        finally:
            out.close()
    finally:
        mem.close()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        Path(str(db_file) + suffix).unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    os.replace(tmp, db_file)
    os.chmod(db_file, 0o600)
    return counts


def table_counts(con: sqlite3.Connection) -> dict[str, int]:
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608 - fixed names
            for t in CHECK_TABLES if t in names}
