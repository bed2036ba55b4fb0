"""The CSV export: it parses, agrees with the dashboard's exact numbers wherever it shows a number, shows no
count 1–9, is consistent across a day, a two-day range and every day, and only coordinators get it."""
from __future__ import annotations

import csv
import io
import re
import shutil
from datetime import date

import pytest

from booth import create_app
from booth.events.models import Booth
from booth.extensions import db
from booth.reports import indicators
from booth.settings import services as settings_services
from tests.conftest import Node, base_config
from tests.reports.conftest import EVENING1, EVENING2

DAY1, DAY2 = date(2026, 6, 27), date(2026, 6, 28)
SMALL_NUMBER = re.compile(r"^[1-9]$")


@pytest.fixture
def node(world, tmp_path, clock):
    """This module's node: a fresh copy of the world (overrides conftest's empty node, so ``login`` works on it);
    the clock is on day 1's evening."""
    folder, built = world
    shutil.copytree(folder / "instance", tmp_path / "instance", dirs_exist_ok=True)
    shutil.copy(folder / "node.sqlite3", tmp_path / "node.sqlite3")
    clock.set(EVENING1)
    app = create_app(base_config(tmp_path, CLOCK=clock))
    yield Node(app, built.event_id, built.booth_id, built.coordinator_code, built.coordinator_pin, built.device_token)
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def two_days(node):
    return node


def parse(text: str) -> dict:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["indicator", "disaggregation", "value"]
    assert all(len(r) == 3 for r in rows)
    out = {(r[0], r[1]): r[2] for r in rows[1:]}
    assert len(out) == len(rows) - 1, "one row per indicator and disaggregation"
    return out


def assert_no_small_number(table: dict, threshold: int = 10) -> None:
    for key, value in table.items():
        if value in ("", f"<{threshold}") or "." in value:
            continue
        assert not 0 < int(value) < threshold, (key, value)


def exact(app, day: date, clock) -> dict:
    """What the dashboard shows (exact counts), keyed like the export."""
    with app.app_context():
        booth = db.session.scalar(db.select(Booth))
        t = indicators.daily_totals(db.session, booth_id=booth.id, day=day, tz_name=booth.event.timezone,
                                    settings=settings_services.signed(db.session, booth.event_id), now=clock.now())
    out = {("visits", "total"): t.visits, ("visits", "final_state=done"): t.done,
           ("visits", "final_state=left_before_result"): t.left_before_result,
           ("people_tested", "total"): t.tested_people, ("people_with_result", "total"): t.with_result_people,
           ("first_time", "total"): t.first_time, ("known_positive", "total"): t.known_positive,
           ("post_counseling", "total"): t.post_counseling, ("devices.used", "total"): t.devices.used,
           ("devices.invalid", "total"): t.devices.invalid, ("referrals", "total"): t.referrals}
    for d in t.diseases:
        for name in ("tested", "non_reactive", "reactive", "discordant", "unresolved", "consented", "refused"):
            out[(f"{d.disease}.{name}", "total")] = getattr(d, name)
    for dim, values in t.by.items():
        for value, cell in values.items():
            out[("visits", f"{dim}={value}")] = cell["visits"]
            out[("people_reactive", f"{dim}={value}")] = cell["reactive"]
    for reason, n in t.referrals_by_reason.items():
        out[("referrals", f"reason={reason}")] = n
    return {"counts": out, "first_time_share": t.first_time_share,
            "positivity": {d.disease: d.positivity for d in t.diseases}}


def assert_agrees(table: dict, truth: dict, threshold: int = 10) -> None:
    counts = truth["counts"]
    checked = 0
    for key, n in counts.items():
        assert key in table, key
        value = table[key]
        if 0 < n < threshold:
            assert value in ("", f"<{threshold}"), (key, n, value)
        elif value not in ("",):
            assert value == str(n), (key, n, value)
            checked += n >= threshold
    assert checked >= 10, "the export shows most of the large counts"
    if table[("first_time_share", "total")]:
        assert float(table[("first_time_share", "total")]) == pytest.approx(truth["first_time_share"], abs=1e-4)
    for disease, p in truth["positivity"].items():
        if table[(f"{disease}.positivity", "total")]:
            assert float(table[(f"{disease}.positivity", "total")]) == pytest.approx(p, abs=1e-4)


