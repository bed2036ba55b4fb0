"""Central: the exports of the dashboard's filtered range as downloads (coordinators). The same suppressed
booth-day tables as ``flask export …`` (``booth.reports.exports``): the range is the union of the booth-days of
the chosen event (booths linked to it included), booth and dates; the test filter does not apply to exports."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from flask_babel import gettext as _

from booth import clock
from booth.auth.access import role_required
from booth.auth.models import Role
from booth.core.errors import render_error
from booth.extensions import db
from booth.reports import central

bp = Blueprint("central_exports", __name__)
FORMATS = {"csv": ("totales", "csv", "text/csv"), "pdf": ("informe", "pdf", "application/pdf"),
           "dhis2.json": ("dhis2", "json", "application/json"), "fhir.json": ("fhir", "json", "application/fhir+json")}


@bp.get("/central/dashboard/export.<fmt>")
@role_required(Role.COORDINATOR)
def export(fmt):
    from booth.reports.exports import common, csv as csv_export, dhis2, fhir, pdf

    if fmt not in FORMATS:
        return render_error(404)
    try:
        f = central.parse_filters(request.args)
    except central.FilterError:
        return render_error(400, _("The filters could not be read: choose them again on the dashboard."))
    now = clock.now()
    threshold = int(current_app.config.get("REPORT_SUPPRESSION_THRESHOLD", 10))
    units = csv_export.units_in_range(db.session, event_id=f.event_id, booth_id=f.booth_id, date_from=f.date_from,
                                      date_to=f.date_to)
    kind, extension, mimetype = FORMATS[fmt]
    if fmt == "csv":
        body = csv_export.render(csv_export.export_rows(db.session, units, now=now, threshold=threshold),
                                 threshold=threshold)
    else:
        scope = common.load(db.session, units, now=now, threshold=threshold)
        if fmt == "pdf":
            body = pdf.render(scope)
        elif fmt == "fhir.json":
            body = fhir.render(scope)
        else:
            try:
                body = dhis2.render(scope, dhis2.load_mapping(current_app.config.get("REPORT_DHIS2_MAPPING")))
            except dhis2.MappingError as e:
                return render_error(409, str(e))
    name = common.file_name(kind, extension, date_from=f.date_from, date_to=f.date_to, today=now.date())
    return Response(body, mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
