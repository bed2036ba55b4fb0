"""``flask export csv|pdf|dhis2|fhir --out FILE [--event ID] [--date D | --from D --to D]``: suppressed exports.

Without ``--event`` and a date: every event and day the node holds."""
from __future__ import annotations

import functools

import click
from flask import current_app
from flask.cli import AppGroup

from booth import clock
from booth.db import get_by_id
from booth.events.models import Event
from booth.extensions import db

export_cli = AppGroup("export", help="Suppressed exports of the daily totals (no count 1–9 leaves the node).")


def threshold() -> int:
    return int(current_app.config.get("REPORT_SUPPRESSION_THRESHOLD", 10))


def range_options(command):
    """--out, --event, --date, --from, --to; the command receives ``out`` and ``units`` (the booth-days)."""
    @click.option("--out", "out", required=True, type=click.Path(dir_okay=False, writable=True))
    @click.option("--event", "event_id", default=None, help="Only this event (id); default every event.")
    @click.option("--date", "day", default=None, type=click.DateTime(["%Y-%m-%d"]), help="Only this day.")
    @click.option("--from", "date_from", default=None, type=click.DateTime(["%Y-%m-%d"]), help="First day.")
    @click.option("--to", "date_to", default=None, type=click.DateTime(["%Y-%m-%d"]), help="Last day.")
    @functools.wraps(command)
    def wrapper(out, event_id, day, date_from, date_to, **kwargs):
        from booth.reports.exports import csv as csv_export

        if day and (date_from or date_to):
            raise click.UsageError("use --date or --from/--to, not both")
        day, date_from, date_to = (d.date() if d else None for d in (day, date_from, date_to))
        if date_from and date_to and date_from > date_to:
            raise click.UsageError("--from is after --to")
        event = None
        if event_id is not None:
            event = get_by_id(db.session, Event, event_id)
            if event is None:
                raise click.ClickException(f"no event with id {event_id!r}")
        units = csv_export.units_in_range(db.session, event_id=event and event.id, day=day, date_from=date_from,
                                          date_to=date_to)
        return command(out=out, units=units, **kwargs)
    return wrapper


def _scope(units):
    from booth.reports.exports import common

    return common.load(db.session, units, now=clock.now(), threshold=threshold())


@export_cli.command("csv")
@range_options
def export_csv(out, units):
    """One tidy table (indicator, disaggregation, value) of every booth and day in range, suppressed."""
    from booth.reports.exports import csv as csv_export

    rows = csv_export.export_rows(db.session, units, now=clock.now(), threshold=threshold())
    with open(out, "w", encoding="utf-8", newline="") as fh:
        fh.write(csv_export.render(rows, threshold=threshold()))
    click.echo(f"{out}: {len(units)} booth-days, {len(rows)} rows")


@export_cli.command("pdf")
@range_options
def export_pdf(out, units):
    """A report: a summary page, one page per booth, charts; suppressed."""
    from booth.reports.exports import pdf

    body = pdf.render(_scope(units))
    with open(out, "wb") as fh:
        fh.write(body)
    click.echo(f"{out}: {len(units)} booth-days, {len(body):,} bytes")


@export_cli.command("dhis2")
@range_options
@click.option("--mapping", "mapping_path", default=None, type=click.Path(dir_okay=False, exists=True),
              help="The DHIS2 mapping (JSON); default REPORT_DHIS2_MAPPING, else the shipped example.")
def export_dhis2(out, units, mapping_path):
    """A DHIS2 dataValueSets JSON; suppressed values are left out and listed in its note."""
    from booth.reports.exports import dhis2

    try:
        mapping = dhis2.load_mapping(mapping_path or current_app.config.get("REPORT_DHIS2_MAPPING"))
        document = dhis2.data_value_set(_scope(units), mapping)
    except dhis2.MappingError as e:
        raise click.ClickException(str(e)) from e
    if mapping.source == dhis2.EXAMPLE.name:
        click.echo("note: the example mapping (placeholder ids) was used; set REPORT_DHIS2_MAPPING", err=True)
    with open(out, "w", encoding="utf-8") as fh:
        fh.write(dhis2.dumps(document))
    click.echo(f"{out}: {len(units)} booth-days, {len(document['dataValues'])} values, "
               f"{len(document['note']['suppressed'])} suppressed (not sent)")


@export_cli.command("fhir")
@range_options
def export_fhir(out, units):
    """A FHIR R4B Bundle of MeasureReports (one per booth and day), validated; masked counts carry
    data-absent-reason."""
    from booth.reports.exports import fhir

    body = fhir.render(_scope(units))
    with open(out, "w", encoding="utf-8") as fh:
        fh.write(body)
    click.echo(f"{out}: {len(units)} booth-days (MeasureReports)")
