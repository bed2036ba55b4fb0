"""The booth dashboard: today's totals for the coordinator, refreshed live by polling.

Exact counts: this view is only for the logged-in coordinator. Its CSV download is suppressed (DOMAIN.md,
small-cell suppression; booth/reports/suppression.py).
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template, request
from flask_babel import gettext as _

from booth.auth.access import role_required
from booth.auth.models import Role
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


@bp.get("/dashboard/export.csv")
@role_required(Role.COORDINATOR)
def export_csv():
    """Today's totals of this booth as a suppressed tidy CSV, under a neutral file name."""
    from booth.reports.exports import csv as csv_export

    bd = booth_day()
    threshold = int(current_app.config.get("REPORT_SUPPRESSION_THRESHOLD", 10))
    units = csv_export.units_in_range(db.session, booth_id=bd.booth.id, day=bd.today)
    rows = csv_export.export_rows(db.session, units, now=bd.now, threshold=threshold)
    name = csv_export.file_name(day=bd.today, today=bd.today)
    return Response(csv_export.render(rows, threshold=threshold), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
