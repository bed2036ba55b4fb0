"""Periodic backups from a background thread of the serving process (``booth/serve.py`` starts it;
never tests, never the CLI). A failure is logged — with no personal data, only the error's kind — and
retried at the next tick: a backup never takes the node down."""
from __future__ import annotations

import threading


def run_once(app) -> bool:
    """One backup; True when written. Never raises."""
    from booth import clock
    from booth.backup import services

    log = app.logger  # the app's logger (like the error handlers'): a logger made at import time is
    # disabled by Alembic's fileConfig whenever migrations run in the same process
    try:
        with app.app_context():
            cfg = app.config
            path = services.make_backup(db_file=services.sqlite_path(cfg["SQLALCHEMY_DATABASE_URI"]),
                                        dest=services.backup_dir(cfg, app.instance_path), now=clock.now(),
                                        recipients=services.recipients(cfg, app.instance_path))
        log.info("periodic backup written: %s", path.name)
        return True
    except services.BackupError as e:  # our own messages hold no data
        log.warning("periodic backup skipped: %s", e)
    except OSError as e:
        log.warning("periodic backup failed: %s (errno %s)", type(e).__name__, e.errno)
    except Exception as e:  # noqa: BLE001 - the server must keep serving
        log.warning("periodic backup failed: %s", type(e).__name__)
    return False


def start(app, stop: threading.Event | None = None) -> threading.Thread | None:
    """Start the thread (daemon) when BACKUP_EVERY_MINUTES > 0 on a booth; returns it."""
    try:
        minutes = float(app.config.get("BACKUP_EVERY_MINUTES") or 0)
    except (TypeError, ValueError):
        minutes = 0
    if app.config.get("ROLE") != "booth" or minutes <= 0:
        return None
    stop = stop or threading.Event()

    def loop():
        while not stop.wait(minutes * 60):
            run_once(app)

    thread = threading.Thread(target=loop, name="vinculo-backup", daemon=True)
    thread.start()
    return thread
