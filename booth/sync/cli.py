"""``flask sync …``: a thin command line over the sync services.

Central: ``register-node NAME [--event ID] [--json]``, ``revoke-node ID``, ``nodes [--json]``.
Booth: ``enroll CENTRAL_URL CODE [--node ID]``, ``ping``, ``push``, ``pull``, ``status [--json]``.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

import click
from flask import current_app
from flask.cli import AppGroup

from booth import clock
from booth.db import get_by_id
from booth.extensions import db

sync_cli = AppGroup("sync", help="Sync with the central server: register and enroll nodes, check the channel.")


def _need(role: str, what: str) -> None:
    if current_app.config["ROLE"] != role:
        where = "the central server (VINCULO_ROLE=central)" if role == "central" else "a booth node"
        raise click.ClickException(f"{what} runs on {where}")


# ---------------------------------------------------------------- central

@sync_cli.command("register-node")
@click.argument("name")
@click.option("--event", "event_id", default=None, help="Id of the central event this node serves.")
@click.option("--replaces", "replaces_id", default=None,
              help="Id of a lost node whose backup was restored on this one: it is revoked and its records move here.")
@click.option("--json", "as_json", is_flag=True, help='Print {"node": …, "code": …}.')
def register_node(name, event_id, replaces_id, as_json):
    """Register a booth node; prints its id and a one-time enrollment code (valid 30 minutes)."""
    from booth.events.models import Event
    from booth.sync import services

    _need("central", "register-node")
    event = None
    if event_id:
        event = get_by_id(db.session, Event, event_id)
        if event is None:
            raise click.ClickException(f"no event with id {event_id!r}")
    replaces = None
    if replaces_id:
        from booth.sync import queries

        replaces = queries.node(db.session, replaces_id)
        if replaces is None:
            raise click.ClickException(f"no node with id {replaces_id!r}")
    try:
        node, code = services.register_node(db.session, name=name, event=event, now=clock.now(), replaces=replaces)
    except services.SyncError as e:
        db.session.rollback()
        raise click.ClickException(e.message) from None
    db.session.commit()
    if as_json:
        click.echo(json.dumps({"node": str(node.id), "code": code}))
        return
    click.echo(f"node {node.id}")
    click.echo(f"code {code}")
    click.echo(f"on the booth: flask --app wsgi sync enroll CENTRAL_URL {code}  (valid {services.CODE_MINUTES} "
               "minutes, once)", err=True)


@sync_cli.command("revoke-node")
@click.argument("node_id")
def revoke_node(node_id):
    """Revoke a node: its signed requests are refused (403) from now on."""
    from booth.sync import queries, services

    _need("central", "revoke-node")
    node = queries.node(db.session, node_id)
    if node is None:
        raise click.ClickException(f"no node with id {node_id!r}")
    services.revoke_node(db.session, node, now=clock.now())
    db.session.commit()
    click.echo(f"revoked {node.name} ({node.id})")


@sync_cli.command("nodes")
@click.option("--json", "as_json", is_flag=True)
def list_nodes(as_json):
    """The registered nodes: state, event, last seen, clock offset."""
    from booth.sync import queries

    _need("central", "nodes")

    def iso(value):
        return value.isoformat() if value else None

    data = [{"node": str(n.id), "name": n.name, "state": n.state, "event": str(n.event_id) if n.event_id else None,
             "enrolled_at": iso(n.enrolled_at), "revoked_at": iso(n.revoked_at), "last_seen_at": iso(n.last_seen_at),
             "clock_offset_s": n.clock_offset_s} for n in queries.nodes(db.session)]
    if as_json:
        click.echo(json.dumps(data))
        return
    for d in data:
        offset = "" if d["clock_offset_s"] is None else f"clock {d['clock_offset_s']:+d} s"
        click.echo(f"{d['node']}  {d['name']:<20} {d['state']:<10} {d['last_seen_at'] or '-':<26} {offset}")


# ---------------------------------------------------------------- booth

@sync_cli.command("enroll")
@click.argument("central_url")
@click.argument("code")
@click.option("--node", "node_id", default=None, help="The node id printed with the code (optional check).")
def enroll(central_url, code, node_id):
    """Enroll this booth node with the central server using the one-time CODE."""
    from booth.sync import node

    _need("booth", "enroll")
    try:
        reply = node.enroll(db.session, central_url=central_url, code=code, node_id=node_id,
                            instance_path=current_app.instance_path, timeout=current_app.config["SYNC_TIMEOUT_S"])
    except node.EnrollFailed as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"enrolled as node {reply['node']}")
    click.echo(f"QR codes now point to {reply['central_base_url']}")
    if reply.get("event"):
        click.echo(f"setup will take central's event: {reply['event']['name']} ({reply['event']['day']})")


@sync_cli.command("ping")
def ping():
    """Send one signed request to the central server (checks the secret and the clock)."""
    from booth.sync import client

    _need("booth", "ping")
    state = client.load_state(current_app.instance_path)
    if state is None:
        raise click.ClickException("this node is not enrolled: run `flask --app wsgi sync enroll CENTRAL_URL CODE`")
    transport = client.Transport(state, lambda: clock.now().timestamp(), timeout=current_app.config["SYNC_TIMEOUT_S"])
    try:
        reply = transport.post("ping")
    except client.SyncFailed as e:
        raise click.ClickException(f"central refused the request ({e.status or 'no answer'}): {e}") from None
    if reply.resigned:
        client.save_state(current_app.instance_path, state)
        lag = reply.clock_offset_s
        click.echo(f"clock offset {lag:+d} s: this node's clock is {abs(lag)} s "
                   f"{'behind' if lag > 0 else 'ahead of'} central's; re-signed with the measured offset")
    server_time = datetime.fromtimestamp(reply.body["server_time"], timezone.utc).isoformat()
    click.echo(f"ok: node {reply.body['node']}, central time {server_time}")


def _transport():
    from booth.sync import client

    state = client.load_state(current_app.instance_path)
    if state is None:
        raise click.ClickException("this node is not enrolled: run `flask --app wsgi sync enroll CENTRAL_URL CODE`")
    return state, client.Transport(state, lambda: clock.now().timestamp(), timeout=current_app.config["SYNC_TIMEOUT_S"])


def _offset_note(offset: int) -> str:
    return (f"clock offset {offset:+d} s: this node's clock is {abs(offset)} s "
            f"{'behind' if offset > 0 else 'ahead of'} central's; requests are signed with the measured offset")


@sync_cli.command("push")
@click.option("--batch", "batch_size", default=None, type=click.IntRange(1, 2000),
              help="Records per request (default: booth.sync.outbox.BATCH).")
@click.option("--json", "as_json", is_flag=True, help="Print the push report as one JSON line.")
def push(batch_size, as_json):
    """Send every record central has not acknowledged yet, in batches, oldest first (resumable)."""
    from booth.sync import client, node

    _need("booth", "push")
    state, transport = _transport()

    def progress(r):
        if not as_json and r.total:
            click.echo(f"\r{r.sent}/{r.total} records sent", nl=False, err=True)

    try:
        report = node.push(db.session, transport, progress=progress,
                           **({"batch_size": batch_size} if batch_size else {}))
    except node.PushFailed as e:
        client.save_state(current_app.instance_path, state)
        raise click.ClickException(f"push stopped after {e.report.sent} of {e.report.total} records: {e}. "
                                   "Run it again: it resumes where it stopped.") from None
    client.save_state(current_app.instance_path, state)
    if as_json:
        click.echo(json.dumps(report.as_dict()))
        return
    click.echo("", err=True)
    if report.clock_offset_s:
        click.echo(_offset_note(report.clock_offset_s))
    click.echo(f"sent {report.sent}, acknowledged {report.acked}, quarantined {report.quarantined}, "
               f"waiting for their parent records {report.deferred}")


@sync_cli.command("pull")
def pull():
    """Fetch central's catalogue and the linkage of this node's referrals."""
    from booth.sync import client, node

    _need("booth", "pull")
    state, transport = _transport()
    try:
        counts = node.pull(db.session, transport)
    except (client.SyncFailed, node.PullError) as e:
        raise click.ClickException(f"pull failed: {e}") from None
    client.save_state(current_app.instance_path, state)
    click.echo(", ".join(f"{k} {v}" for k, v in counts.items()))


@sync_cli.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.option("--offline", is_flag=True, help="Do not ask central: print the last receipt kept here.")
def status(as_json, offline):
    """The reconciliation receipt: per kind, held here, acknowledged, and central's digest of the ids."""
    from booth.sync import client, node

    _need("booth", "status")
    state = client.load_state(current_app.instance_path)
    transport = None if (state is None or offline) else _transport()[1]
    data = node.status(db.session, transport, current_app.instance_path)
    if state is not None and transport is not None:
        client.save_state(current_app.instance_path, state)
    if as_json:
        click.echo(json.dumps(data))
        return
    click.echo(f"event {data['event']['name']} · booth {data['booth']['name']} · node {data['node'] or '-'}")
    if data.get("error"):
        click.echo(f"central not reached: {data['error']} (receipt below is the last one kept)")
    receipt = data.get("receipt")
    if receipt:
        click.echo(f"{'kind':<18} {'held':>7} {'acked':>7} {'central':>7}  digest            match")
        for k in receipt["kinds"]:
            click.echo(f"{k['kind']:<18} {k['held']:>7} {k['acknowledged']:>7} {k['central_count']:>7}  "
                       f"{k['digest'][:16]}  {'yes' if k['match'] else 'NO'}")
        click.echo(f"all match: {'yes' if receipt['match'] else 'NO'} (checked {data['checked_at']})")
    click.echo(f"pending: {sum(data['pending'].values())}")


