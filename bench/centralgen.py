"""A central database with a million visits, for bench/dashboard.py (central part of issue 8's figures).

The rows are copies of real booth-days: ``flask demo`` fills a booth node (SQLite) with a closed day of
2,000 visits per template (``--templates`` seeds), and every (booth, day) of the central database is one of
those days with its ids, booth, event and dates rewritten, loaded with PostgreSQL's ``COPY`` (psycopg's
``cursor.copy``). What a booth-day holds is therefore exactly what a booth records: visits, consents, devices
and their results (with corrections, invalid reads, repeats and second tests), counseling, referrals, stock
movements, shifts and the close of day. Clinics' linkage records are drawn for the referrals for
confirmation (a fixed seed: 75 % arrive after 0–45 days, 80 % of those confirmed, 70 % of those start
treatment 0–20 days later).

Layout: ``events`` central events; each holds ``booths // events`` booths, and each booth works
``days`` consecutive days of its event. Every booth has its own event row (as a node set up offline does)
whose ``central_event_id`` is the central event — the dashboard's event filter goes through that link.

Ids: a copied id keeps the template's last 28 hex digits and gets 8 of the booth-day's (UUIDv7 ids made in
the same minutes share their first 8), so ids stay unique and parents and children still match. Times move
by whole days, so local days and hours stay as the booth recorded them. Foreign keys are not checked during
the load (``session_replication_role = replica``: the rows are consistent by construction).
"""
from __future__ import annotations

import hashlib
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa

UNIT_TABLES = ("visits", "consents", "screenings", "screening_results", "counseling", "referrals",
               "stock_movements", "shifts", "day_closures")
PER_UNIT_IDS = {"id", "visit_id", "screening_id", "replaces_id", "referral_id"}
CONFIRMATION = {"hiv_confirmation": "hiv", "discordant_lab": "hiv", "hcv_viral_load": "hcv",
                "syphilis_confirmation": "syphilis"}
