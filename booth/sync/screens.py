"""The sync screens: the booth coordinator's (``/sync``: enroll, send with a progress bar, fetch, receipt,
bundle for no network, purge) and the central coordinator's (``/central/sync``: events, nodes and their
one-time codes, links, revocation, quarantine). Thin views over ``booth.sync.node`` and ``services``."""
from __future__ import annotations

from datetime import date, datetime

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _

from booth import clock
from booth.auth.access import current_staff, role_required
from booth.auth.models import Role
from booth.db import get_by_id
from booth.errors import DomainError
from booth.extensions import db

bp = Blueprint("sync", __name__)              # booth
central_bp = Blueprint("sync_admin", __name__)  # central


# ================================================================= booth

def _state():
    from booth.sync import client

    return client.load_state(current_app.instance_path)


def _status():
    """The node's sync status with the receipt's check time as a datetime (shown in the event's time zone)."""
    from booth.sync import node

    data = node.status(db.session, None, current_app.instance_path)
    if data.get("checked_at"):
        data["checked_at"] = datetime.fromisoformat(data["checked_at"])
    return data


def _booth_page(status=200, error=None, notice=None):
    from booth.sync import node, outbox, purge

    state = _state()
    data = _status()
    plan = purge.plan(db.session, db.metadata)
    db.session.rollback()
    return render_template("sync/booth.html", state=state, data=data, progress=node.progress_of(current_app).snapshot(),
                           pending_total=sum(data["pending"].values()), plan=plan, error=error, notice=notice,
                           kinds=[k.name for k in outbox.R.KINDS]), status


@bp.get("/sync")
@role_required(Role.COORDINATOR)
def index():
    return _booth_page()


@bp.post("/sync/enroll")
@role_required(Role.COORDINATOR)
def enroll():
    from booth.sync import node

    try:
        node.enroll(db.session, central_url=request.form.get("central_url", ""), code=request.form.get("code", ""),
                    node_id=None, instance_path=current_app.instance_path, timeout=current_app.config["SYNC_TIMEOUT_S"])
    except node.EnrollFailed as e:
        db.session.rollback()
        return _booth_page(422, error=str(e))
    return redirect(url_for("sync.index"), code=303)


def _need_enrolled():
    if _state() is None:
        return _booth_page(409, error=_("This node is not enrolled with a central server yet."))
    return None


@bp.post("/sync/push")
@role_required(Role.COORDINATOR)
def push():
    from booth.sync import node

    refused = _need_enrolled()
    if refused:
        return refused
    if not node.start_push(current_app._get_current_object()):
        return _booth_page(409, error=_("A send is already running."))
    return redirect(url_for("sync.index"), code=303)


@bp.get("/sync/progress")
@role_required(Role.COORDINATOR, passive=True)
def progress():
    from booth.sync import node

    return render_template("sync/_progress.html", progress=node.progress_of(current_app).snapshot())


@bp.post("/sync/pull")
@role_required(Role.COORDINATOR)
def pull():
    from booth.sync import client, node

    refused = _need_enrolled()
    if refused:
        return refused
    state = _state()
    transport = client.Transport(state, lambda: clock.now().timestamp(), timeout=current_app.config["SYNC_TIMEOUT_S"])
    try:
        counts = node.pull(db.session, transport)
    except (client.SyncFailed, node.PullError) as e:
        db.session.rollback()
        return _booth_page(502, error=_("Central could not be reached or refused: %(why)s", why=str(e)))
    client.save_state(current_app.instance_path, state)
    return _booth_page(notice=_("Fetched from central: %(n)s records updated.", n=sum(counts.values())))


@bp.post("/sync/receipt")
@role_required(Role.COORDINATOR)
def check_receipt():
    from booth.sync import client, node

    refused = _need_enrolled()
    if refused:
        return refused
    state = _state()
    transport = client.Transport(state, lambda: clock.now().timestamp(), timeout=current_app.config["SYNC_TIMEOUT_S"])
    data = node.status(db.session, transport, current_app.instance_path)
    client.save_state(current_app.instance_path, state)
    if data.get("error"):
        return _booth_page(502, error=_("Central could not be reached or refused: %(why)s", why=data["error"]))
    return redirect(url_for("sync.receipt"), code=303)


@bp.get("/sync/receipt")
@role_required(Role.COORDINATOR)
def receipt():
    """The last receipt, on a page made for printing."""
    return render_template("sync/receipt.html", data=_status())


