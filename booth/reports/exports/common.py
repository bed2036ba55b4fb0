"""What every export shares: the units of a range with their names, the published table of a union of units,
labels and neutral file names.

No ``request`` here or in any export module: the booth dashboard, the command line and (later) the central
dashboard call them alike. Every number an export writes comes from ``publish`` — the union of whole
suppressed units (docs/ARCHITECTURE.md, "Small-cell suppression") — never from ``daily_totals`` directly.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Sequence

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from booth import labels
from booth.events.models import Booth, Event
from booth.reports import suppression as sup
from booth.reports.exports import csv as tables
from booth.reports.exports.csv import Unit, UnitTables, units_in_range  # noqa: F401  (re-exported)
from booth.visits.models import DayClosure


@dataclass(frozen=True)
class BoothInfo:
    booth_id: object
    name: str
    event_id: object
    event_name: str


@dataclass
class Scope:
    """The units of one export (in order), each unit's exact tables, and what the pages need to name them."""
    units: list[Unit]
    tables: list[UnitTables]
    booths: dict                 # booth id → BoothInfo
    closed: set                  # (booth id, day) with a close of day
    now: datetime
    threshold: int

    def published(self, indices: Sequence[int] | None = None) -> dict:
        """(indicator, disaggregation) → published value of the union of these units (all by default)."""
        chosen = self.tables if indices is None else [self.tables[i] for i in indices]
        return publish(chosen, threshold=self.threshold)

    def days(self, indices: Sequence[int] | None = None) -> list[date]:
        chosen = self.units if indices is None else [self.units[i] for i in indices]
        return sorted({u.day for u in chosen})

    def by_booth(self) -> dict:
        """booth id → the indices of its units, in the order the booths first appear."""
        out: dict = {}
        for i, u in enumerate(self.units):
            out.setdefault(u.booth_id, []).append(i)
        return out


def load(session, units: Sequence[Unit], *, now: datetime, threshold: int) -> Scope:
    units = list(units)
    booth_ids = {u.booth_id for u in units}
    booths = {}
    if booth_ids:
        # at central: a booth's event counts under the central event its node is linked to, and the booth is
        # named with its node (two demo booths may both be "Módulo 1"); on a booth both joins find nothing
        from sqlalchemy import func
        from sqlalchemy.orm import aliased

        from booth.sync.models import SyncNode, SyncRecord

        linked = aliased(Event)
        rows = session.execute(
            select(Booth.id, Booth.name, Event.id, func.coalesce(linked.name, Event.name), SyncNode.name)
            .join(Event, Event.id == Booth.event_id)
            .outerjoin(linked, linked.id == Event.central_event_id)
            .outerjoin(SyncRecord, (SyncRecord.kind == "booth") & (SyncRecord.record_id == Booth.id))
            .outerjoin(SyncNode, SyncNode.id == SyncRecord.node_id)
            .where(Booth.id.in_(booth_ids)))
        for booth_id, name, event_id, event_name, node_name in rows:
            if node_name and node_name != name:
                name = f"{name} · {node_name}"
            booths[booth_id] = BoothInfo(booth_id, name, event_id, event_name)
    wanted = {(u.booth_id, u.day) for u in units}
    closed = set()
    if units:
        closed = {(b, d) for b, d in session.execute(select(DayClosure.booth_id, DayClosure.day).where(
            DayClosure.booth_id.in_(booth_ids), DayClosure.day >= min(u.day for u in units),
            DayClosure.day <= max(u.day for u in units)))} & wanted
    return Scope(units, tables.tables_of(session, units, now=now), booths, closed, now, threshold)


def publish(unit_tables: Sequence[UnitTables], *, threshold: int) -> dict:
    """(indicator, disaggregation) → value (int, float rate, ``SMALL``, ``HIDDEN`` or None), in the CSV's order."""
    if not unit_tables:
        return {}
    return {(indicator, disaggregation): value
            for indicator, disaggregation, value in tables.published_rows(list(unit_tables), threshold=threshold)}


def is_rate(indicator: str) -> bool:
    return indicator.endswith(("_share", ".positivity"))


# ---------------------------------------------------------------- labels (translated when rendered)

