"""What travels in a sync, and how a row becomes JSON and back (pure: no Flask, no request).

A *kind* is one table of synced records, pushed in the order below (parents before children). Every
record is a flat JSON object of the kind's columns: ids as hyphenated UUID text, times as ISO 8601 with
their UTC offset, days as ``YYYY-MM-DD``, JSON columns as they are. The **digest** of a record is the
SHA-256 of its canonical JSON (sorted keys, no spaces); two copies with the same id and version but a
different digest are a conflict.

Left out on purpose: PIN hashes, aliases, passwords, TOTP secrets, devices and their tokens, sessions,
enrollment codes, form nonces, rate-limit state and the node's secrets (they never leave the node); the
kit catalogue (same ids everywhere, owned by central and pulled); central-only columns.
"""
from __future__ import annotations

import hashlib
import json
import operator
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import sqlalchemy as sa

from booth.db import UTCDateTime


@dataclass(frozen=True)
class Kind:
    name: str                 # the name on the wire
    table: str                # the booth's table
    central_table: str = ""   # where central keeps it (default: the same table)
    columns: tuple = ()       # only these columns travel (default: every column but ``exclude``)
    exclude: tuple = ()
    versioned: bool = True    # False: append-only rows without a version column (version 1 on the wire)

    @property
    def target(self) -> str:
        return self.central_table or self.table


KINDS: tuple[Kind, ...] = (
    Kind("event", "events", exclude=("central_event_id",)),
    Kind("booth", "booths"),
    Kind("staff", "staff", central_table="node_staff",
         columns=("id", "code", "roles", "clinical_lead", "disabled_at", "version", "created_at", "updated_at")),
    Kind("clinical_settings", "clinical_settings"),
    Kind("destination", "destinations"),
    Kind("routing_rule", "routing_rules"),
    Kind("kit_lot", "kit_lots"),
    Kind("shift", "shifts"),
    Kind("visit", "visits"),
    Kind("consent", "consents"),
    Kind("screening", "screenings"),
    Kind("screening_result", "screening_results"),
    Kind("counseling", "counseling"),
    Kind("referral", "referrals"),
    Kind("linkage", "linkages"),
    Kind("stock_movement", "stock_movements"),
    Kind("qc_run", "qc_runs"),
    Kind("temperature_log", "temperature_logs"),
    Kind("day_closure", "day_closures"),
    Kind("audit_entry", "audit_entries", versioned=False),
)
# what a booth pulls from central: the shared catalogue, and the linkage of its own referrals (read-only)
PULL_KINDS: tuple[Kind, ...] = (
    Kind("kit_product", "kit_products"),
    Kind("destination", "destinations"),
    Kind("routing_rule", "routing_rules"),
    Kind("linkage", "linkages"),
    Kind("provisional_arrival", "provisional_arrivals"),
)
BY_NAME = {k.name: k for k in KINDS}
PULL_BY_NAME = {k.name: k for k in PULL_KINDS}
ORDER = {k.name: i for i, k in enumerate(KINDS)}
# records of a visit (what a purge removes once central has acknowledged them)
VISIT_KINDS = ("visit", "consent", "screening", "screening_result", "counseling", "referral", "linkage")
# central's shared catalogue, pulled by booths and never pushed by them
CATALOGUE = ("kit_product", "destination", "routing_rule")


def columns(metadata: sa.MetaData, kind: Kind) -> list[sa.Column]:
    table = metadata.tables[kind.table]
    if kind.columns:
        return [table.c[name] for name in kind.columns]
    return [c for c in table.columns if c.name not in kind.exclude]


def version_of(row: dict) -> int:
    return int(row.get("version") or 1)


# ---------------------------------------------------------------- encoding

def encode_value(value):
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def encode(row) -> dict:
    """A database row (mapping of column name → Python value) as a JSON-ready record."""
    return {k: encode_value(v) for k, v in row.items()}


def canonical(record: dict) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(record: dict) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


def id_hash(rid) -> int:
    return int.from_bytes(hashlib.sha256(str(rid).encode()).digest(), "big")


def ids_digest(ids, acc: int = 0) -> str:
    """The digest of a set of ids (hyphenated text): the XOR of their SHA-256, in hex. Both sides compute it
    for a receipt; being a XOR, it can be kept as a running value (``acc``) for ids a booth has purged."""
    for rid in ids:
        acc ^= id_hash(rid)
    return f"{acc:064x}"


# ---------------------------------------------------------------- decoding (central validates every field)

class RecordError(ValueError):
    """A malformed record: which field and why (the whole batch is refused, nothing written)."""


@dataclass
class Decoder:
    kind: Kind
    cols: list[sa.Column]
    names: frozenset = field(init=False)

    def __post_init__(self):
        self.names = frozenset(c.name for c in self.cols)
        self._order = [c.name for c in self.cols]
        self._converters = [_fast_column(c) for c in self.cols]

    def decode(self, raw) -> dict:
        """One record, every field checked by ``_decode``; RecordError says which field and why."""
        if not isinstance(raw, dict):
            raise RecordError("a record must be a JSON object")
        if raw.keys() != self.names:
            keys = set(raw)
            missing, extra = sorted(self.names - keys), sorted(keys - self.names)
            parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
                    ([f"unknown {', '.join(extra)}"] if extra else [])
            raise RecordError("; ".join(parts))
        out = {c.name: _decode(c, raw[c.name]) for c in self.cols}
        if "version" in out and out["version"] < 1:
            raise RecordError("version must be 1 or more")
        return out

    def decode_many(self, raws: list) -> list[dict]:
        """``[decode(raw) for raw in raws]``, a column at a time: each column's values are checked and
        converted together, mostly by the standard library's C code (a push decodes every field of every
        record: bench/sync.py). Anything out of the ordinary (a wrong type, a null, a non-ASCII text…) and
        the records go through ``decode`` one by one instead, which decides, and says why."""
        names = self.names
        try:
            if not all(type(raw) is dict and raw.keys() == names for raw in raws):
                raise _Unsure
            columns = [convert([raw[name] for raw in raws]) for name, convert in zip(self._order, self._converters)]
            rows = [dict(zip(self._order, values)) for values in zip(*columns)]
            if "version" in names and min((row["version"] for row in rows), default=1) < 1:
                raise _Unsure
            return rows
        except Exception:  # noqa: BLE001 - not the common case: the reference path decides
            return [self.decode(raw) for raw in raws]