@sync_cli.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
def export_bundle(file):
    """No network: write a bundle of every unacknowledged record to FILE (signed; only central can read it)."""
    from pathlib import Path

    from booth.instance import write_private
    from booth.sync import node

    _need("booth", "export")
    try:
        blob, n = node.bundle_of_pending(db.session, current_app.instance_path)
    except node.NotEnrolled as e:
        raise click.ClickException(str(e)) from None
    write_private(Path(file), blob)
    click.echo(f"{n} records written to {file}; import it at central with "
               "`flask --app wsgi sync import FILE`, then bring back the receipt "
               "(`flask --app wsgi sync import-receipt RECEIPT`)")


@sync_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--receipt", "receipt_path", default=None, help="Where to write the receipt (default: FILE.receipt).")
def import_bundle(file, receipt_path):
    """Central: apply a booth's bundle (exactly once) and write the receipt file the booth imports."""
    from pathlib import Path

    from booth.instance import write_private
    from booth.sync import bundle, services

    _need("central", "import")
    try:
        node, receipt, counts = services.import_bundle(db.session, db.metadata, Path(file).read_bytes(),
                                                       instance_path=current_app.instance_path, now=clock.now())
    except bundle.BundleError as e:
        db.session.rollback()
        raise click.ClickException(str(e)) from None
    db.session.commit()
    out = Path(receipt_path or file + ".receipt")
    write_private(out, receipt)
    click.echo(f"node {node.name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    click.echo(f"receipt written to {out}; on the booth: flask --app wsgi sync import-receipt {out.name}")


@sync_cli.command("import-receipt")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def import_receipt(file):
    """Booth: mark the records central acknowledged in a bundle's receipt."""
    from pathlib import Path

    from booth.sync import bundle, node

    _need("booth", "import-receipt")
    try:
        counts = node.import_receipt(db.session, current_app.instance_path, Path(file).read_bytes())
    except (node.NotEnrolled, bundle.BundleError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"acknowledged {counts['acked']}, quarantined {counts['quarantined']}, "
               f"waiting for parent records {counts['deferred']}")


@sync_cli.command("purge")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(yes):
    """Delete the visit data central has acknowledged (closed visits only), with secure_delete."""
    from booth.sync import purge as purging

    _need("booth", "purge")
    p = purging.plan(db.session, db.metadata)
    db.session.rollback()
    if not p.visits:
        raise click.ClickException(f"nothing to purge: {p.blocked} closed visits still have records central has "
                                   f"not acknowledged, {p.open_visits} visits are open. Push first.")
    if not yes:
        click.confirm(f"Purge {len(p.visits)} visits that central acknowledged? This cannot be undone here.",
                      abort=True)
    try:
        result = purging.purge(db.session, db.metadata, secret_key=current_app.config["SECRET_KEY"], now=clock.now())
    except purging.PurgeRefused as e:
        db.session.rollback()
        raise click.ClickException(str(e)) from None
    db.session.commit()
    purging.scrub(db.engine)
    click.echo("purged " + ", ".join(f"{k} {v}" for k, v in result["purged"].items()) +
               f"; kept {result['blocked_visits']} visits not fully acknowledged and {result['open_visits']} open")


def register(app) -> None:
    app.cli.add_command(sync_cli)
