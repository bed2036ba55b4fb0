"""A thin command line over the same services the views use."""
from __future__ import annotations

import json
import secrets
import sys
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from booth import clock
from booth.auth import services as auth
from booth.auth.models import Device, Role, Staff
from booth.errors import DomainError
from booth.db import get_by_id
from booth.extensions import db

staff_cli = AppGroup("staff", help="Staff members: add, list, unlock, disable.")
device_cli = AppGroup("device", help="Enrolled devices (booth): enroll, list, revoke.")


def _fail(e: DomainError):
    db.session.rollback()
    raise click.ClickException(str(e.message))


def _read_secret(from_stdin: bool, prompt: str) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt(prompt, hide_input=True, confirmation_prompt=True)


@staff_cli.command("add")
@click.option("--code", required=True, help="Short staff code, e.g. T07 (no names).")
@click.option("--role", "roles", multiple=True, required=True,
              type=click.Choice([r.value for r in Role]), help="Repeat for several roles.")
@click.option("--alias", default=None, help="Optional display alias (never synced).")
@click.option("--clinical-lead", is_flag=True, help="May sign off clinical settings.")
@click.option("--pin-stdin", is_flag=True, help="Read the PIN from standard input (booth).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (central).")
def staff_add(code, roles, alias, clinical_lead, pin_stdin, password_stdin):
    central = current_app.config["ROLE"] == "central"
    kw = {}
    if central:
        kw["password"] = _read_secret(password_stdin, "Password (at least 12 characters)")
    else:
        kw["pin"] = _read_secret(pin_stdin, "PIN (6 digits)")
    try:
        staff = auth.create_staff(db.session, code=code, roles=roles, alias=alias, clinical_lead=clinical_lead,
                                  now=clock.now(), **kw)
    except DomainError as e:
        _fail(e)
    db.session.commit()
    click.echo(f"added {staff.code} ({', '.join(sorted(r.value for r in staff.roles))})")


@staff_cli.command("list")
@click.option("--json", "as_json", is_flag=True)
def staff_list(as_json):
    now = clock.now()
    rows = db.session.scalars(select(Staff).order_by(Staff.code)).all()
    data = [{"code": s.code, "roles": sorted(r.value for r in s.roles), "clinical_lead": s.clinical_lead,
             "disabled": s.disabled_at is not None, "locked": s.is_locked(now)} for s in rows]
    if as_json:
        click.echo(json.dumps(data))
        return
    for d in data:
        flags = [f for f in ("disabled", "locked", "clinical_lead") if d[f]]
        click.echo(f"{d['code']:<12} {','.join(d['roles']):<32} {' '.join(flags)}")


def _staff_or_fail(code: str) -> Staff:
    staff = auth.staff_by_code(db.session, code)
    if staff is None:
        raise click.ClickException(f"no staff member with code {code!r}")
    return staff


@staff_cli.command("unlock")
@click.argument("code")
def staff_unlock(code):
    auth.unlock_staff(db.session, _staff_or_fail(code), now=clock.now(), actor=None)
    db.session.commit()
    click.echo(f"unlocked {code.upper()}")


@staff_cli.command("disable")
@click.argument("code")
def staff_disable(code):
    try:
        auth.disable_staff(db.session, _staff_or_fail(code), now=clock.now(), actor=None)
    except DomainError as e:
        _fail(e)
    db.session.commit()
    click.echo(f"disabled {code.upper()} (open sessions ended)")


@device_cli.command("enroll")
@click.option("--kind", type=click.Choice(["tablet", "display"]), default="tablet")
@click.option("--base-url", default=None, help="This node's address as tablets reach it.")
def device_enroll(kind, base_url):
    cfg = current_app.config
    row, code = auth.create_enrollment_code(db.session, now=clock.now(), minutes=cfg["ENROLLMENT_CODE_MINUTES"],
                                            actor=None, kind=kind)
    db.session.commit()
    from booth.tls_info import tls_wanted
    scheme = "https" if tls_wanted(cfg["TLS"], cfg["HOST"]) else "http"
    host = cfg["HOST"]
    if host in ("0.0.0.0", "::"):  # listening everywhere: print an address a tablet can open
        from booth.tls import interface_addresses
        lan = sorted(a for a in interface_addresses() if ":" not in a and not a.startswith("127."))
        host = lan[0] if lan else "127.0.0.1"
    base = (base_url or cfg.get("BASE_URL") or f"{scheme}://{host}:{cfg['PORT']}").rstrip("/")
    click.echo(f"{base}/enroll?code={code}")
    click.echo(f"code {code}, valid {cfg['ENROLLMENT_CODE_MINUTES']} minutes", err=True)


@device_cli.command("list")
@click.option("--json", "as_json", is_flag=True)
def device_list(as_json):
    rows = db.session.scalars(select(Device).order_by(Device.created_at)).all()
    data = [{"id": str(d.id), "name": d.name, "kind": d.kind, "created_at": d.created_at.isoformat(),
             "revoked": d.revoked_at is not None} for d in rows]
    if as_json:
        click.echo(json.dumps(data))
        return
    for d in data:
        click.echo(f"{d['id']}  {d['name']:<20} {d['kind']:<8} {'revoked' if d['revoked'] else 'active'}")


@device_cli.command("revoke")
@click.argument("device_id")
def device_revoke(device_id):
    device = get_by_id(db.session, Device, device_id)
    if device is None:
        raise click.ClickException(f"no device with id {device_id!r}")
    try:
        auth.revoke_device(db.session, device, now=clock.now(), actor=None)
    except DomainError as e:
        _fail(e)
    db.session.commit()
    click.echo(f"revoked {device.name}")


