"""``flask export FORMAT --out FILE [--event ID] [--date D | --from D --to D]``: suppressed exports."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from booth import clock
from booth.events.models import Event
from booth.db import get_by_id
from booth.extensions import db

export_cli = AppGroup("export", help="Suppressed exports of the daily totals (no count 1–9 leaves the node).")


def threshold() -> int:
    return int(current_app.config.get("REPORT_SUPPRESSION_THRESHOLD", 10))


@export_cli.command("csv")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, writable=True))
@click.option("--event", "event_id", default=None, help="Only this event (id); default every event.")
@click.option("--date", "day", default=None, type=click.DateTime(["%Y-%m-%d"]), help="Only this day.")
@click.option("--from", "date_from", default=None, type=click.DateTime(["%Y-%m-%d"]), help="First day.")
@click.option("--to", "date_to", default=None, type=click.DateTime(["%Y-%m-%d"]), help="Last day.")
def export_csv(out, event_id, day, date_from, date_to):
    """One tidy table (indicator, disaggregation, value) of every booth and day in range, suppressed."""
    from booth.reports.exports import csv as csv_export

    if day and (date_from or date_to):
        raise click.UsageError("use --date or --from/--to, not both")
    day, date_from, date_to = (d.date() if d else None for d in (day, date_from, date_to))
    if date_from and date_to and date_from > date_to:
        raise click.UsageError("--from is after --to")
    if event_id is not None and get_by_id(db.session, Event, event_id) is None:
        raise click.ClickException(f"no event with id {event_id!r}")
    units = csv_export.units_in_range(db.session, event_id=event_id and get_by_id(db.session, Event, event_id).id,
                                      day=day, date_from=date_from, date_to=date_to)
    rows = csv_export.export_rows(db.session, units, now=clock.now(), threshold=threshold())
    with open(out, "w", encoding="utf-8", newline="") as fh:
        fh.write(csv_export.render(rows, threshold=threshold()))
    click.echo(f"{out}: {len(units)} booth-days, {len(rows)} rows")
