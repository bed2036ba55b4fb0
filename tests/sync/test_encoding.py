"""How records travel, fast: the booth's SQLite writes each pending record as JSON text, and central
decodes a batch a column at a time. Both must say exactly what the plain Python way says (``records.encode``
on the booth, ``records._decode`` field by field at central); and a push keeps two requests in flight,
so a batch can overtake the one before it and still nothing is lost."""
from __future__ import annotations

import json
import threading
import time
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from booth.extensions import db
from booth.sync import client, node, outbox
from booth.sync import records as R
from tests.sync.conftest import enrolled

AWKWARD = 'Clínica "Condesa" \\ 2º piso\n\ttab \u2028 🏳️‍🌈 </script>'


def pending(booth, reader) -> list:
    with booth.app_context():
        cursors, out = {}, []
        while True:
            batch = reader(db.session, db.metadata, cursors, 97)
            db.session.rollback()
            if not batch:
                return out
            out += batch


def test_sqlite_writes_the_json_python_would(make_booth, monkeypatch):
    """Every kind of a demo node, plus text that JSON must escape: the JSON SQLite writes decodes at central
    to exactly what ``records.encode`` of the same row decodes to, record for record, in the same order."""
    booth = make_booth(visits=40, seed=5)
    with booth.app_context():
        db.session.execute(text("UPDATE destinations SET name = :n"), {"n": AWKWARD})
        db.session.execute(text("UPDATE visits SET created_by = NULL WHERE seq % 3 = 0"))
        db.session.commit()
        decoders = R.decoders(db.metadata)
        conn = db.session.connection()
        by_sqlite = {k.name for k in R.KINDS if outbox._json_sql(conn, db.metadata, k) is not None}
        floats = {k.name for k in R.KINDS
                  if any(isinstance(c.type, db.Float) for c in R.columns(db.metadata, k))}
        db.session.rollback()
    assert by_sqlite == {k.name for k in R.KINDS} - floats      # only float columns are left to Python
    texts = pending(booth, outbox.next_batch_json)
    dicts = pending(booth, outbox.next_batch)
    assert len(texts) == len(dicts) > 500
    kinds = set()
    for raw, expected in zip(texts, dicts):
        item = json.loads(raw)
        assert item["kind"] == expected["kind"]
        decoder = decoders[item["kind"]]
        assert decoder.decode(item["row"]) == decoder.decode(expected["row"]), item["kind"]
        kinds.add(item["kind"])
    assert {"visit", "consent", "screening_result", "destination", "audit_entry", "temperature_log"} <= kinds
    assert AWKWARD in {json.loads(t)["row"].get("name") for t in texts}

    # central decodes these batches a column at a time: the field-by-field path is never needed
    from booth.sync import merge

    calls = []
    field_by_field = R.Decoder.decode
    monkeypatch.setattr(R.Decoder, "decode", lambda self, raw: calls.append(raw) or field_by_field(self, raw))
    with booth.app_context():
        for start in range(0, len(texts), 500):
            payload = json.loads(outbox._body(texts[start:start + 500], last=False))
            assert len(merge.decode_batch(db.metadata, payload)) == len(payload["records"])
    assert calls == []


def test_a_json_value_sqlite_cannot_read_back_goes_through_python(make_booth):
    booth = make_booth(visits=5, seed=1)
    with booth.app_context():
        db.session.execute(text("UPDATE visits SET key_populations = '[NaN]' WHERE seq = 1"))
        db.session.commit()
    assert len(pending(booth, outbox.next_batch_json)) == len(pending(booth, outbox.next_batch))


# ---------------------------------------------------------------- central's decoder, a column at a time

UUIDS = st.one_of(st.uuids().map(str), st.uuids().map(lambda u: u.hex), st.uuids().map(lambda u: "{%s}" % u),
                  st.uuids().map(lambda u: str(u).upper()), st.uuids().map(lambda u: "urn:uuid:%s" % u))
TIMES = st.one_of(st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
                  st.datetimes().map(lambda d: d.isoformat()),
                  st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat().replace("+00:00", "Z")))
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-2**31, 2**31), st.floats(allow_nan=True),
    st.text(st.characters(codec=None, exclude_categories=())),   # NUL, lone surrogates, …
    st.text(max_size=40), st.text(min_size=10, max_size=10), UUIDS, TIMES, st.dates().map(str),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _outcome(fn):
    try:
        return "ok", fn()
    except R.RecordError as e:
        return "refused", str(e)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_column_at_a_time_decodes_as_record_by_record(app, data):
    """``Decoder.decode_many`` (a column at a time, mostly C) against ``Decoder.decode`` (every field through
    ``_decode``) on batches of a kind where some fields take odd values: the same rows, of the same types,
    or the same refusal."""
    with app.app_context():
        decoders = R.decoders(db.metadata)
    kind = data.draw(st.sampled_from(sorted(decoders)))
    dec = decoders[kind]
    base = {c.name: _plausible(c) for c in dec.cols}
    raws = []
    for _ in range(data.draw(st.integers(1, 6))):
        raw = dict(base, id=str(uuid.uuid4()))
        for name in data.draw(st.lists(st.sampled_from(sorted(dec.names)), max_size=2)):
            raw[name] = data.draw(VALUES)
        raws.append(raw)
    many = _outcome(lambda: dec.decode_many(raws))
    one = _outcome(lambda: [dec.decode(raw) for raw in raws])
    assert many == one
    if many[0] == "ok":
        for got, expected in zip(many[1], one[1]):
            assert [type(v) for v in got.values()] == [type(v) for v in expected.values()]


