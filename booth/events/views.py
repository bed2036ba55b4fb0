"""First-run setup of a booth node."""
from __future__ import annotations

import uuid
from datetime import date

from flask import Blueprint, current_app, redirect, render_template, url_for
from flask_babel import gettext as _

from booth import clock
from booth.auth import services as auth
from booth.auth.access import public, setup_done
from booth.auth.cookies import set_device_cookie, set_session_cookie
from booth.errors import DomainError
from booth.events import services
from booth.events.forms import SetupForm
from booth.extensions import db
from booth.sync.client import load_state
from booth.sync.node import adopt_central_event, central_event

bp = Blueprint("setup", __name__)


def clock_skew_seconds(form: SetupForm, now) -> int | None:
    try:
        browser_ms = int(form.browser_time_ms.data or "")
    except ValueError:
        return None
    return round(browser_ms / 1000 - now.timestamp())


@bp.route("/setup", methods=["GET", "POST"])
@public("first-run setup of an empty node; closed once setup is done", before_setup=True)
def setup():
    if setup_done():
        return redirect(url_for("core.home"))
    now = clock.now()
    form = SetupForm()
    central = central_event(current_app.instance_path)   # enrolled before setup: the event is central's
    if central is not None:
        form.event_name.data, form.place.data, form.timezone.data = central["name"], central["place"], central["timezone"]
        form.event_day.data = date.fromisoformat(central["day"])
        form.central_base_url.data = load_state(current_app.instance_path).central_base_url
    elif not form.is_submitted():
        form.event_day.data = now.date()
    if not form.is_submitted():
        return render_template("setup/setup.html", form=form, skew=None, central=central)
    if not form.validate():
        return render_template("setup/setup.html", form=form, skew=None, central=central), 422
    skew = clock_skew_seconds(form, now)
    if skew is not None and abs(skew) > current_app.config["CLOCK_SKEW_WARN_SECONDS"] and not form.confirm_clock.data:
        form.form_errors.append(_("This node's clock and this tablet's clock differ by %(minutes)s minutes. "
                                  "Read-window timers and sync depend on the node's clock: fix it, or tick "
                                  "the box below to confirm the node's clock is right.",
                                  minutes=round(abs(skew) / 60, 1)))
        return render_template("setup/setup.html", form=form, skew=skew, central=central), 422
    try:
        result = services.first_run_setup(
            db.session, event_name=form.event_name.data, event_day=form.event_day.data, place=form.place.data,
            timezone=form.timezone.data, booth_name=form.booth_name.data,
            coordinator_code=form.coordinator_code.data, pin=form.pin.data, now=now, clock_skew_s=skew,
            central_base_url=form.central_base_url.data, device_name=_("Tablet %(n)s", n=1),
            event_id=uuid.UUID(central["id"]) if central else None)
        if central is not None:
            adopt_central_event(db.session, result.event.id, int(central.get("version") or 1), now=now)
        _session, token = auth.start_session(db.session, result.coordinator, now=now, device=result.device)
    except DomainError as e:
        db.session.rollback()
        target = getattr(form, e.field, None) if e.field else None
        if target is not None:
            target.errors = list(target.errors) + [str(e.message)]
        else:
            form.form_errors.append(str(e.message))
        return render_template("setup/setup.html", form=form, skew=skew, central=central), 422
    db.session.commit()
    current_app.extensions.setdefault("vinculo", {})["setup_done"] = True
    resp = redirect(url_for("core.home"), code=303)
    set_device_cookie(resp, result.device_token)
    set_session_cookie(resp, token)
    return resp