DEMO_STAFF = [
    ("C01", [Role.COORDINATOR], True),
    ("T01", [Role.TESTER], False),
    ("T02", [Role.TESTER], False),
    ("K01", [Role.COUNSELOR], False),
    ("K02", [Role.COUNSELOR, Role.TESTER], False),
    ("L01", [Role.CLINIC], False),
]


def random_pin() -> str:
    while True:
        pin = f"{secrets.randbelow(10**6):06d}"
        try:
            return auth.validate_pin(pin)
        except DomainError:
            continue


@click.command("demo")
@click.option("--timezone", "tz", default="America/Mexico_City", show_default=True)
@click.option("--visits", "visits_n", default=800, show_default=True, type=click.IntRange(0, 20000),
              help="Visits of the demo day (10:00–16:00).")
@click.option("--seed", default=1, show_default=True, type=int, help="Same seed → same data.")
@click.option("--open", "open_day", is_flag=True, help="Leave the day open (some visits still in progress).")
@with_appcontext
def demo(tz, visits_n, seed, open_day):
    """Fill an empty booth node with a realistic event, staff and a full day of visits.

    Prints one JSON line with the event, its date and the staff PINs (shown only here)."""
    from booth.events import services as events
    from booth.events.models import Booth

    if current_app.config["ROLE"] != "booth":
        raise click.ClickException("demo fills a booth node; run it without VINCULO_ROLE=central")
    if db.session.scalar(select(Booth.id).limit(1)) is not None:
        raise click.ClickException("this node is already set up; demo needs an empty node")
    now = clock.now()
    day = now.astimezone(ZoneInfo(tz)).date()
    coordinator_pin = random_pin()
    try:
        result = events.first_run_setup(
            db.session, event_name=f"Marcha del Orgullo {day.year} (demo)", event_day=day,
            place="Ciudad de México – Paseo de la Reforma (demo)", timezone=tz, booth_name="Módulo 1 (demo)",
            coordinator_code="C01", pin=coordinator_pin, now=now, device_name=None)
        result.coordinator.clinical_lead = True
        staff = [{"code": "C01", "roles": ["coordinator"], "pin": coordinator_pin}]
        members = {}
        for code, roles, _lead in DEMO_STAFF[1:]:
            pin = random_pin()
            members[code] = auth.create_staff(db.session, code=code, roles=roles, pin=pin, now=now)
            staff.append({"code": code, "roles": [r.value for r in roles], "pin": pin})
        from booth.referrals.services import add_examples, referral_key
        add_examples(db.session, now=now, actor=result.coordinator)
        if visits_n:
            from booth.demo import generate_day
            generate_day(db.session, booth=result.booth, coordinator=result.coordinator,
                         testers=[members["T01"], members["T02"]], counselors=[members["K01"], members["K02"]],
                         visits_n=visits_n, seed=seed, open_day=open_day, now=now,
                         referral_key=referral_key(current_app.instance_path))
    except DomainError as e:
        _fail(e)
    db.session.commit()
    click.echo(json.dumps({"event": str(result.event.id), "date": day.isoformat(), "staff": staff}))


referrals_cli = AppGroup("referrals", help="Referrals of this node: list, reprint a slip.")


@referrals_cli.command("list")
@click.option("--json", "as_json", is_flag=True)
def referrals_list(as_json):
    from booth.referrals import codes
    from booth.referrals import services as referrals
    from booth.referrals.models import Referral

    today = clock.now().date()
    rows = db.session.scalars(select(Referral).order_by(Referral.issued_at)).all()
    data = [{"folio": codes.display(r.folio), "reason": r.reason, "status": referrals.status(r, today),
             "issued_at": r.issued_at.isoformat(), "valid_until": r.valid_until.isoformat()} for r in rows]
    if as_json:
        click.echo(json.dumps(data))
        return
    for d in data:
        click.echo(f"{d['folio']}  {d['reason']:<22} {d['status']:<18} {d['issued_at'][:10]}  → {d['valid_until']}")


@referrals_cli.command("slip")
@click.argument("folio")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, writable=True))
@click.option("--format", "fmt", type=click.Choice(["80mm", "a6"]), default=None)
@click.option("--language", type=click.Choice(["es", "en"]), default="es", show_default=True)
def referrals_slip(folio, out, fmt, language):
    """Reprint a slip (PDF) by its folio."""
    from booth.events.models import Booth
    from booth.referrals import services as referrals
    from booth.referrals import slip_pdf

    ref = referrals.by_folio(db.session, folio)
    if ref is None:
        raise click.ClickException("no referral with that folio (check it and type it again)")
    from booth.visits.models import Visit

    booth = db.session.get(Booth, db.session.get(Visit, ref.visit_id).booth_id)
    base = booth.event.central_base_url or current_app.config.get("BASE_URL") or \
        f"http://{current_app.config['HOST']}:{current_app.config['PORT']}"
    data = referrals.slip_data(ref, base_url=base, key=referrals.referral_key(current_app.instance_path),
                               language=language)
    with open(out, "wb") as fh:
        fh.write(slip_pdf.render(data, fmt or booth.slip_format))
    click.echo(out)


def register(app):
    from booth.backup.cli import backup_cli
    from booth.sync.cli import register as register_sync

    register_sync(app)
    app.cli.add_command(backup_cli)
    app.cli.add_command(referrals_cli)
    app.cli.add_command(staff_cli)
    app.cli.add_command(device_cli)
    app.cli.add_command(demo)
    from booth.reports.cli import export_cli

    app.cli.add_command(export_cli)