POSITIVE = {"hiv": "hiv_confirmed", "hcv": "hcv_rna_detected", "syphilis": "syphilis_active"}
NEGATIVE = {"hiv": "hiv_not_confirmed", "hcv": "hcv_rna_not_detected", "syphilis": "syphilis_not_confirmed"}
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _copy_text(value) -> str:
    """A value in COPY's text format."""
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (dict, list)):
        value = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    elif isinstance(value, datetime):
        value = value.astimezone(timezone.utc).isoformat(sep=" ")
    else:
        value = str(value)
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _brace(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


@dataclass
class Template:
    """One booth-day of a demo node, as COPY lines with ``format_map`` fields for what changes per copy."""
    day: date
    columns: dict = field(default_factory=dict)          # table → column names
    lines: dict = field(default_factory=dict)            # table → [format string per row]
    shifts: set = field(default_factory=set)             # day offsets used by dates and times
    referrals: list = field(default_factory=list)        # (id tail, disease) of referrals for confirmation
    settings: dict | None = None                         # the signed clinical settings row
    lots: list = field(default_factory=list)             # kit_lots rows
    products: list = field(default_factory=list)
    destinations: list = field(default_factory=list)
    staff: list = field(default_factory=list)            # node_staff rows
    visits: int = 0


def extract(engine, metadata) -> Template:
    """Read a demo node's only day into a Template (the node holds one booth and one day)."""
    with engine.connect() as c:
        day = c.execute(sa.select(sa.func.min(metadata.tables["visits"].c.day))).scalar_one()
        t = Template(day=day)

        def rows(name):
            return [dict(r._mapping) for r in c.execute(sa.select(metadata.tables[name]))]

        settings = [r for r in rows("clinical_settings") if r["status"] == "signed"]
        t.settings = max(settings, key=lambda r: r["number"])
        t.lots = rows("kit_lots")
        t.products = rows("kit_products")
        t.destinations = rows("destinations")
        t.staff = [{k: r[k] for k in ("id", "code", "roles", "clinical_lead", "disabled_at", "version", "created_at",
                                      "updated_at")} for r in rows("staff")]
        for name in UNIT_TABLES:
            table = metadata.tables[name]
            cols = [col.name for col in table.columns]
            t.columns[name] = cols
            t.lines[name] = [_line(t, name, table, r) for r in rows(name)]
        for r in rows("referrals"):
            if r["reason"] in CONFIRMATION and r["status"] != "cancelled":
                t.referrals.append((str(r["id"])[8:], CONFIRMATION[r["reason"]]))
        t.visits = len(t.lines["visits"])
    return t


def _line(t: Template, name: str, table, row: dict) -> str:
    out = []
    for col in table.columns:
        v = row[col.name]
        if v is None:
            out.append(r"\N")
        elif col.name == "booth_id":
            out.append("{booth}")
        elif col.name == "event_id":
            out.append("{event}")
        elif isinstance(v, uuid.UUID):
            tail = str(v)[8:]
            if col.name in PER_UNIT_IDS:
                out.append("{u}" + tail)
            elif col.name == "lot_id":
                out.append("{b}" + tail)
            elif col.name == "settings_id":
                out.append("{e}" + tail)
            else:                                       # kit products, destinations, staff: the same everywhere
                out.append(str(v))
        elif isinstance(v, datetime):
            v = v.astimezone(timezone.utc)
            k = (v.date() - t.day).days
            t.shifts.add(k)
            out.append("{d%d}" % (k + 1000) + _brace(v.isoformat(sep=" ")[10:]))
        elif isinstance(v, date):
            k = (v - t.day).days
            t.shifts.add(k)
            out.append("{d%d}" % (k + 1000))
        elif col.name == "folio":
            out.append("{f}" + v[2:])
        elif col.name == "token_hash":
            out.append("{u}" + v[8:])
        else:
            out.append(_brace(_copy_text(v)))
    return "\t".join(out)


@dataclass(frozen=True)
class Unit:
    index: int
    booth: int
    event: int
    day: date
    template: int


def code(space: int, n: int) -> str:
    return f"{space * 0x10000000 + n:08x}"


def layout(booths: int, events: int, days: int, templates: int, first: date = date(2026, 1, 5)) -> list[Unit]:
    per_event = booths // events
    out = []
    for b in range(booths):
        e = min(b // per_event, events - 1)
        start = first + timedelta(days=21 * e)
        for d in range(days):
            i = len(out)
            out.append(Unit(i, b, e, start + timedelta(days=d), i % templates))
    return out


def _mapping(u: Unit, t: Template, ids: dict) -> dict:
    m = {"u": code(1, u.index), "b": code(2, u.booth), "e": code(3, u.booth), "booth": ids["booth"][u.booth],
         "event": ids["booth_event"][u.booth],
         "f": CROCKFORD[u.index // 32 % 32] + CROCKFORD[u.index % 32]}
    for k in t.shifts:
        m["d%d" % (k + 1000)] = (u.day + timedelta(days=k)).isoformat()
    return m


def load(dsn_psycopg: str, templates: list[Template], units: list[Unit], *, events: int, booths: int,
         seed: int = 7, now: datetime, log=print) -> dict:
    """COPY everything into an empty, migrated central database. Returns row counts per table."""
    import psycopg

    counts: dict = {}
    ids = {"event": [str(uuid.UUID(code(4, e) + "-0000-7000-8000-000000000000")) for e in range(events)],
           "booth_event": [str(uuid.UUID(code(5, b) + "-0000-7000-8000-000000000000")) for b in range(booths)],
           "booth": [str(uuid.UUID(code(6, b) + "-0000-7000-8000-000000000000")) for b in range(booths)]}
    first_day = {}
    for u in units:
        first_day.setdefault(u.event, u.day)
    t0 = templates[0]
    with psycopg.connect(dsn_psycopg) as conn:
        conn.execute("SET session_replication_role = replica")
        with conn.cursor() as cur:
            def copy(table, cols, lines):
                n = 0
                with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
                    for chunk in lines:
                        cp.write(chunk)
                        n += chunk.count("\n")
                counts[table] = counts.get(table, 0) + n
                return n

            def rows_of(table, dict_rows):
                cols = list(dict_rows[0])
                yield "".join("\t".join(_copy_text(r[c]) for c in cols) + "\n" for r in dict_rows)

            # catalogue, events, booths, settings, staff references, lots
            events_rows = [{"id": ids["event"][e], "name": f"Marcha {e + 1}", "day": first_day[e], "place": "CDMX",
                            "timezone": "America/Mexico_City", "central_base_url": None, "central_event_id": None,
                            "version": 1, "created_at": now, "updated_at": now} for e in range(events)]
            per_event = booths // events
            for b in range(booths):
                e = min(b // per_event, events - 1)
                events_rows.append({**events_rows[e], "id": ids["booth_event"][b], "central_event_id": ids["event"][e]})
            copy("events", list(events_rows[0]), rows_of("events", events_rows))
            copy("booths", ["id", "event_id", "name", "setup_clock_skew_s", "slip_format", "printer_queue", "version",
                            "created_at", "updated_at"], rows_of("booths", [
                {"id": ids["booth"][b], "event_id": ids["booth_event"][b], "name": f"Módulo {b + 1}",
                 "setup_clock_skew_s": 0, "slip_format": "80mm", "printer_queue": None, "version": 1,
                 "created_at": now, "updated_at": now} for b in range(booths)]))
            have = {r[0] for r in conn.execute("SELECT code FROM kit_products")}
            products = [p for p in t0.products if p["code"] not in have]
            if products:
                copy("kit_products", list(products[0]), rows_of("kit_products", products))
            seen_dest, seen_staff, dests, staff = set(), set(), [], []
            for t in templates:
                dests += [d for d in t.destinations if d["id"] not in seen_dest and not seen_dest.add(d["id"])]
                staff += [s for s in t.staff if s["id"] not in seen_staff and not seen_staff.add(s["id"])]
            copy("destinations", list(dests[0]), rows_of("destinations", dests))
            copy("node_staff", list(staff[0]), rows_of("node_staff", staff))
            # each booth has its own copy of the templates' lots and of their signed settings (on its own event row)
            lots = {code(2, b) + str(lot["id"])[8:]: lot for b in range(booths) for t in templates for lot in t.lots}
            copy("kit_lots", list(t0.lots[0]), rows_of("kit_lots", [{**lot, "id": key} for key, lot in lots.items()]))
            settings_rows = [{**t.settings, "id": code(3, b) + str(t.settings["id"])[8:], "event_id": ids["booth_event"][b],
                              "number": n + 1} for b in range(booths) for n, t in enumerate(templates)]
            copy("clinical_settings", list(settings_rows[0]), rows_of("clinical_settings", settings_rows))
            conn.commit()
            log(f"  catalogue, {events} events, {booths} booths, lots and settings")

            for name in UNIT_TABLES:
                cols = templates[0].columns[name]

                def lines():
                    for u in units:
                        t = templates[u.template]
                        m = _mapping(u, t, ids)
                        yield "".join(s.format_map(m) + "\n" for s in t.lines[name])
                n = copy(name, cols, lines())
                conn.commit()
                log(f"  {name}: {n:,} rows")

            rng = random.Random(seed)
            link_cols = ["id", "referral_id", "status", "arrived_on", "confirm_result", "treatment_started_on",
                         "closed_reason", "closed_at", "recorded_by", "version", "created_at", "updated_at"]

            def linkage_lines():
                for u in units:
                    t = templates[u.template]
                    out = []
                    for i, (tail, disease) in enumerate(t.referrals):
                        if rng.random() >= 0.75:
                            continue
                        arrived = u.day + timedelta(days=min(45, int(rng.expovariate(1 / 12))))
                        result, treated, status = None, None, "arrived"
                        if rng.random() < 0.8:
                            result, status = POSITIVE[disease], "confirmed"
                            if rng.random() < 0.7:
                                treated, status = arrived + timedelta(days=rng.randint(0, 20)), "treatment_started"
                        else:
                            result, status = NEGATIVE[disease], "not_confirmed"
                        out.append("\t".join([
                            code(7, u.index) + tail, code(1, u.index) + tail, status, arrived.isoformat(),
                            result, treated.isoformat() if treated else r"\N", r"\N", r"\N", "L01", "2",
                            _copy_text(now), _copy_text(now)]) + "\n")
                    yield "".join(out)
            n = copy("linkages", link_cols, linkage_lines())
            conn.commit()
            log(f"  linkages: {n:,} rows")
        conn.execute("SET session_replication_role = DEFAULT")
        conn.commit()
    return counts


def digest(units: list[Unit]) -> str:
    return hashlib.sha256(repr(units).encode()).hexdigest()[:12]
