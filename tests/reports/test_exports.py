"""The PDF, DHIS2 and FHIR exports: each parses (pdftotext, the DHIS2 JSON Schema in this folder, fhir.resources
R4B), agrees with the dashboard's exact numbers (``daily_totals``) wherever it shows a number, shows no count
1–9 anywhere, leaves suppressed values out of DHIS2 (listed in its note) and masks them in FHIR with
data-absent-reason; only coordinators download them."""
from __future__ import annotations

import json
import re
import subprocess
from datetime import date
from pathlib import Path

import jsonschema
import pytest
from fhir.resources.R4B.bundle import Bundle

from booth.events.models import Booth
from booth.extensions import db
from booth.reports.exports import common, dhis2
from booth.visits.models import DayClosure
from tests.reports.conftest import EVENING2
from tests.reports.test_csv_export import DAY1, DAY2, cli_export, exact, node, parse  # noqa: F401  (node: fixture)

SCHEMA = json.loads((Path(__file__).with_name("dhis2_dataValueSets.schema.json")).read_text(encoding="utf-8"))
DAR = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
SMALL = "<10"


# ---------------------------------------------------------------- helpers

def pdf_text(body: bytes, tmp_path: Path, *, page: int | None = None) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(body)
    pages = ["-f", str(page), "-l", str(page)] if page else []
    return subprocess.run(["pdftotext", "-layout", *pages, str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


def after_label(text: str, label: str) -> list[str]:
    """The tokens after ``label`` on the first line where it stands as a cell (a table row in -layout text:
    cells are at least two spaces apart)."""
    for line in text.splitlines():
        m = re.search(r"(?:^|\s{2,})\s*" + re.escape(label) + r"(?:\s{2,}(.*)|$)", line)
        if m:
            return (m.group(1) or "").split()
    raise AssertionError(f"{label!r} not in the PDF text")


def small_numbers_in_pdf(text: str, names: list[str]) -> list[str]:
    """Every integer 1–9 in the PDF text that is not a page number, a date, a time, an age band or a name."""
    text = re.sub(r"(Página|Page) \d+", "", text)
    for name in names:
        text = text.replace(name, "")
    text = re.sub(r"\d{2}/\d{2}/\d{4}|\d{2}:\d{2}|\d+-\d+|\d+\+|<\d+|\d+(\.\d+)?%", "", text)
    return re.findall(r"(?<![\d.,])[1-9](?![\d.,])", text)


def mapping_keys(mapping: dhis2.Mapping) -> dict:
    """(data element, category option combo or None) → (indicator, disaggregation): the mapping read backwards."""
    return {target: key for key, target in mapping.elements.items()}


def masked(element: dict) -> bool:
    return any(e["url"] == DAR and e["valueCode"] == "masked" for e in element.get("extension", []))


# ---------------------------------------------------------------- downloads (today = day 1)

def test_dashboard_offers_every_download(node, login):
    page = login("coordinator").get("/dashboard").get_data(as_text=True)
    for path in ("/dashboard/export.csv", "/dashboard/export.pdf", "/dashboard/export.dhis2.json",
                 "/dashboard/export.fhir.json"):
        assert f'href="{path}"' in page


@pytest.mark.parametrize("role", ["tester", "counselor", "clinic"])
@pytest.mark.parametrize("path", ["/dashboard/export.pdf", "/dashboard/export.dhis2.json",
                                  "/dashboard/export.fhir.json"])
def test_only_coordinators_download(node, login, role, path):
    assert login(role).get(path).status_code == 403


def test_pdf_shows_the_dashboard_totals_and_no_small_count(node, login, clock, tmp_path):
    coordinator = login("coordinator")
    r = coordinator.get("/dashboard/export.pdf")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    assert r.headers["Content-Disposition"] == 'attachment; filename="vinculo-informe-2026-06-27.pdf"'
    assert r.headers["Cache-Control"] == "no-store"
    truth = exact(node.app, DAY1, clock)["counts"]
    csv_table = parse(coordinator.get("/dashboard/export.csv").get_data(as_text=True))
    summary = pdf_text(r.data, tmp_path, page=1)
    assert "Marcha del Orgullo" in summary and "27/06/2026" in summary
    with node.app.app_context():
        labels = {indicator: common.indicator_label(indicator) for indicator, _d in truth}
        per_test = {m: str(common.PER_DISEASE[m]) for m in ("consented", "refused", "non_reactive", "unresolved")}
    shown = 0
    for (indicator, disaggregation), n in truth.items():
        if disaggregation != "total" or indicator not in (
                "visits", "people_tested", "people_with_result", "first_time", "known_positive", "post_counseling",
                "devices.used", "devices.invalid", "referrals"):
            continue
        value = csv_table[(indicator, disaggregation)]
        first = (after_label(summary, labels[indicator]) or [""])[0]
        if value == "":                                  # hidden: no number after the label
            assert not re.fullmatch(r"[\d,]+|<10", first), (indicator, first)
        elif value == SMALL:
            assert first == SMALL and 0 < n < 10
        else:
            assert first == f"{n:,}" and n == int(value), (indicator, first, n)
            shown += 1
    for measure, label in per_test.items():       # the results-per-test table: one column per test, hiv first
        numbers = [t for t in after_label(summary, label) if re.fullmatch(r"[\d,]+|<10", t)]
        expected = [csv_table[(f"{d}.{measure}", "total")] for d in ("hiv", "hcv")]
        assert numbers == [v for v in expected if v != ""], (measure, numbers, expected)
        for d, v in zip(("hiv", "hcv"), expected):
            if v not in ("", SMALL):
                assert int(v) == truth[(f"{d}.{measure}", "total")]
                shown += 1
    assert shown >= 8, "the summary shows the large totals"
    everything = pdf_text(r.data, tmp_path)
    assert "Módulo 1" in everything and "<10" in everything
    assert small_numbers_in_pdf(everything, ["Módulo 1", "Marcha del Orgullo"]) == []
    assert pdf_text(r.data, tmp_path).count("\f") == 2, "a summary page and one page for the booth"


def test_dhis2_validates_agrees_and_leaves_suppressed_values_out(node, login, clock):
    r = login("coordinator").get("/dashboard/export.dhis2.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert r.headers["Content-Disposition"] == 'attachment; filename="vinculo-dhis2-2026-06-27.json"'
    document = json.loads(r.data)
    jsonschema.validate(document, SCHEMA)
    with node.app.app_context():
        mapping = dhis2.load_mapping(None)            # REPORT_DHIS2_MAPPING unset: the shipped example
    back = mapping_keys(mapping)
    truth = exact(node.app, DAY1, clock)["counts"]
    booth_unit = mapping.booths["Módulo 1"]
    sent, compared = set(), 0
    for v in document["dataValues"]:
        assert v["period"] == "20260627" and v["orgUnit"] == booth_unit
        key = back[(v["dataElement"], v.get("categoryOptionCombo"))]
        n = int(v["value"])
        assert n == 0 or n >= 10, (key, n)
        if key in truth:
            assert n == truth[key], key
            compared += 1
        sent.add(key)
    assert compared >= 20
    note = document["note"]
    assert note["threshold"] == 10 and note["mapping"] == "dhis2_mapping.example.json"
    listed = {(s["indicator"], s["disaggregation"]): s["reason"] for s in note["suppressed"]}
    assert listed and not set(listed) & sent
    assert "small" in listed.values() and "complementary" in listed.values()
    for key, n in truth.items():
        if key in mapping.elements and 0 < n < 10:
            assert key not in sent and listed[key] in ("small", "complementary"), key
    for s in note["suppressed"]:
        assert "value" not in s and mapping.elements[(s["indicator"], s["disaggregation"])][0] == s["dataElement"]
    csv_table = parse(login("coordinator").get("/dashboard/export.csv").get_data(as_text=True))
    mapped_rows = {key for key in csv_table if key in mapping.elements}
    assert mapped_rows == sent | set(listed), "every mapped row of the day is either sent or noted, once"
    assert len(document["dataValues"]) + len(note["suppressed"]) == len(mapped_rows)
    for key in sent:
        assert csv_table[key] not in ("", SMALL)
    for key, reason in listed.items():
        assert csv_table[key] == (SMALL if reason == "small" else "")


def test_fhir_validates_agrees_and_masks_suppressed_counts(node, login, clock):
    r = login("coordinator").get("/dashboard/export.fhir.json")
    assert r.status_code == 200 and r.mimetype == "application/fhir+json"
    assert r.headers["Content-Disposition"] == 'attachment; filename="vinculo-fhir-2026-06-27.json"'
    document = json.loads(r.data)
    bundle = Bundle.model_validate(document)               # fhir.resources R4B
    assert bundle.type == "collection" and len(bundle.entry) == 1
    report = document["entry"][0]["resource"]
    assert report["resourceType"] == "MeasureReport" and report["type"] == "summary"
    assert report["period"] == {"start": "2026-06-27", "end": "2026-06-27"}
    assert report["status"] == "complete", "the demo day is closed"
    assert report["reporter"]["display"] == "Módulo 1 · Marcha del Orgullo"
    truth = exact(node.app, DAY1, clock)["counts"]
    found, compared, masked_small = {}, 0, 0
    for group in report["group"]:
        indicator = group["code"]["coding"][0]["code"]
        cells = [("total", p) for p in group.get("population", [])]
        for stratifier in group.get("stratifier", []):
            dim = stratifier["code"][0]["coding"][0]["code"]
            cells += [(f"{dim}={s['value']['coding'][0]['code']}", p) for s in stratifier["stratum"]
                      for p in s["population"]]
        for disaggregation, population in cells:
            key = (indicator, disaggregation)
            found[key] = population
            if "count" in population:
                n = population["count"]
                assert n == 0 or n >= 10, (key, n)
                assert "_count" not in population
                if key in truth:
                    assert n == truth[key], key
                    compared += 1
            else:
                assert masked(population["_count"]), key
                masked_small += key in truth and 0 < truth[key] < 10
    assert compared >= 20 and masked_small >= 5
    for key, n in truth.items():
        if 0 < n < 10:
            assert "count" not in found[key] and masked(found[key]["_count"]), key
    scores = {g["code"]["coding"][0]["code"]: g["measureScore"] for g in report["group"] if "measureScore" in g}
    assert set(scores) >= {"first_time_share", "hiv.positivity", "hcv.positivity"}
    for name, score in scores.items():
        assert "value" in score or masked(score) or score["extension"][0]["valueCode"] == "not-applicable"


def test_fhir_report_is_pending_until_the_day_is_closed(node, login):
    with node.app.app_context():
        db.session.execute(db.delete(DayClosure).where(DayClosure.booth_id == node.booth_id, DayClosure.day == DAY1))
        db.session.commit()
    document = json.loads(login("coordinator").get("/dashboard/export.fhir.json").data)
    assert document["entry"][0]["resource"]["status"] == "pending"


# ---------------------------------------------------------------- the command line (every day, ranges)

def run_export(app, tmp_path, fmt: str, *args) -> Path:
    out = tmp_path / f"export.{fmt}"
    result = app.test_cli_runner().invoke(args=["export", fmt, "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    return out


def test_cli_exports_of_two_days_are_the_days_side_by_side(node, tmp_path, clock):
    app = node.app
    clock.set(EVENING2)
    day_tables = {d: cli_export(app, tmp_path, "--date", d.isoformat()) for d in (DAY1, DAY2)}
    both = cli_export(app, tmp_path, "--from", "2026-06-27", "--to", "2026-06-28")

    # DHIS2: one period per day, each the day's own suppressed values (nothing summed across days)
    document = json.loads(run_export(app, tmp_path, "dhis2").read_text(encoding="utf-8"))
    jsonschema.validate(document, SCHEMA)
    with app.app_context():
        back = mapping_keys(dhis2.load_mapping(None))
    periods = {v["period"] for v in document["dataValues"]}
    assert periods == {"20260627", "20260628"}
    for v in document["dataValues"]:
        day = DAY1 if v["period"] == "20260627" else DAY2
        assert day_tables[day][back[(v["dataElement"], v.get("categoryOptionCombo"))]] == v["value"]

    # FHIR: one MeasureReport per booth and day, each agreeing with that day's CSV
    bundle = json.loads(run_export(app, tmp_path, "fhir", "--event", str(node.event_id)).read_text(encoding="utf-8"))
    Bundle.model_validate(bundle)
    reports = {e["resource"]["period"]["start"]: e["resource"] for e in bundle["entry"]}
    assert set(reports) == {"2026-06-27", "2026-06-28"}
    assert len({e["fullUrl"] for e in bundle["entry"]}) == 2
    for day, report in reports.items():
        table = day_tables[date.fromisoformat(day)]
        for group in report["group"]:
            for p in group.get("population", []):
                expected = table[(group["code"]["coding"][0]["code"], "total")]
                assert (str(p["count"]) if "count" in p else "suppressed") == (
                    expected if expected not in ("", SMALL) else "suppressed")

    # PDF: the summary of both days is the two-day CSV; a per-day table; still no small number
    text = pdf_text(run_export(app, tmp_path, "pdf", "--from", "2026-06-27", "--to", "2026-06-28").read_bytes(),
                    tmp_path)
    assert "27/06/2026" in text and "28/06/2026" in text
    with app.app_context():
        label = common.indicator_label("devices.used")
    assert after_label(text, label)[0] == f"{int(both[('devices.used', 'total')]):,}"
    assert small_numbers_in_pdf(text, ["Módulo 1", "Marcha del Orgullo"]) == []

    # a day without visits: empty but valid documents
    empty = json.loads(run_export(app, tmp_path, "dhis2", "--date", "2026-07-01").read_text(encoding="utf-8"))
    jsonschema.validate(empty, SCHEMA)
    assert empty["dataValues"] == [] and empty["note"]["suppressed"] == []
    assert Bundle.model_validate(json.loads(run_export(app, tmp_path, "fhir", "--date", "2026-07-01").read_text(
        encoding="utf-8"))).entry is None
    assert "\f" in pdf_text(run_export(app, tmp_path, "pdf", "--date", "2026-07-01").read_bytes(), tmp_path)


def test_dhis2_mapping_comes_from_the_configuration(node, tmp_path, login):
    """An event-wide org unit from REPORT_DHIS2_MAPPING (keyed by the event's name); a mapping that names no
    org unit for the booth is refused (409 on the dashboard, an error at the command line)."""
    example = json.loads(dhis2.EXAMPLE.read_text(encoding="utf-8"))
    mine = {"orgUnits": {"events": {"Marcha del Orgullo": "OrgUnitEv01"}},
            "indicators": {"devices.used": {"total": {"dataElement": "DevicesUse1"}},
                           "visits": {"age_band": example["indicators"]["visits"]["age_band"]}}}
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(mine), encoding="utf-8")
    node.app.config["REPORT_DHIS2_MAPPING"] = str(path)
    coordinator = login("coordinator")
    document = json.loads(coordinator.get("/dashboard/export.dhis2.json").data)
    jsonschema.validate(document, SCHEMA)
    assert "dataSet" not in document
    assert {v["orgUnit"] for v in document["dataValues"]} == {"OrgUnitEv01"}
    devices = [v for v in document["dataValues"] if v["dataElement"] == "DevicesUse1"]
    assert len(devices) == 1 and "categoryOptionCombo" not in devices[0]
    assert "visits|total" in document["note"]["notMapped"]

    path.write_text(json.dumps({"indicators": mine["indicators"]}), encoding="utf-8")
    r = coordinator.get("/dashboard/export.dhis2.json")
    assert r.status_code == 409 and "Módulo 1" in r.get_data(as_text=True)
    result = node.app.test_cli_runner().invoke(args=["export", "dhis2", "--out", str(tmp_path / "x.json"),
                                                     "--mapping", str(path)])
    assert result.exit_code != 0 and "Módulo 1" in result.output
    path.write_text(json.dumps({"indicators": {"visits": {"total": {"dataElement": "not a uid"}}}}), encoding="utf-8")
    result = node.app.test_cli_runner().invoke(args=["export", "dhis2", "--out", str(tmp_path / "x.json"),
                                                     "--mapping", str(path)])
    assert result.exit_code != 0 and "not a uid" in result.output


def test_the_example_mapping_is_valid_and_covers_every_count(node, clock):
    """The shipped example names every count row of a demo day (so a coordinator sees the whole shape), and
    its ids are DHIS2 ids."""
    with node.app.app_context():
        mapping = dhis2.load_mapping(None)
        booth = db.session.scalar(db.select(Booth))
        units = common.units_in_range(db.session, booth_id=booth.id)
        document = dhis2.data_value_set(common.load(db.session, units, now=clock.now(), threshold=10), mapping)
    assert document["note"]["notMapped"] == []
    assert all(dhis2.UID.match(element) and (coc is None or dhis2.UID.match(coc))
               for element, coc in mapping.elements.values())


def test_two_booths_a_page_each_and_an_event_org_unit_is_their_union(node, tmp_path, clock):
    """A second booth of the same event (as central holds them): the PDF has a page per booth, FHIR a
    MeasureReport per booth, and DHIS2 with one org unit for the event sends the union of both booths' days —
    the same numbers as the CSV of that day (which is that union)."""
    from booth.auth import services as auth
    from booth.demo import generate_day

    app = node.app
    with app.app_context():
        now = clock.now()
        first = db.session.get(Booth, node.booth_id)
        second = Booth(event_id=first.event_id, name="Módulo 2", created_at=now, updated_at=now)
        db.session.add(second)
        db.session.flush()
        coordinator = auth.staff_by_code(db.session, node.coordinator_code)
        staff = [auth.staff_by_code(db.session, code) for code in ("T91", "K91")]
        generate_day(db.session, booth=second, coordinator=coordinator, testers=staff[:1], counselors=staff[1:],
                     visits_n=120, seed=7, now=now)
        db.session.commit()
    day = cli_export(app, tmp_path, "--date", "2026-06-27")

    text = pdf_text(run_export(app, tmp_path, "pdf", "--date", "2026-06-27").read_bytes(), tmp_path)
    assert text.count("\f") == 3 and "Módulo 1 · Marcha del Orgullo" in text and "Módulo 2 · Marcha del Orgullo" in text
    assert small_numbers_in_pdf(text, ["Módulo 1", "Módulo 2", "Marcha del Orgullo"]) == []

    bundle = json.loads(run_export(app, tmp_path, "fhir", "--date", "2026-06-27").read_text(encoding="utf-8"))
    Bundle.model_validate(bundle)
    assert sorted(e["resource"]["reporter"]["display"] for e in bundle["entry"]) == [
        "Módulo 1 · Marcha del Orgullo", "Módulo 2 · Marcha del Orgullo"]

    example = json.loads(dhis2.EXAMPLE.read_text(encoding="utf-8"))
    path = tmp_path / "event.json"
    path.write_text(json.dumps({**example, "orgUnits": {"events": {str(node.event_id): "OrgUnitEv01"}}}),
                    encoding="utf-8")
    document = json.loads(run_export(app, tmp_path, "dhis2", "--date", "2026-06-27", "--mapping", str(path))
                          .read_text(encoding="utf-8"))
    jsonschema.validate(document, SCHEMA)
    back = mapping_keys(dhis2.parse_mapping(example, source="example"))
    assert {v["orgUnit"] for v in document["dataValues"]} == {"OrgUnitEv01"}
    assert len(document["dataValues"]) >= 10
    for v in document["dataValues"]:
        assert day[back[(v["dataElement"], v.get("categoryOptionCombo"))]] == v["value"]
    for s in document["note"]["suppressed"]:
        assert day[(s["indicator"], s["disaggregation"])] == (SMALL if s["reason"] == "small" else "")

    # the example mapping: Módulo 1 by name, Módulo 2 falls back to the default org unit
    document = json.loads(run_export(app, tmp_path, "dhis2", "--date", "2026-06-27").read_text(encoding="utf-8"))
    assert {v["orgUnit"] for v in document["dataValues"]} == {example["orgUnits"]["booths"]["Módulo 1"],
                                                              example["orgUnits"]["default"]}
