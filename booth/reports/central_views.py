"""The central dashboard (coordinators, central server only): every booth and event that sync brought in.

- ``GET /central/dashboard``: exact counts, for the signed-in coordinator only;
- ``GET /central/dashboard/shareable``: the same filters, suppressed like the exports (``<10``, blank
  complements; booth/reports/suppression.py), meant for printing and sharing.

Filters live in the query string (``event``, ``booth``, ``from``, ``to``, ``disease``): aggregate filters
only, never a visit or a referral. The numbers come from ``booth.reports.central``; this module parses,
calls it, draws the charts and renders.
"""
from __future__ import annotations

import click
from flask import Blueprint, current_app, render_template, request
from flask_babel import gettext as _

from booth import clock, labels
from booth.auth.access import role_required
from booth.auth.models import Role
from booth.extensions import db
from booth.reports import central, charts
from booth.reports import suppression as sup
from booth.reports.exports import common
from booth.reports.views import grouped, share

bp = Blueprint("central_reports", __name__, cli_group="central-reports")
# the booth dashboard's number filters ("1,234", "2.5%"): its blueprint is not registered at central
bp.add_app_template_filter(grouped, "grouped")
bp.add_app_template_filter(share, "share")


def stage_labels() -> dict:
    return {"tested": _("Tested"), "reactive": _("Reactive or discordant"), "referred": _("Referred"),
            "arrived": _("Arrived at the clinic"), "confirmed": _("Diagnosis confirmed"),
            "treated": _("Treatment started")}


def bin_labels() -> dict:
    return {"le14": _("≤ 14 days"), "15to28": _("15–28 days"), "gt28": _("> 28 days")}


def _threshold() -> int:
    return int(current_app.config.get("REPORT_SUPPRESSION_THRESHOLD", 10))


def _filters():
    """(filters, None) or (empty filters, the field that could not be read)."""
    try:
        return central.parse_filters(request.args), None
    except central.FilterError as e:
        return central.Filters(), e.field


def _form_context(f, bad_field):
    events, booths = central.options(db.session)
    return {"f": f, "bad_field": bad_field, "events": events, "booths": booths, "diseases": central.DISEASES,
            "disease_names": disease_names(), "pending": 0 if bad_field else central.pending_units(db.session, f)}


@bp.get("/central/dashboard")
@role_required(Role.COORDINATOR)
def dashboard():
    """Exact counts across booths and events (the signed-in coordinator's view)."""
    f, bad = _filters()
    ctx = _form_context(f, bad)
    if bad:
        return render_template("reports/central.html", r=None, **ctx), 400
    r = central.exact(db.session, f, now=clock.now())
    names = central.names(db.session, [b.booth_id for b in r.per_booth])
    return render_template("reports/central.html", r=r, names=names, charts=_exact_charts(r), stages=stage_labels(),
                           bins=bin_labels(), **ctx)


def disease_names() -> dict:
    return {d: str(labels.DISEASES[d]) for d in central.DISEASES}


@bp.get("/central/dashboard/shareable")
@role_required(Role.COORDINATOR)
def shareable():
    """The same filters, suppressed as every export is: for printing and sharing."""
    f, bad = _filters()
    ctx = _form_context(f, bad)
    threshold = _threshold()
    if bad:
        return render_template("reports/central_share.html", r=None, threshold=threshold, **ctx), 400
    r = central.shared(db.session, f, threshold=threshold)
    names = central.names(db.session, [b for b, _v, _t in r.per_booth])
    return render_template("reports/central_share.html", r=r, names=names, threshold=threshold,
                           charts=_shared_charts(r), stages=stage_labels(), bins=bin_labels(),
                           **_published_helpers(r), **ctx)


def _published_helpers(r: central.SharedReport) -> dict:
    """How the template writes published values: "1,234", "<10", blank (hidden), "12.3%"."""
    def ptext(value) -> str:
        return common.text(value, threshold=r.threshold)

    def pv(indicator: str, disaggregation: str = "total") -> str:
        key = (indicator, disaggregation)
        return ptext(r.published[key]) if key in r.published else "—"

    def split_values(measure: str, dimension: str) -> list[str]:
        prefix = dimension + "="
        return [dis[len(prefix):] for ind, dis in r.published if ind == measure and dis.startswith(prefix)]

    return {"ptext": ptext, "pv": pv, "split_values": split_values, "label": common.indicator_label,
            "vlabel": common.value_label, "dim_label": lambda d: str(common.DIMENSIONS.get(d, d))}


