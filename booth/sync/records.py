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

    def decode(self, raw) -> dict:
        if not isinstance(raw, dict):
            raise RecordError("a record must be a JSON object")
        keys = set(raw)
        if keys != self.names:
            missing, extra = sorted(self.names - keys), sorted(keys - self.names)
            parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
                    ([f"unknown {', '.join(extra)}"] if extra else [])
            raise RecordError("; ".join(parts))
        out = {}
        for c in self.cols:
            out[c.name] = _decode(c, raw[c.name])
        if "version" in out and out["version"] < 1:
            raise RecordError("version must be 1 or more")
        return out


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
