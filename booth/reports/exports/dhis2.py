"""The DHIS2 export: a ``dataValueSets`` JSON of the suppressed daily totals (POST /api/dataValueSets).

It uses DHIS2's bulk form: ``period`` and ``orgUnit`` on each data value, so one file holds every booth and
day of the range. The period is the day (``YYYYMMDD``, DHIS2's daily period); the org unit comes from the
mapping, per booth or per event. The values of one (org unit, day) are the union of the suppressed units
(booth days) that map there — one booth's day, or every booth of an event when the event is the org unit —
so, like every export, they are sums of whole suppressed units (docs/ARCHITECTURE.md).

Which of our (indicator, disaggregation) rows go to which data element and category option combo is not in
the code: it is a JSON mapping (``REPORT_DHIS2_MAPPING``; the example beside this module, with placeholder
ids, is used when it is unset — ``dhis2_mapping.example.json`` says how to write one). Rows the mapping does
not name are not sent (listed in the note); rates are never sent (DHIS2 computes indicators from counts).

A suppressed value — ``<10`` or hidden — is **left out** of ``dataValues`` (never sent as a number, a ``0``
or a text) and listed in the export's ``note`` with the reason. ``note`` is Vínculo's own member: DHIS2's
format has no place for it. Values are strings, as in DHIS2's examples.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from flask_babel import gettext as _

from booth.reports import suppression as sup
from booth.reports.exports.common import BoothInfo, Scope, is_rate

UID = re.compile(r"^[A-Za-z][A-Za-z0-9]{10}$")
EXAMPLE = Path(__file__).with_name("dhis2_mapping.example.json")


class MappingError(ValueError):
    """The mapping file is missing, unreadable or names something that is not a DHIS2 id."""


@dataclass
class Mapping:
    source: str                                       # the file's name (not its path)
    data_set: str | None = None
    attribute_option_combo: str | None = None
    booths: dict = field(default_factory=dict)        # booth id or name → org unit
    events: dict = field(default_factory=dict)        # event id or name → org unit
    default_org_unit: str | None = None
    elements: dict = field(default_factory=dict)      # (indicator, disaggregation) → (data element, coc or None)

    def org_unit(self, info: BoothInfo) -> str:
        for table, keys in ((self.booths, (str(info.booth_id), info.name)),
                            (self.events, (str(info.event_id), info.event_name))):
            for key in keys:
                if key in table:
                    return table[key]
        if self.default_org_unit:
            return self.default_org_unit
        raise MappingError(_("The DHIS2 mapping has no organisation unit for the booth “%(booth)s” (event “%(event)s”).",
                             booth=info.name, event=info.event_name))


def _uid(value, where: str) -> str:
    if not isinstance(value, str) or not UID.match(value):
        raise MappingError(_("The DHIS2 mapping has an invalid id at %(where)s: %(value)r (a DHIS2 id is 11 letters "
                             "and digits, starting with a letter).", where=where, value=value))
    return value


def parse_mapping(data: dict, *, source: str) -> Mapping:
    """Check and read a mapping (the format is described in ``dhis2_mapping.example.json``)."""
    if not isinstance(data, dict) or not isinstance(data.get("indicators"), dict):
        raise MappingError(_("The DHIS2 mapping needs an object “indicators”."))
    m = Mapping(source=source)
    if data.get("dataSet") is not None:
        m.data_set = _uid(data["dataSet"], "dataSet")
    if data.get("attributeOptionCombo") is not None:
        m.attribute_option_combo = _uid(data["attributeOptionCombo"], "attributeOptionCombo")
    units = data.get("orgUnits") or {}
    m.booths = {str(k): _uid(v, f"orgUnits.booths.{k}") for k, v in (units.get("booths") or {}).items()}
    m.events = {str(k): _uid(v, f"orgUnits.events.{k}") for k, v in (units.get("events") or {}).items()}
    if units.get("default") is not None:
        m.default_org_unit = _uid(units["default"], "orgUnits.default")
    for indicator, dims in data["indicators"].items():
        if not isinstance(dims, dict):
            raise MappingError(_("The DHIS2 mapping of “%(name)s” must be an object.", name=indicator))
        for dim, target in dims.items():
            where = f"indicators.{indicator}.{dim}"
            if not isinstance(target, dict):
                raise MappingError(_("The DHIS2 mapping of “%(name)s” must be an object.", name=where))
            element = _uid(target.get("dataElement"), f"{where}.dataElement")
            if dim == "total":
                coc = target.get("categoryOptionCombo")
                m.elements[(indicator, "total")] = (element, None if coc is None else _uid(coc, f"{where}.categoryOptionCombo"))
                continue
            combos = target.get("categoryOptionCombos")
            if not isinstance(combos, dict):
                raise MappingError(_("The DHIS2 mapping of “%(name)s” needs “categoryOptionCombos”.", name=where))
            for value, coc in combos.items():
                m.elements[(indicator, f"{dim}={value}")] = (element, _uid(coc, f"{where}.categoryOptionCombos.{value}"))
    return m


def load_mapping(path: str | Path | None) -> Mapping:
    """The mapping at ``path`` (``REPORT_DHIS2_MAPPING``), or the shipped example when None."""
    path = Path(path) if path else EXAMPLE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise MappingError(_("The DHIS2 mapping %(name)s cannot be read: %(error)s", name=path.name,
                             error=type(e).__name__)) from e
    return parse_mapping(data, source=path.name)


def data_value_set(scope: Scope, mapping: Mapping) -> dict:
    """The ``dataValueSets`` document of ``scope`` (raises ``MappingError`` for a booth without an org unit)."""
    groups: dict = {}
    for i, unit in enumerate(scope.units):
        groups.setdefault((mapping.org_unit(scope.booths[unit.booth_id]), unit.day), []).append(i)
    values, suppressed, unmapped = [], [], set()
    for (org_unit, day), indices in groups.items():
        for (indicator, disaggregation), value in scope.published(indices).items():
            if is_rate(indicator):
                continue
            target = mapping.elements.get((indicator, disaggregation))
            if target is None:
                unmapped.add(f"{indicator}|{disaggregation}")
                continue
            element, coc = target
            entry = {"dataElement": element, "period": day.strftime("%Y%m%d"), "orgUnit": org_unit}
            if coc:
                entry["categoryOptionCombo"] = coc
            if mapping.attribute_option_combo:
                entry["attributeOptionCombo"] = mapping.attribute_option_combo
            if sup.is_number(value) and value is not None:
                values.append({**entry, "value": str(value)})
            else:
                suppressed.append({**entry, "indicator": indicator, "disaggregation": disaggregation,
                                   "reason": "small" if value is sup.SMALL else "complementary"})
    out: dict = {}
    if mapping.data_set:
        out["dataSet"] = mapping.data_set
    out["dataValues"] = values
    out["note"] = {
        "text": _("Vínculo: counts from 1 to %(n)s (reason “small”) and values hidden so that no small count can be "
                  "worked out (reason “complementary”) are not sent; they are listed in “suppressed”. Rates are not "
                  "sent. Indicators the mapping does not name are listed in “notMapped”.", n=scope.threshold - 1),
        "threshold": scope.threshold,
        "mapping": mapping.source,
        "generated": scope.now.isoformat(),
        "suppressed": suppressed,
        "notMapped": sorted(unmapped),
    }
    return out


def dumps(document: dict) -> str:
    return json.dumps(document, ensure_ascii=False, indent=1) + "\n"


def render(scope: Scope, mapping: Mapping) -> str:
    return dumps(data_value_set(scope, mapping))