# ---------------------------------------------------------------- charts (SVG drawn here, tables in the page)

def _exact_charts(r: central.Report) -> dict:
    out = {}
    if r.per_day:
        out["days"] = charts.bar_chart(
            [d.day.isoformat() for d in r.per_day],
            [charts.Series(_("Visits"), [d.visits for d in r.per_day]),
             charts.Series(_("People tested"), [d.tested for d in r.per_day])],
            title=_("Visits and people tested per day"),
            description=_("Bar chart of visits and people tested on each day in the filter, all booths in the "
                          "filter together; the same numbers are in the table next to it."), chart_id="chart-days")
    if r.cascades and r.totals.visits:
        stages = stage_labels()
        out["cascade"] = charts.hbar_chart(
            [stages[s] for s in central.STAGES],
            [charts.Series(str(labels.DISEASES[c.disease]), [c.stage(s) for s in central.STAGES]) for c in r.cascades],
            title=_("Linkage cascade"),
            description=_("Bar chart of the linkage cascade per test: tested, reactive or discordant, referred, "
                          "arrived, confirmed, treatment started; the same numbers are in the table next to it."),
            chart_id="chart-cascade")
        bins = bin_labels()
        arrival = [r.bins("arrival")[b] for b in central.BINS]
        treatment = [r.bins("treatment")[b] for b in central.BINS]
        if any(arrival) or any(treatment):
            out["bins"] = charts.bar_chart(
                [bins[b] for b in central.BINS],
                [charts.Series(_("Arrival"), arrival), charts.Series(_("Treatment started"), treatment)],
                title=_("Days from the test to arrival and to treatment"),
                description=_("Bar chart of referrals for confirmation by days from the test to arrival at the "
                              "clinic and to the start of treatment; the same numbers are in the table next to it."),
                chart_id="chart-bins")
    if r.totals.hours:
        out["hours"] = charts.hourly_chart(
            r.totals.hours, title=_("Visits and devices per hour of the day"),
            description=_("Bar chart of visits arriving and test devices started in each local hour, all days in "
                          "the filter together; the same numbers are in the table next to it."),
            visits_label=_("Visits"), devices_label=_("Devices"), chart_id="chart-hours")
    return out


def _shared_charts(r: central.SharedReport) -> dict:
    """Only charts whose every value is a published number: a bar is never drawn for a hidden or ``<10`` value
    (the table says what is published)."""
    out = {}
    if r.per_day and all(sup.is_number(v) and sup.is_number(t) for _d, v, t in r.per_day):
        out["days"] = charts.bar_chart(
            [d.isoformat() for d, _v, _t in r.per_day],
            [charts.Series(_("Visits"), [v for _d, v, _t in r.per_day]),
             charts.Series(_("People tested"), [t for _d, _v, t in r.per_day])],
            title=_("Visits and people tested per day"),
            description=_("Bar chart of visits and people tested on each day in the filter, all booths in the "
                          "filter together; the same numbers are in the table next to it."), chart_id="chart-days")
    if r.cascades and all(sup.is_number(v) for c in r.cascades for v in c.stages.values()):
        stages = stage_labels()
        out["cascade"] = charts.hbar_chart(
            [stages[s] for s in central.STAGES],
            [charts.Series(str(labels.DISEASES[c.disease]), [c.stages[s] for s in central.STAGES]) for c in r.cascades],
            title=_("Linkage cascade"),
            description=_("Bar chart of the linkage cascade per test: tested, reactive or discordant, referred, "
                          "arrived, confirmed, treatment started; the same numbers are in the table next to it."),
            chart_id="chart-cascade")
    return out


# ---------------------------------------------------------------- command line (central only)

@bp.cli.command("rebuild")
@click.option("--stale", is_flag=True, help="Only booth-days whose summary is missing or older than this version.")
def rebuild(stale):
    """Recompute the central dashboard's summary of every booth-day (after an upgrade)."""
    conn = db.session.connection()
    n = central.refresh_all(conn, now=clock.now(), only_stale=stale)
    db.session.commit()
    click.echo(_("%(n)s booth-days recomputed.", n=n))
