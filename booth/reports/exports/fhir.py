"""The FHIR export: an R4B ``Bundle`` (type ``collection``) of ``MeasureReport`` resources, one per booth and day,
built from that booth-day's suppressed tables (the unit itself: no union needed) and validated with
``fhir.resources`` (R4B) before it is written.

Each MeasureReport (``type`` summary; ``status`` complete once the day is closed, pending before) has one
``group`` per indicator of the CSV export (``code`` in ``INDICATOR_SYSTEM``): its total is the
``initial-population`` count, each disaggregation a ``stratifier`` (``code`` in ``DIMENSION_SYSTEM``) with one
``stratum`` per value; a rate is the group's ``measureScore`` (a proportion, UCUM ``1``).
A suppressed count — ``<10`` or hidden — has **no** ``count``: the count carries the standard
data-absent-reason extension with ``masked`` instead (``_count`` in JSON); a suppressed rate likewise on its
``measureScore``, and a rate with nothing to divide by says ``not-applicable``. Whether a masked count is
``<10`` or hidden is not told (FHIR has no code for "1 to 9"); the CSV and PDF say so.
The reporter is the booth (an identifier and its name — no person is named anywhere).
"""
from __future__ import annotations

import json
import uuid

from booth.reports import suppression as sup
from booth.reports.exports.common import Scope, indicator_label, is_rate, split, value_label

DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
MEASURE_POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
MEASURE = "urn:vinculo:fhir:Measure:booth-daily-totals"
INDICATOR_SYSTEM = "urn:vinculo:fhir:indicator"
DIMENSION_SYSTEM = "urn:vinculo:fhir:disaggregation"
BOOTH_SYSTEM = "urn:vinculo:fhir:booth"
REPORT_SYSTEM = "urn:vinculo:fhir:booth-day"
NAMESPACE = uuid.UUID("5b0c6f2e-8a43-4d1e-9b7a-3f1de2a9c41d")    # MeasureReport ids: uuid5(booth id / day)


def _absent(code: str) -> dict:
    return {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": code}]}


def _population(value) -> dict:
    pop = {"code": {"coding": [{"system": MEASURE_POPULATION, "code": "initial-population"}]}}
    if sup.is_number(value) and value is not None:
        pop["count"] = value
    else:
        pop["_count"] = _absent("masked")
    return pop


def _score(value) -> dict:
    if value is None:
        return _absent("not-applicable")
    if not sup.is_number(value):
        return _absent("masked")
    return {"value": round(value, 4), "unit": "1", "system": "http://unitsofmeasure.org", "code": "1"}


def measure_report(scope: Scope, index: int) -> dict:
    unit = scope.units[index]
    info = scope.booths[unit.booth_id]
    groups: dict = {}
    for (indicator, disaggregation), value in scope.published([index]).items():
        group = groups.setdefault(indicator, {
            "code": {"coding": [{"system": INDICATOR_SYSTEM, "code": indicator}], "text": indicator_label(indicator)}})
        if is_rate(indicator):
            group["measureScore"] = _score(value)
            continue
        parts = split(disaggregation)
        if parts is None:
            group.setdefault("population", []).append(_population(value))
            continue
        dimension, key = parts
        stratifiers = group.setdefault("stratifier", [])
        stratifier = next((s for s in stratifiers if s["code"][0]["coding"][0]["code"] == dimension), None)
        if stratifier is None:
            stratifier = {"code": [{"coding": [{"system": DIMENSION_SYSTEM, "code": dimension}]}], "stratum": []}
            stratifiers.append(stratifier)
        stratifier["stratum"].append({
            "value": {"coding": [{"system": f"{DIMENSION_SYSTEM}:{dimension}", "code": key}],
                      "text": value_label(dimension, key)},
            "population": [_population(value)]})
    report_id = str(uuid.uuid5(NAMESPACE, f"{unit.booth_id}/{unit.day.isoformat()}"))
    return {
        "resourceType": "MeasureReport",
        "id": report_id,
        "identifier": [{"system": REPORT_SYSTEM, "value": f"{unit.booth_id}/{unit.day.isoformat()}"}],
        "status": "complete" if (unit.booth_id, unit.day) in scope.closed else "pending",
        "type": "summary",
        "measure": MEASURE,
        "date": scope.now.isoformat(),
        "reporter": {"type": "Location", "identifier": {"system": BOOTH_SYSTEM, "value": str(unit.booth_id)},
                     "display": f"{info.name} · {info.event_name}"},
        "period": {"start": unit.day.isoformat(), "end": unit.day.isoformat()},
        "group": list(groups.values()),
    }


def bundle(scope: Scope) -> dict:
    """The Bundle as plain JSON data (not yet validated)."""
    reports = [measure_report(scope, i) for i in range(len(scope.units))]
    out = {"resourceType": "Bundle", "type": "collection", "timestamp": scope.now.isoformat()}
    if reports:                                      # FHIR JSON has no empty arrays
        out["entry"] = [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in reports]
    return out


def render(scope: Scope) -> str:
    """The Bundle validated by ``fhir.resources`` (R4B) and written by it: what is written is what passed.
    Imported here, not at start-up: the serving process does not load pydantic until someone exports."""
    from fhir.resources.R4B.bundle import Bundle

    validated = Bundle.model_validate(bundle(scope))
    return json.dumps(json.loads(validated.model_dump_json(exclude_none=True)), ensure_ascii=False, indent=1) + "\n"