class _Unsure(Exception):
    """A column's values are not all of the common case: ``_decode`` decides each of them."""


def _fast_column(col: sa.Column):
    """The common case of ``_decode`` for a whole column of values, built once per column: returns what
    ``_decode`` would give for each, or raises (anything) when one of them is not the common case.
    ``tests/sync/test_encoding.py`` checks the two against each other."""
    t, nullable = col.type, col.nullable
    UUID, utc = uuid.UUID, timezone.utc
    tzinfo = operator.attrgetter("tzinfo")

    if isinstance(t, sa.Uuid):
        def convert(vs):
            return list(map(UUID, vs)) if _only(vs, str) else _unsure()
    elif isinstance(t, UTCDateTime):
        def convert(vs):
            if not _only(vs, str):
                return _unsure()
            times = list(map(datetime.fromisoformat, vs))
            return [d.astimezone(utc) for d in times] if None not in set(map(tzinfo, times)) else _unsure()
    elif isinstance(t, sa.Date):
        def convert(vs):
            return list(map(date.fromisoformat, vs)) if _only(vs, str) and _only(map(len, vs), 10) else _unsure()
    elif isinstance(t, sa.Boolean):
        def convert(vs):
            return vs if _only(vs, bool) else _unsure()
    elif isinstance(t, sa.Integer):
        def convert(vs):
            return vs if _only(vs, int) and -(2**31 - 1) <= min(vs) and max(vs) <= 2**31 - 1 else _unsure()
    elif isinstance(t, sa.String):
        limit = t.length

        def convert(vs):
            if not _only(vs, str):
                return _unsure()
            text = "".join(vs)
            if not text.isascii():
                text.encode("utf-8")   # raises on a lone surrogate, as _decode does
            return vs if "\x00" not in text and not (limit and max(map(len, vs)) > limit) else _unsure()
    else:   # floats, JSON: every value through _decode (a few columns of small tables)
        def convert(vs):
            return [_decode(col, v) for v in vs]

    if isinstance(t, (sa.Float, sa.JSON)):
        return convert

    def with_nulls(vs):
        if not vs:
            return vs
        if None not in vs:
            return convert(vs)
        if not nullable:
            return _unsure()
        at = [i for i, v in enumerate(vs) if v is not None]
        out = [None] * len(vs)
        for i, v in zip(at, convert([vs[i] for i in at]) if at else []):
            out[i] = v
        return out

    return with_nulls


def _only(values, expected) -> bool:
    """Every value is of exactly this type (or, for an int, equal to it)."""
    if isinstance(expected, type):
        return set(map(type, values)) <= {expected}
    return set(values) <= {expected}


def _unsure():
    raise _Unsure


def _decode(col: sa.Column, value):
    name = col.name
    if value is None:
        if not col.nullable:
            raise RecordError(f"{name} may not be null")
        return None
    t = col.type
    try:
        if isinstance(t, sa.Uuid):
            if not isinstance(value, str):
                raise TypeError
            return uuid.UUID(value)
        if isinstance(t, UTCDateTime):
            if not isinstance(value, str):
                raise TypeError
            v = datetime.fromisoformat(value)
            if v.tzinfo is None:
                raise RecordError(f"{name} needs a UTC offset")
            return v.astimezone(timezone.utc)
        if isinstance(t, sa.Date):
            if not isinstance(value, str) or len(value) != 10:
                raise TypeError
            return date.fromisoformat(value)
        if isinstance(t, sa.Boolean):
            if not isinstance(value, bool):
                raise TypeError
            return value
        if isinstance(t, sa.Integer):
            if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 2**31 - 1:
                raise TypeError
            return value
        if isinstance(t, sa.Float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value \
                    or abs(value) > 1e9:
                raise TypeError
            return float(value)
        if isinstance(t, sa.String):
            if not isinstance(value, str) or "\x00" in value:
                raise TypeError
            value.encode("utf-8")   # a lone surrogate cannot be stored
            if t.length and len(value) > t.length:
                raise RecordError(f"{name} is longer than {t.length} characters")
            return value
        if isinstance(t, sa.JSON):
            if not isinstance(value, (dict, list)):
                raise TypeError
            text = json.dumps(value, ensure_ascii=False)
            text.encode("utf-8")
            if "\\u0000" in json.dumps(value):
                raise TypeError
            return value
    except RecordError:
        raise
    except (TypeError, ValueError, OverflowError, UnicodeError):
        raise RecordError(f"{name}: {type(t).__name__.lower()} expected") from None
    raise RecordError(f"{name}: unsupported column type")


def decoders(metadata: sa.MetaData, kinds=KINDS) -> dict[str, Decoder]:
    return {k.name: Decoder(k, columns(metadata, k)) for k in kinds}
