"""``flask --app wsgi backup …``: init-recovery, now, list, restore."""
from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import AppGroup

from booth import clock
from booth.backup import crypto, services

backup_cli = AppGroup("backup", help="Encrypted backups of this node: init-recovery, now, list, restore.")


def _paths():
    cfg = current_app.config
    return services.sqlite_path(cfg["SQLALCHEMY_DATABASE_URI"]), services.backup_dir(cfg, current_app.instance_path)


@backup_cli.command("init-recovery")
@click.option("--replace", is_flag=True, help="Make a new key pair even if one exists.")
def init_recovery(replace):
    """Create the event's recovery key; print its private half ONCE (keep it off the node)."""
    try:
        text, fpr = services.init_recovery(current_app.instance_path, replace=replace)
    except services.BackupError as e:
        raise click.ClickException(str(e)) from None
    click.echo("RECOVERY KEY — shown only now. Write it on paper or print it and give it to the coordinator.")
    click.echo("Keep it OFF this node and away from the backup stick: whoever has both can read every record.")
    click.echo("")
    click.echo("    " + text)
    click.echo("")
    click.echo(f"key fingerprint {fpr} (only the public half is stored on this node)")


@backup_cli.command("now")
def backup_now():
    """Back up the database now (encrypted) to BACKUP_DIR."""
    db_file, dest = _paths()
    try:
        path = services.make_backup(db_file=db_file, dest=dest, now=clock.now(),
                                    recipients=services.recipients(current_app.config, current_app.instance_path))
    except services.BackupError as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"Could not write the backup to {dest} ({e.strerror}).") from None
    click.echo(f"{path} ({path.stat().st_size} bytes)")


@backup_cli.command("list")
def backup_list():
    """The backups in BACKUP_DIR: time (UTC) and size."""
    _db, dest = _paths()
    rows = services.list_backups(dest)
    if not rows:
        click.echo(f"no backups in {dest}")
    for b in rows:
        click.echo(f"{b.created:%Y-%m-%d %H:%M:%S}Z  {b.size:>12} bytes  {b.path.name}")


@backup_cli.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--key", "key_text", default=None,
              help="Recovery (or central) private key. Prefer leaving it out: it is then read from standard input "
                   "(an option stays in the shell history and is visible in the process list).")
@click.option("--force", is_flag=True, help="Restore even though this node already holds data (it is replaced).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (scripts).")
def backup_restore(file, key_text, force, yes):
    """Restore a backup onto this (new) node and check PRAGMA integrity_check."""
    from booth.extensions import db

    db_file, _dest = _paths()
    if key_text is None:
        key_text = sys.stdin.readline() if not sys.stdin.isatty() else click.prompt("Recovery key", hide_input=True)
    try:
        private = crypto.key_from_text(key_text)
    except crypto.BackupCryptoError as e:
        raise click.ClickException(str(e)) from None
    if services.node_has_data(db_file) and not force:
        raise click.ClickException("This node already holds data; a restore would replace it. "
                                   "Restore on a new node, or add --force if this is really what you want.")
    if not yes:
        click.confirm(f"Replace this node's database with {click.format_filename(file)}? "
                      "The coordinator must confirm", abort=True)
    db.engine.dispose()
    try:
        counts = services.restore(path=file, private=private, db_file=db_file)
    except services.BackupError as e:
        raise click.ClickException(str(e)) from None
    click.echo("restored; PRAGMA integrity_check: ok")
    click.echo(", ".join(f"{t} {n}" for t, n in counts.items()))