INDICATORS = {
    "visits": _l("Visits"), "people_tested": _l("People tested"), "people_with_result": _l("With a result"),
    "people_reactive": _l("Reactive (any test)"), "referrals": _l("Referrals"),
    "first_time": _l("First-time testers"), "last_test_over_12m": _l("Last test more than 12 months ago"),
    "known_positive": _l("Already knew they were HIV positive"),
    "exposure_72h": _l("Exposure in the last 72 hours"), "pre_counseling": _l("Pre-test counseling"),
    "post_counseling": _l("Post-test counseling"),
    "result_and_post_counseling": _l("Received result and post-test counseling"),
    "prep_interest": _l("Interested in PrEP"), "pep_need": _l("Needing PEP"),
    "devices.used": _l("Devices used"), "devices.invalid": _l("Invalid"),
    "devices.invalid_timing": _l("Invalid because read too early or too late"),
    "devices.repeats": _l("Repeats after an invalid device"),
    "first_time_share": _l("Share of first-time testers"),
}
PER_DISEASE = {
    "tested": _l("Tested (at least one device)"), "non_reactive": _l("Non-reactive"), "reactive": _l("Reactive"),
    "discordant": _l("Discordant: needs a laboratory test"), "unresolved": _l("Invalid, not resolved"),
    "in_progress": _l("In progress"), "other": _l("Other"), "consented": _l("Consented"), "refused": _l("Refused"),
    "known_positive_tested": _l("Known HIV positive, tested anyway (left out of positivity)"),
    "positivity": _l("Positivity (reactive / with a result)"),
}
DIMENSIONS = {
    "final_state": _l("How the visit ended"), "age_band": _l("By age band"),
    "gender_identity": _l("By gender identity"), "beneficiary": _l("By social-security status"),
    "key_population": _l("By key population"), "reason": _l("Referrals by reason"),
    "destination": _l("Referrals by destination"),
}
EXTRA_VALUES = {"unknown": _l("Not recorded"), "not_asked": _l("Not asked"), "none": _l("None of them"),
                "open": _l("Still open"), "other": _l("Other")}
VALUES = {"final_state": labels.FINAL_STATES, "age_band": labels.AGE_BANDS, "gender_identity": labels.GENDERS,
          "beneficiary": labels.BENEFICIARY, "key_population": labels.KEY_POPULATIONS, "reason": labels.REASONS}


def indicator_label(indicator: str) -> str:
    if indicator in INDICATORS:
        return str(INDICATORS[indicator])
    disease, _, measure = indicator.partition(".")
    if disease in labels.DISEASES and measure in PER_DISEASE:
        return f"{labels.DISEASES[disease]}: {PER_DISEASE[measure]}"
    return indicator


def value_label(dimension: str, value: str) -> str:
    """A disaggregation value in words ("trans_woman" → "Mujer trans"); destinations are names already."""
    known = VALUES.get(dimension, {})
    if value in known:
        return str(known[value])
    if value in EXTRA_VALUES:
        return str(EXTRA_VALUES[value])
    return value


def split(disaggregation: str) -> tuple[str, str] | None:
    """"age_band=20-24" → ("age_band", "20-24"); "total" → None."""
    if disaggregation == "total":
        return None
    dimension, _, value = disaggregation.partition("=")
    return dimension, value


def text(value, *, threshold: int) -> str:
    """A published value as the exports write it: "1,234", "<10", blank (hidden), a rate as "12.3%"."""
    if value is sup.SMALL:
        return f"<{threshold}"
    if value is sup.HIDDEN or value is None:
        return ""
    if isinstance(value, float):
        return f"{value * 100:.1f}%"
    return f"{value:,}"


# ---------------------------------------------------------------- file names

def file_name(kind: str, extension: str, *, day: date | None = None, date_from: date | None = None,
              date_to: date | None = None, today: date) -> str:
    """A neutral name ("vinculo-informe-2026-06-27.pdf"): nothing about HIV, results or people in it."""
    if day is not None:
        stamp = day.isoformat()
    elif date_from or date_to:
        stamp = f"{date_from or 'inicio'}-a-{(date_to or today).isoformat()}"
    else:
        stamp = today.isoformat()
    return f"vinculo-{kind}-{stamp}.{extension}"