def _plausible(col):
    """A value of the column's type that ``_decode`` accepts."""
    t = col.type
    if isinstance(t, db.Uuid):
        return str(uuid.uuid4())
    if isinstance(t, db.Boolean):
        return True
    if isinstance(t, db.Integer):
        return 1
    if isinstance(t, db.Float):
        return 4.5
    if isinstance(t, db.Date):
        return "2026-06-27"
    if isinstance(t, db.String):
        return "ok"
    if isinstance(t, db.JSON):
        return []
    return "2026-06-27T12:00:00-06:00"   # times


def test_a_record_is_decoded_as_before_and_refused_for_the_same_reason(app):
    with app.app_context():
        dec = R.decoders(db.metadata)["visit"]
        cols = dec.cols
    good = {c.name: None for c in cols}
    good.update({"id": str(uuid.uuid4()), "event_id": str(uuid.uuid4()), "booth_id": str(uuid.uuid4()),
                 "day": "2026-06-27", "seq": 1, "call_number": "A-001", "arrived_at": "2026-06-27T12:00:00-06:00",
                 "age_band": "25-29", "key_populations_asked": True, "key_populations": ["msm"], "version": 2,
                 "created_at": "2026-06-27T18:00:00+00:00", "updated_at": "2026-06-27T18:00:00Z"})
    row = dec.decode(good)
    assert row == {c.name: R._decode(c, good[c.name]) for c in cols}
    assert dec.decode_many([good, good]) == [row, row]
    assert row["arrived_at"].isoformat() == "2026-06-27T18:00:00+00:00"
    for field, value in [("seq", 2**31 - 1), ("seq", -(2**31 - 1)), ("call_number", "A" * 8),
                         ("created_by", None), ("age_band", "ñandú")]:
        assert dec.decode_many([good, {**good, field: value}])[1][field] == value
    for field, value, reason in [("seq", True, "seq: integer expected"),
                                 ("seq", 2**31, "seq: integer expected"),
                                 ("seq", -(2**31), "seq: integer expected"),
                                 ("seq", 1.0, "seq: integer expected"),
                                 ("arrived_at", "2026-06-27", "arrived_at needs a UTC offset"),
                                 ("day", "2026-06-27T12:00", "day: date expected"),
                                 ("arrived_at", "2026-06-27T12:00:00", "arrived_at needs a UTC offset"),
                                 ("call_number", "A" * 9, "call_number is longer than 8 characters"),
                                 ("age_band", "25\x0029", "age_band: string expected"),
                                 ("age_band", "25\ud80029", "age_band: string expected"),
                                 ("booth_id", "not-a-uuid", "booth_id: uuid expected"),
                                 ("day", None, "day may not be null"),
                                 ("version", 0, "version must be 1 or more")]:
        for decode in (dec.decode, lambda raw: dec.decode_many([good, raw])):
            try:
                decode({**good, field: value})
            except R.RecordError as e:
                assert str(e) == reason
            else:
                raise AssertionError(f"{field}={value!r} was accepted")


# ---------------------------------------------------------------- two requests in flight

class LateFirst(client.Transport):
    """Holds the push's first request back until the second has been answered: the second batch is applied
    at central before the first (as when the first request is lost on the way and sent again)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.pushes = 0
        self.second_answered = threading.Event()
        self.lock = threading.Lock()

    def post(self, endpoint, payload=None):
        if endpoint != "push":
            return super().post(endpoint, payload)
        with self.lock:
            self.pushes += 1
            n = self.pushes
        if n == 1:
            assert self.second_answered.wait(30)
            time.sleep(0.1)
        reply = super().post(endpoint, payload)
        if n == 2:
            self.second_answered.set()
        return reply


def test_a_batch_that_overtakes_the_one_before_loses_nothing(central, make_booth):
    booth = make_booth(visits=20, seed=2)
    enrolled(central, booth)
    with booth.app_context():
        transport = LateFirst(client.load_state(booth.instance_path), lambda: booth.clock.now().timestamp())
        report = node.push(db.session, transport, batch_size=60)
        held = sum(db.session.scalar(select(func.count()).select_from(db.metadata.tables[k.table])) for k in R.KINDS)
        receipt = node.receipt(db.session, transport)
        left = sum(outbox.pending_counts(db.session, db.metadata).values())
        db.session.rollback()
    # the second batch's visits and consents came before their event and booth: deferred, then sent again
    assert report.passes == 2
    assert report.deferred == 0 and report.quarantined == 0 and left == 0
    assert report.acked == held and report.sent == report.total == held
    assert receipt["match"] is True
    with central.app_context():
        assert db.session.scalar(select(func.count()).select_from(db.metadata.tables["visits"])) == 20