def test_download_agrees_with_the_dashboard_and_shows_no_small_count(two_days, login, clock):
    coordinator = login("coordinator")
    page = coordinator.get("/dashboard").get_data(as_text=True)
    assert "/dashboard/export.csv" in page
    r = coordinator.get("/dashboard/export.csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert r.headers["Content-Disposition"] == 'attachment; filename="vinculo-totales-2026-06-27.csv"'
    table = parse(r.get_data(as_text=True))
    assert_no_small_number(table)
    truth = exact(two_days.app, DAY1, clock)
    assert_agrees(table, truth)
    assert "<10" in table.values(), "a realistic day has small cells"
    # the dashboard's own page shows the same visits total
    assert f"{truth['counts'][('visits', 'final_state=done')]:,}" in page


def test_threshold_comes_from_the_configuration(two_days, login, clock):
    two_days.app.config["REPORT_SUPPRESSION_THRESHOLD"] = 20
    table = parse(login("coordinator").get("/dashboard/export.csv").get_data(as_text=True))
    assert_no_small_number(table, threshold=20)
    assert "<20" in table.values() and "<10" not in table.values()
    assert_agrees(table, exact(two_days.app, DAY1, clock), threshold=20)


@pytest.mark.parametrize("role", ["tester", "counselor", "clinic"])
def test_only_coordinators_download(two_days, login, role):
    assert login(role).get("/dashboard/export.csv").status_code == 403


def cli_export(app, tmp_path, *args) -> dict:
    out = tmp_path / "export.csv"
    result = app.test_cli_runner().invoke(args=["export", "csv", "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    table = parse(out.read_text(encoding="utf-8"))
    assert_no_small_number(table)
    return table


def test_cli_day_range_and_every_day_are_unions_of_the_same_suppressed_days(two_days, tmp_path, clock):
    app = two_days.app
    day1 = cli_export(app, tmp_path, "--date", "2026-06-27")
    day2 = cli_export(app, tmp_path, "--event", str(two_days.event_id), "--date", "2026-06-28")
    both = cli_export(app, tmp_path, "--from", "2026-06-27", "--to", "2026-06-28")
    every = cli_export(app, tmp_path)
    assert every == both
    assert_agrees(day1, exact(app, DAY1, clock))
    clock.set(EVENING2)
    assert_agrees(day2, exact(app, DAY2, clock))
    for key, value in both.items():
        if key[0].endswith(("share", "positivity")):
            continue
        a, b = day1.get(key, "0"), day2.get(key, "0")
        if value not in ("", "<10"):
            # a number over two days is the sum of two published numbers: nothing new can be subtracted
            assert a.isdigit() and b.isdigit() and int(value) == int(a) + int(b), (key, a, b, value)
        if a == "<10" and b == "<10":
            assert value == "", key
    # a day with no visits for the event
    assert cli_export(app, tmp_path, "--date", "2026-07-01") == {}


def test_cli_refuses_bad_options(two_days, tmp_path):
    runner = two_days.app.test_cli_runner()
    out = str(tmp_path / "x.csv")
    r = runner.invoke(args=["export", "csv", "--out", out, "--date", "2026-06-27", "--from", "2026-06-27"])
    assert r.exit_code != 0 and "not both" in r.output
    r = runner.invoke(args=["export", "csv", "--out", out, "--event", "not-an-id"])
    assert r.exit_code != 0 and "no event" in r.output
    r = runner.invoke(args=["export", "csv", "--out", out, "--from", "2026-06-28", "--to", "2026-06-27"])
    assert r.exit_code != 0


def test_a_range_never_moves_which_cell_a_booth_day_hides():
    """Which complement a booth-day hides is decided on that day's own values: a day whose age bands another
    day of the range lacks does not change it (found by the central dashboard's review). Every number the range
    publishes is then a sum of numbers the single days publish."""
    from booth.reports import suppression as sup
    from booth.reports.exports.csv import UnitTables, published_rows

    def day(bands: dict) -> UnitTables:
        total = sum(bands.values())
        return UnitTables(linked={"visits": {"age_band": dict(bands), "beneficiary": {"yes": total}}})

    a = day({"20-24": 5, "25-29": 50})
    b = day({"25-29": 40, "30-34": 60})
    alone = {(i, d): v for i, d, v in published_rows([a], threshold=10)}
    assert alone[("visits", "age_band=20-24")] is sup.SMALL and alone[("visits", "age_band=25-29")] is sup.HIDDEN
    both = {(i, d): v for i, d, v in published_rows([a, b], threshold=10)}
    # day a hides 25–29 whatever else is in the range, so the union cannot publish it
    assert both[("visits", "age_band=25-29")] is sup.HIDDEN
    assert both[("visits", "total")] is sup.HIDDEN
    alone_b = {(i, d): v for i, d, v in published_rows([b], threshold=10)}
    for key, value in both.items():
        if sup.is_number(value) and key[1] != "total":
            parts = [alone.get(key, 0), alone_b.get(key, 0)]
            assert all(sup.is_number(p) for p in parts) and sum(parts) == value, key
