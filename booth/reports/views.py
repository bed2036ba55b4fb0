"""The booth dashboard: today's totals for the coordinator, refreshed live by polling.

Exact counts: this view is only for the logged-in coordinator. Its downloads (CSV, PDF, DHIS2, FHIR: today's
booth-day) are suppressed (DOMAIN.md, small-cell suppression; booth/reports/suppression.py) and built by the
pure modules of booth/reports/exports/, which the command line and central call too.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template, request
from flask_babel import gettext as _

from booth.auth.access import role_required
from booth.auth.models import Role
from booth.core.errors import render_error
from booth.extensions import db
from booth.reports import charts, indicators
from booth.workflow import booth_day

bp = Blueprint("reports", __name__)


@bp.app_template_filter("grouped")
def grouped(value) -> str:
    """1234 → "1,234"; 7.25 → "7.3"; None → "—". Mexican Spanish and English group and point alike."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}"


@bp.app_template_filter("share")
def share(value) -> str:
    """0.025 → "2.5%"; None (nothing to divide by) → "—"."""
    return "—" if value is None else f"{value * 100:.1f}%"


@bp.get("/dashboard")
@role_required(Role.COORDINATOR, passive=True)
def dashboard():
    """The full page, or (htmx polling every 30 s) only its partial. Passive: a dashboard left open on a
    tablet does not keep that tablet from locking."""
    bd = booth_day()
    totals = indicators.daily_totals(db.session, booth_id=bd.booth.id, day=bd.today, tz_name=bd.event.timezone,
                                     settings=bd.settings, now=bd.now)
    chart = charts.hourly_chart(
        totals.hours, title=_("Visits and devices per hour"),
        description=_("Bar chart of visits arriving and test devices started in each hour of today (local time); "
                      "the same numbers are in the table next to it."),
        visits_label=_("Visits"), devices_label=_("Devices")) if totals.hours else None
    template = "reports/_dashboard.html" if request.headers.get("HX-Request") else "reports/dashboard.html"
    return render_template(template, bd=bd, t=totals, chart=chart)


def _attachment(body, mimetype: str, name: str) -> Response:
    return Response(body, mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


def _threshold() -> int:
    return int(current_app.config.get("REPORT_SUPPRESSION_THRESHOLD", 10))


def _today_scope():
    """Today's booth-day of this booth, as the exports read it (suppressed tables, names)."""
    from booth.reports.exports import common

    bd = booth_day()
    units = common.units_in_range(db.session, booth_id=bd.booth.id, day=bd.today)
    return bd, common.load(db.session, units, now=bd.now, threshold=_threshold())


@bp.get("/dashboard/export.csv")
@role_required(Role.COORDINATOR)
def export_csv():
    """Today's totals of this booth as a suppressed tidy CSV, under a neutral file name."""
    from booth.reports.exports import csv as csv_export

    bd = booth_day()
    threshold = _threshold()
    units = csv_export.units_in_range(db.session, booth_id=bd.booth.id, day=bd.today)
    rows = csv_export.export_rows(db.session, units, now=bd.now, threshold=threshold)
    name = csv_export.file_name(day=bd.today, today=bd.today)
    return _attachment(csv_export.render(rows, threshold=threshold), "text/csv", name)


@bp.get("/dashboard/export.pdf")
@role_required(Role.COORDINATOR)
def export_pdf():
    """Today's report of this booth (summary, the booth's page, charts), suppressed."""
    from booth.reports.exports import common, pdf

    bd, scope = _today_scope()
    return _attachment(pdf.render(scope), "application/pdf",
                       common.file_name("informe", "pdf", day=bd.today, today=bd.today))


@bp.get("/dashboard/export.dhis2.json")
@role_required(Role.COORDINATOR)
def export_dhis2():
    """Today's totals of this booth as a DHIS2 dataValueSets document (suppressed values left out)."""
    from booth.reports.exports import common, dhis2

    bd, scope = _today_scope()
    try:
        document = dhis2.data_value_set(scope, dhis2.load_mapping(current_app.config.get("REPORT_DHIS2_MAPPING")))
    except dhis2.MappingError as e:
        return render_error(409, str(e))
    return _attachment(dhis2.dumps(document), "application/json",
                       common.file_name("dhis2", "json", day=bd.today, today=bd.today))


@bp.get("/dashboard/export.fhir.json")
@role_required(Role.COORDINATOR)
def export_fhir():
    """Today's totals of this booth as a FHIR R4B Bundle with one MeasureReport."""
    from booth.reports.exports import common, fhir

    bd, scope = _today_scope()
    return _attachment(fhir.render(scope), "application/fhir+json",
                       common.file_name("fhir", "json", day=bd.today, today=bd.today))