@bp.post("/sync/bundle")
@role_required(Role.COORDINATOR)
def bundle():
    """No network: download a bundle of every unacknowledged record (only central can read it)."""
    from booth.sync import node

    try:
        blob, _n = node.bundle_of_pending(db.session, current_app.instance_path)
    except node.NotEnrolled:
        return _booth_page(409, error=_("This node is not enrolled with a central server yet."))
    name = f"vinculo-envio-{clock.now().strftime('%Y%m%d-%H%M')}.bundle"
    return Response(blob, mimetype="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.post("/sync/bundle-receipt")
@role_required(Role.COORDINATOR)
def bundle_receipt():
    from booth.sync import bundle as bundles, node

    upload = request.files.get("receipt")
    if _state() is None:
        return _booth_page(409, error=_("This node is not enrolled with a central server yet."))
    if upload is None or not upload.filename:
        return _booth_page(422, error=_("Choose the receipt file central wrote."))
    try:
        counts = node.import_receipt(db.session, current_app.instance_path, upload.read(100_000_000))
    except (bundles.BundleError, ValueError):
        db.session.rollback()
        return _booth_page(422, error=_("This file is not a receipt of this node, or it was modified: refused."))
    return _booth_page(notice=_("Receipt imported: %(n)s records acknowledged.", n=counts["acked"]))


@bp.post("/sync/purge")
@role_required(Role.COORDINATOR)
def purge():
    from booth.sync import purge as purging

    if request.form.get("confirm") != "yes":
        return _booth_page(422, error=_("Tick the box to confirm the purge."))
    try:
        result = purging.purge(db.session, db.metadata, secret_key=current_app.config["SECRET_KEY"], now=clock.now(),
                               actor=current_staff())
    except purging.PurgeRefused:
        db.session.rollback()
        return _booth_page(409, error=_("Some audit entries have not reached central yet: send first, then purge."))
    db.session.commit()
    purging.scrub(db.engine)
    return _booth_page(notice=_("Purged %(n)s visits that central had acknowledged.", n=result["purged"]["visit"]))


# ================================================================= central

def _central_page(status=200, error=None, issued=None):
    from booth.events.models import Event
    from booth.sync import queries, services

    from booth.sync.models import SyncRecord

    pushed = db.session.query(SyncRecord.record_id).filter(SyncRecord.kind == "event")
    events = (db.session.query(Event).filter(Event.central_event_id.is_(None), Event.id.not_in(pushed))
              .order_by(Event.day.desc()).all())   # central's own events: the ones nodes are linked to
    return render_template("sync/central.html", nodes=queries.nodes(db.session), events=events,
                           quarantine=services.open_quarantine(db.session), error=error, issued=issued,
                           timezones=("America/Mexico_City", "America/Monterrey", "America/Tijuana", "America/Cancun",
                                      "UTC")), status


@central_bp.get("/central/sync")
@role_required(Role.COORDINATOR)
def central_index():
    return _central_page()


@central_bp.post("/central/events")
@role_required(Role.COORDINATOR)
def create_event():
    from booth.events import services as events

    try:
        day = date.fromisoformat(request.form.get("day", ""))
    except ValueError:
        return _central_page(422, error=_("Enter the date of the event."))
    try:
        events.create_event(db.session, name=request.form.get("name", ""), day=day,
                            place=request.form.get("place", ""), timezone=request.form.get("timezone", ""),
                            now=clock.now())
    except DomainError as e:
        db.session.rollback()
        return _central_page(422, error=str(e.message))
    db.session.commit()
    return redirect(url_for("sync_admin.central_index"), code=303)


@central_bp.post("/central/nodes")
@role_required(Role.COORDINATOR)
def register_node():
    from booth.events.models import Event
    from booth.sync import services

    event = get_by_id(db.session, Event, request.form.get("event")) if request.form.get("event") else None
    if request.form.get("event") and event is None:
        return _central_page(422, error=_("Choose an event from the list."))
    try:
        node, code = services.register_node(db.session, name=request.form.get("name", ""), event=event,
                                            now=clock.now(), actor=current_staff())
    except services.SyncError:
        db.session.rollback()
        return _central_page(422, error=_("Give the node a name of at most 80 characters."))
    db.session.commit()
    # shown once, on this answer only (never in a URL or a log)
    return _central_page(issued={"node": node, "code": code, "minutes": services.CODE_MINUTES})


@central_bp.post("/central/nodes/<node_id>/link")
@role_required(Role.COORDINATOR)
def link_node(node_id):
    from booth.events.models import Event
    from booth.sync import queries, services

    node = queries.node(db.session, node_id)
    event = get_by_id(db.session, Event, request.form.get("event"))
    if node is None:
        return _central_page(404, error=_("No such node."))
    if event is None:
        return _central_page(422, error=_("Choose an event from the list."))
    services.link_node(db.session, db.metadata, node, event, now=clock.now(), actor=current_staff())
    db.session.commit()
    return redirect(url_for("sync_admin.central_index"), code=303)


@central_bp.post("/central/nodes/<node_id>/revoke")
@role_required(Role.COORDINATOR)
def revoke_node(node_id):
    from booth.sync import queries, services

    node = queries.node(db.session, node_id)
    if node is None:
        return _central_page(404, error=_("No such node."))
    if request.form.get("confirm") != "yes":
        return _central_page(422, error=_("Tick the box to confirm the revocation."))
    services.revoke_node(db.session, node, now=clock.now(), actor=current_staff())
    db.session.commit()
    return redirect(url_for("sync_admin.central_index"), code=303)


@central_bp.post("/central/quarantine/<entry_id>")
@role_required(Role.COORDINATOR)
def resolve(entry_id):
    from booth.sync import services
    from booth.sync.models import SyncQuarantine

    entry = get_by_id(db.session, SyncQuarantine, entry_id)
    if entry is None:
        return _central_page(404, error=_("No such quarantine entry."))
    try:
        services.resolve_quarantine(db.session, db.metadata, entry, action=request.form.get("action", ""),
                                    now=clock.now(), actor=current_staff())
    except services.SyncError as e:
        db.session.rollback()
        messages = {"resolved": _("This entry is already resolved."), "bad_action": _("Choose apply or keep."),
                    "not_applicable": _("Only a conflict with this node's own record can be applied.")}
        return _central_page(e.status, error=messages.get(e.error, e.message))
    db.session.commit()
    return redirect(url_for("sync_admin.central_index"), code=303)
