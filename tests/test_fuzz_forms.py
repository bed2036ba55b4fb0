"""Fuzzing: every state-changing form of the booth node and of the central server's HTML side gets generated
malformed input, sent by an actor the authorization matrix lets through, with a valid session and CSRF token, so
that it reaches the code behind the checks.

The rule this file holds the app to (what it does today):

- **A malformed request is refused with a 4xx and a message**: 422 for a form that needs attention, 404 for an
  id or an action that does not exist (or that this actor may not see), 409 for a stale version, 401 for a wrong
  PIN, password or code, 413 for a body over the size limits. Never a 5xx, never a 3xx (a redirect would mean the
  input was taken), never the CSRF 400 or a 403/429 (that would mean the request did not reach the view). The
  body carries the message: an alert (``role="alert"``) with text, or the heading of the error or not-found page.
- **Nothing is written**: the rows of every table are the same before and after each example, apart from the
  bookkeeping a refusal may legitimately write (``BOOKKEEPING_*`` below: the audit entries of failed logins and of
  clinic lookups, the per-staff lockout counters, a session's last-seen time). The booth world is put back from a
  pristine copy (SQLite backup API) after any example that committed anything, so examples never see each other;
  central (PostgreSQL) is not put back (a write fails the test; the lockout counters are bookkeeping).
- **What "malformed" means**: each route's entry in ``BOOTH_FUZZ``/``CENTRAL_FUZZ`` lists the fields its form
  sends (and its URL arguments), each with well-formed and malformed values. Every example poisons at least one
  of them: a malformed value, a required field left out, a wrong id in the URL (a valid-looking UUID that does not
  exist, an id of another kind of record, a malformed one) or a stale version. The other fields get well-formed
  values (which the world's state may still refuse), other malformed values, nothing, or duplicated keys (the
  first copy counts for a single field, as in a browser). Every example also carries junk keys, and is sent as
  url-encoded, multipart or JSON (a JSON body leaves a form empty), sometimes as an htmx request.
  ``free`` fields are ones whose junk is legitimately ignored (navigation targets, the double-tap nonce, checkbox
  flags: present means on) and ``matters`` says when a field is read at all (a reason only for an invalid
  outcome); their junk goes in but never counts as the poison. A route the world's state refuses whatever it holds
  (``refused_by_state``: the sync screens of a node that is not enrolled, sign-off with nothing to sign) needs none.
- **One-tap routes with no input** (``TAP_ONLY``: switch user, shift, sign-out) have nothing to malform: their
  junk fields (and a ``next`` pointing off the node) must change nothing about the tap: a 303 to a path on the
  node, and only the tables the clean tap writes change (central's sign-out: the session ends, back to sign-in).

Routes under ``/api/sync/`` are the signed JSON API, fuzzed with schemathesis in ``tests/sync``; they are left
out here on purpose (``SYNC_PREFIX``). A new POST route without an entry fails ``test_every_*_post_route_is_fuzzed``.
Every bug the fuzz found is kept in ``REGRESSIONS`` as a fixed example, beside the same request made well-formed
(which is accepted: the refusal is about the malformed part).

``make test`` runs ``CI_EXAMPLES`` examples per route (the ``ci`` profile, capped so the file stays fast);
``bench/fuzz.py`` runs the ``bench`` profile (1,000 per route) and reports the totals.
"""
from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Callable
from urllib.parse import urlencode, urlsplit

import pyotp
import pytest
from flask import url_for
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from werkzeug.routing import BuildError

from booth.auth.models import Staff
from booth.extensions import db
from tests.test_authz_matrix import (BOOTH, BOOTH_ACTORS, CENTRAL, CENTRAL_ACTORS, CENTRAL_PASSWORD, CONSENT_ID,
                                     DESTINATION_ID, RUNNING_ID, TOKEN, VISIT_ID, actor_client, central_signin,
                                     central_staff, central_world, csrf_token)
from tests.test_authz_matrix import booth_world, booth_world_file  # noqa: F401 (fixtures)
from tests.test_csrf_headers import REFUSALS, central_post

SYNC_PREFIX = "/api/sync/"   # the signed JSON API: schemathesis, in tests/sync/test_api_fuzz.py
CI_EXAMPLES = 25             # per route in `make test`; bench/fuzz.py runs the `bench` profile (1,000)
COOKIES = ("vinculo_device", "vinculo_session", "vinculo_flask", "vinculo_lang")

# What a refusal may legitimately write.
BOOKKEEPING_AUDIT = {"login.failed", "login.failed_totp", "staff.locked",  # failed logins and the lockout
                     "referral.lookup_folio"}                               # every clinic lookup is audited
BOOKKEEPING_COLUMNS = {
    "staff": {"failed_attempts", "locked_until"},   # the per-staff lockout counts wrong PINs/passwords/codes
    "staff_sessions": {"last_seen_at"},            # every staff request touches its session (idle lock)
}

def examples() -> int:
    if os.environ.get("VINCULO_FUZZ_EXAMPLES"):
        return int(os.environ["VINCULO_FUZZ_EXAMPLES"])
    if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci":
        return CI_EXAMPLES
    return settings.default.max_examples


# ================================================================= values

SPECIAL = ["\x00", "a\x00b", "\u202eevil", "\u200b", "\ufeff", "\U0001F4A9", "e\u0301", "\u00b2", "\u0663",
           "\uff11\uff12", "\n", " \t ", "%00", "' OR '1'='1", "<script>alert(1)</script>", "{{7*7}}", "${7*7}",
           "../../etc/passwd", "None", "null", "undefined", "true", "[]", "{}", "0x1F", "1e309", "-1", "NaN", "inf",
           "-0", "9" * 40, "9" * 5000, "-" + "9" * 30, "\\", "//evil.example", "https://evil.example/",
           "javascript:alert(1)", "\u03a9" * 300, "\r\n\r\n", "\x7f", "\ufffd"]


def repeated(min_len: int, max_len: int | None = None):
    """Long strings, cheaply: one symbol (ASCII, accented, CJK, emoji) many times."""
    return st.builds(lambda c, n: c * n, st.sampled_from(["x", "\u00e9", "\u6f22", "\U0001F600", "9", "a "]),
                     st.integers(min_len, max_len or min_len + 300))


TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
JUNK = st.one_of(st.sampled_from(SPECIAL), TEXT, repeated(200, 20000),
                 st.integers(-10 ** 40, 10 ** 40).map(str), st.floats().map(str))
CLEAN = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789.-"), min_size=1, max_size=30) \
    .filter(lambda s: s.strip())


def as_int(value):
    """What booth.workflow.form_int makes of a value."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def as_float(value):
    try:
        return float(str(value).replace(",", "."))
    except ValueError:
        return None


def as_date(value):
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def as_form_date(value):
    """What a WTForms DateField makes of a value."""
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        return None


def as_uuid(value):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


# ================================================================= fields

Strategy = object  # a SearchStrategy, or a callable(facts) → SearchStrategy


class Facts(dict):
    """What the world holds (ids of every kind, versions, codes): well-formed values come from here."""

    def __repr__(self):
        return "facts"


@dataclass(frozen=True)
class Field:
    good: Strategy = None        # well-formed values (the world's state may still refuse them)
    bad: Strategy = None         # malformed values: the view must refuse them
    required: bool = False       # leaving it out is malformed
    many: bool = False           # read with getlist
    free: bool = False           # junk is legitimately ignored: never counts as the poison
    matters: Callable[[dict], bool] | None = None   # given the body, is this field read at all?
    same_as: str | None = None   # a confirmation field: well-formed = equal to that field


def sampled(values):
    return st.sampled_from(sorted(values)) if values else st.nothing()


def resolve(strategy, facts):
    if strategy is None:
        return st.nothing()
    return strategy(facts) if callable(strategy) and not isinstance(strategy, st.SearchStrategy) else strategy


def choice(values, *, required=False, empty_ok=False, many=False, matters=None) -> Field:
    """A radio, select or checkbox value: anything outside ``values`` is malformed."""
    allowed = set(values) | ({""} if empty_ok else set())
    return Field(good=st.sampled_from(tuple(values) + (("",) if empty_ok else ())),
                 bad=JUNK.filter(lambda v: v not in allowed), required=required, many=many, matters=matters)


def number(lo, hi, *, required=False, exclude=(), matters=None, parse=as_int) -> Field:
    def bad_value(v):
        if v == "" and not required:  # an empty optional number is left out (the default)
            return False
        n = parse(v)
        return n is None or n != n or not lo <= n <= hi or n in exclude
    return Field(good=st.integers(lo, hi).filter(lambda n: n not in exclude).map(str),
                 bad=st.one_of(JUNK, st.integers(-10 ** 30, 10 ** 30).map(str)).filter(bad_value),
                 required=required, matters=matters)


def text(limit, *, required=True, forbidden=(), matters=None) -> Field:
    """Free text of at most ``limit`` characters (after stripping): empty, blank or longer is malformed."""
    bad = [repeated(limit + 1, limit + 400)]
    if required:
        bad.append(st.sampled_from(["", " ", "\t\n", "\u3000"]))
    if forbidden:
        bad.append(st.sampled_from(forbidden))
    return Field(good=CLEAN.map(lambda s: s[:limit]), bad=st.one_of(*bad), required=required, matters=matters)


def record_id(kind: str, *, required=True) -> Field:
    """An id of a ``kind`` of record: the world's ones are well-formed; a random UUID, a malformed one or an id
    of another kind of record is malformed."""
    def good(facts):
        return st.sampled_from(facts["ids"][kind]) if facts["ids"][kind] else st.nothing()

    def bad(facts):
        mine = {as_uuid(v) for v in facts["ids"][kind]}
        others = [v for k, vs in facts["ids"].items() if k != kind for v in vs]
        malformed = st.uuids().map(lambda u: str(u)[:-1] + "g") | st.uuids().map(lambda u: str(u)[:35]) \
            | st.uuids().map(lambda u: str(u) + "0")
        return st.one_of(st.uuids().map(str), st.uuids().map(lambda u: u.hex.upper()), malformed,
                         st.sampled_from(others or ["0"]), JUNK).filter(
            lambda v: as_uuid(v) not in mine and (required or v != ""))  # an empty optional id is left out
    return Field(good=good, bad=bad, required=required)


def in_path(value: str) -> bool:
    """A value that stays one segment of the URL (a "/" makes another URL, which the router answers itself)."""
    return value != "" and "/" not in value


def arg(values) -> Field:
    """A URL argument from a fixed set (an action, a kind, a language)."""
    return Field(good=st.sampled_from(values), bad=JUNK.filter(lambda v: v not in values))


def date_field(*, required=False, good=None) -> Field:
    """A date the view parses: anything it cannot parse is malformed; parseable dates may still be refused."""
    return Field(good=good if good is not None else st.dates(date(2025, 1, 1), date(2027, 12, 31)).map(date.isoformat),
                 bad=st.one_of(JUNK, st.sampled_from(["2026-02-30", "2026-13-01", "27/06/2026", "2026-6-27",
                                                      "0000-01-01", "99999-01-01"])).filter(
                     lambda v: as_date(v) is None and (required or v != "")),
                 required=required)


FREE = Field(good=st.sampled_from(["/", "/visits", "//evil.example/", "https://evil.example/", "board", "yes"]),
             bad=JUNK, free=True)
FLAG = Field(good=st.sampled_from(["y", "yes", "on", "1", "true"]), bad=JUNK, free=True)
PIN_RE = re.compile(r"[0-9]{6}\n?")
KNOWN_PINS = {"731945", "482913", "582931"}   # the world's real PINs (tests/test_authz_matrix, tests/workflow)


def pin(*, required=True, same_as=None) -> Field:
    return Field(good=st.from_regex(r"\A[0-9]{6}\Z").filter(lambda p: p not in KNOWN_PINS),
                 bad=JUNK.filter(lambda v: not PIN_RE.fullmatch(v)), required=required, same_as=same_as)


def staff_code_field() -> Field:
    from booth.auth.services import CODE_RE, normalize_code
    return Field(good=lambda f: sampled(f["codes"]) | st.from_regex(r"\A[A-Z][0-9]{2}[A-Z]?\Z"),
                 bad=JUNK.filter(lambda v: not CODE_RE.match(normalize_code(v)) or len(v) > 12), required=True)


def tristate() -> Field:
    ok = ("yes", "no", "true", "false", "1", "0", "unknown", "")
    return Field(good=st.sampled_from(ok), bad=JUNK.filter(lambda v: v not in ok))


def version(kind: str) -> Field:
    """The version a card was rendered with: the current one is well-formed, another number is stale, anything
    that is not a number is malformed."""
    return Field(good=lambda f: st.sampled_from(f["versions"][kind]),
                 bad=lambda f: st.one_of(st.integers(-10 ** 20, 10 ** 20).map(str), JUNK).filter(
                     lambda v: v != "" and as_int(v) not in f["versions"][kind]))


# ================================================================= what each route is sent

@dataclass(frozen=True, repr=False)
class Fuzz:
    actor: str                                   # an actor the authorization matrix lets through
    fields: dict | Callable = field(default_factory=dict)   # or callable(facts) → dict
    args: dict = field(default_factory=dict)     # URL arguments
    refused_by_state: str = ""                   # the world's state refuses every request (why): no poison needed

    def __repr__(self):
        return f"Fuzz({self.actor!r})"

    def resolved_fields(self, facts) -> dict:
        return self.fields(facts) if callable(self.fields) else self.fields


# One-tap routes with no input at all: junk must change nothing about the tap.
TAP_ONLY = {
    "auth.logout": ("coordinator", "switch user: ends this device's session, whatever the body says"),
    "stock.shift": ("counselor", "signs on or off; only `next` is read, and it never leaves the node"),
    "central.signout": ("coordinator", "ends the session, whatever the body says"),
}

def intake_fields() -> dict:
    from booth.visits.models import AGE_BANDS, BENEFICIARY, GENDERS, KEY_POPULATIONS, LAST_TEST, SEX_AT_BIRTH
    return {"age_band": choice(AGE_BANDS, required=True), "gender_identity": choice(GENDERS, empty_ok=True),
            "sex_at_birth": choice(SEX_AT_BIRTH, empty_ok=True), "beneficiary": choice(BENEFICIARY, empty_ok=True),
            "last_test": choice(LAST_TEST, empty_ok=True), "first_time": tristate(),
            "known_hiv_positive": tristate(), "previous_hcv_treatment": tristate(),
            "treated_syphilis_before": tristate(), "exposure_72h": tristate(), "key_populations_asked": FLAG,
            "key_populations": choice(KEY_POPULATIONS, many=True)}


def booth_fuzz() -> dict[str, Fuzz]:
    from booth.counseling.models import TOPICS
    from booth.counseling.services import PRESET_MINUTES
    from booth.referrals.models import CLOSE_REASONS, CONFIRM_RESULTS, KINDS, REASONS, SERVES
    from booth.referrals.services import FORBIDDEN_WORDS
    from booth.screening.models import INVALID_REASONS
    from booth.settings.defaults import DISEASES, SAMPLE_TYPES
    from booth.stock.models import SUPPLIES
    from booth.stock.services import ADJUSTMENT_REASONS, QUARANTINE_REASONS
    from booth.visits.models import FINAL_STATES
    from booth.visits.services import CORRECTION_REASONS
    from booth.events.forms import COMMON_ZONES

    yes_no = ("yes", "no")
    outcomes = ("reactive", "non_reactive", "invalid")
    slip_words = tuple(f"Clínica {w.upper()} Norte" for w in FORBIDDEN_WORDS[:6]) + ("Hepatitis", "Sífilis")

    def settings_fields(facts):
        fields = {"diseases": choice(DISEASES, many=True, required=True),
                  "products": choice(facts["product_codes"], many=True),
                  "consent_es": text(4000), "consent_en": text(4000)}
        for d in DISEASES:
            fields[f"algorithm_{d}"] = choice(("one_test", "two_test"))
        for code in facts["product_codes"]:
            chosen = (lambda c: lambda body: c in (body.get("products") or []))(code)
            fields[f"read_from_{code}"] = number(0, 120, matters=chosen)
            fields[f"read_until_{code}"] = number(1, 1440, matters=chosen)
            fields[f"samples_{code}"] = choice(SAMPLE_TYPES, many=True, matters=chosen)
        return fields

    def day_close_fields(facts):
        fields = {}
        for v in facts["ids"]["visit"]:
            fields[f"final_{v}"] = choice(FINAL_STATES, required=True)
        for lot, expected in facts["lot_counts"].items():
            fields[f"count_{lot}"] = Field(good=st.sampled_from([str(expected), "0", str(expected + 1)]),
                                           bad=st.one_of(JUNK, st.integers(-10 ** 6, -1).map(str)).filter(
                                               lambda v: v != "" and (as_int(v) is None or as_int(v) < 0)),
                                           required=True)
            fields[f"reason_{lot}"] = Field(good=st.sampled_from(ADJUSTMENT_REASONS), bad=JUNK, free=True)
        return fields

    is_invalid = lambda body: body.get("outcome") in (None, "", "invalid")  # noqa: E731
    return {
        "core.set_language": Fuzz("enrolled", {"next": FREE}, args={"code": arg(("es", "en"))}),
        "setup.setup": Fuzz("empty node", {
            "event_name": text(120), "event_day": Field(
                good=st.dates(date(2025, 1, 1), date(2027, 12, 31)).map(date.isoformat),
                bad=JUNK.filter(lambda v: as_form_date(v) is None), required=True),
            "place": text(160), "timezone": choice(COMMON_ZONES, required=True), "booth_name": text(80),
            "central_base_url": Field(good=st.sampled_from(["", "https://central.example.org", "http://10.0.0.2:8000"]),
                                      bad=JUNK.filter(lambda v: v.strip() and "://" not in v)),
            "coordinator_code": staff_code_field(), "pin": pin(), "pin_confirm": pin(same_as="pin"),
            "browser_time_ms": FREE, "confirm_clock": FLAG}),
        "auth.enroll": Fuzz("not_enrolled", {
            "code": Field(good=st.from_regex(r"\A[0-9A-Z]{4}-[0-9A-Z]{4}\Z"),
                          bad=st.one_of(st.just(""), repeated(21)), required=True),
            "name": Field(good=CLEAN, bad=repeated(41))}),
        "auth.login": Fuzz("enrolled", {"code": staff_code_field(), "pin": pin(), "next": FREE}),
        "auth.unlock": Fuzz("idle_locked", {"pin": pin(), "next": FREE}),
        "auth.staff_add": Fuzz("coordinator", {
            "code": staff_code_field(), "alias": text(40, required=False),
            "roles": choice(("tester", "counselor", "coordinator", "clinic"), many=True, required=True),
            "clinical_lead": FLAG, "pin": pin(), "pin_confirm": pin(same_as="pin")}),
        "auth.staff_action": Fuzz("coordinator", args={"staff_id": record_id("staff"),
                                                       "action": arg(("unlock", "disable", "enable"))}),
        "auth.staff_pin": Fuzz("coordinator", {"pin": pin(), "pin_confirm": pin(same_as="pin")},
                               args={"staff_id": record_id("staff")}),
        "auth.devices_new_code": Fuzz("coordinator", {"kind": choice(("tablet", "display"))}),
        "auth.devices_revoke": Fuzz("coordinator", args={"device_id": record_id("device")}),
        "visits.create": Fuzz("tester", {**intake_fields(), "nonce": FREE}),
        "visits.update_intake": Fuzz("tester", {**intake_fields(), "version": version("visit")},
                                     args={"visit_id": record_id("visit")}),
        "visits.consent": Fuzz("tester", {"disease": choice(DISEASES, many=True, required=True,
                                                           matters=lambda b: b.get("all") != "yes"),
                                          "given": choice(yes_no, required=True), "all": FLAG,
                                          "language": choice(("es", "en"), empty_ok=True)},  # empty: the screen's language
                               args={"visit_id": record_id("visit")}),
        "visits.correct_consent": Fuzz("coordinator", {"given": choice(yes_no, empty_ok=True),
                                                       "reason": choice(CORRECTION_REASONS, required=True)},
                                       args={"consent_id": record_id("consent")}),
        "visits.close": Fuzz("tester", {"final_state": choice(FINAL_STATES, required=True), "version": version("visit")},
                             args={"visit_id": record_id("visit")}),
        "screening.start": Fuzz("tester", {"lot": record_id("lot"), "sample_type": choice(SAMPLE_TYPES, required=True),
                                           "slot": number(1, 60), "nonce": FREE},
                                args={"visit_id": record_id("visit")}),
        "screening.result": Fuzz("tester", {"outcome": choice(outcomes, empty_ok=True),
                                            "reason": choice(INVALID_REASONS, matters=is_invalid),
                                            "version": version("screening"), "from": FREE},
                                 args={"screening_id": record_id("screening")}),
        "screening.close_out": Fuzz("tester", {"reason": choice(INVALID_REASONS)},
                                    args={"screening_id": record_id("screening")}),
        "screening.correct": Fuzz("coordinator", {
            "outcome": choice(outcomes, empty_ok=True),
            "invalid_reason": choice(INVALID_REASONS, matters=lambda b: b.get("outcome") == "invalid"),
            "reason": choice(CORRECTION_REASONS, required=True)}, args={"result_id": record_id("result")}),
        "counseling.start": Fuzz("counselor", args={"visit_id": record_id("visit"), "kind": arg(("pre", "post"))}),
        "counseling.finish": Fuzz("counselor", {
            # empty: not answered (the post-test counseling refuses that for the result)
            "topics": choice(TOPICS, many=True), "result_given": choice(yes_no, empty_ok=True),
            "prep_interest": choice(yes_no, empty_ok=True), "pep_need": choice(yes_no, empty_ok=True),
            # nobody has tapped "start" in this world, so the minutes are needed
            "minutes": choice(tuple(map(str, PRESET_MINUTES)), required=True),
            **{f"supply_{item}": number(0, 100) for item in SUPPLIES}},
            args={"visit_id": record_id("visit"), "kind": arg(("pre", "post"))}),
        "counseling.correct": Fuzz("coordinator", {"reason": choice(CORRECTION_REASONS, required=True)},
                                   args={"counseling_id": record_id("counseling")}),
        "settings.update": Fuzz("coordinator", settings_fields),
        "settings.sign_off": Fuzz("lead", refused_by_state="the settings in force are signed: nothing to sign off"),
        "stock.receive": Fuzz("coordinator", {
            "product": record_id("product"), "expires_on": date_field(required=True),
            "lot_number": Field(good=st.from_regex(r"\A[A-Z0-9][A-Z0-9./-]{0,12}\Z"),
                                bad=st.one_of(JUNK, repeated(41)).filter(
                                    lambda v: not re.match(r"^[A-Za-z0-9][A-Za-z0-9./-]{0,39}$", v.strip())),
                                required=True),
            "quantity": number(1, 10000, required=True)}),
        "stock.adjust": Fuzz("coordinator", {"delta": number(-10000, 10000, required=True, exclude=(0,)),
                                             "reason": choice(ADJUSTMENT_REASONS, required=True)},
                             args={"lot_id": record_id("lot")}),
        "stock.quarantine": Fuzz("coordinator", {"reason": choice(QUARANTINE_REASONS, required=True)},
                                 args={"lot_id": record_id("lot")}),
        "stock.release": Fuzz("coordinator", args={"lot_id": record_id("lot")}),
        "stock.qc": Fuzz("tester", {"positive": choice(("ok", "fail"), required=True),
                                    "negative": choice(("ok", "fail"), required=True)},
                         args={"lot_id": record_id("lot")}),
        "stock.receive_supply": Fuzz("coordinator", {"item": choice(SUPPLIES, required=True),
                                                     "quantity": number(1, 100000, required=True)}),
        "stock.adjust_supply": Fuzz("coordinator", {"item": choice(SUPPLIES, required=True),
                                                    "delta": number(-100000, 100000, required=True, exclude=(0,)),
                                                    "reason": choice(ADJUSTMENT_REASONS, required=True)}),
        "stock.temperature": Fuzz("tester", {"celsius": number(-30, 60, required=True, parse=as_float)}),
        "day.close": Fuzz("coordinator", day_close_fields),
        "referrals.issue": Fuzz("counselor", {"reason": choice(REASONS, required=True),
                                              "destination": record_id("destination"),
                                              "valid_days": number(0, 90)},
                                args={"visit_id": record_id("visit")}),
        "referrals.print_slip": Fuzz("counselor", args={"referral_id": record_id("referral")}),
        "referrals.cancel": Fuzz("counselor", args={"referral_id": record_id("referral")}),
        "referrals.destinations_save": Fuzz("coordinator", {
            "id": record_id("destination", required=False),
            "name": text(120), "slip_name": text(80, forbidden=slip_words), "address": text(200, forbidden=slip_words),
            "hours": text(120), "phone": text(40), "what_to_bring": text(200, required=False, forbidden=slip_words),
            "kind": choice(KINDS, required=True), "serves": choice(SERVES), "reasons": choice(REASONS, many=True,
                                                                                             required=True),
            "open_days": choice(tuple("1234567"), many=True), "is_example": FLAG}),
        "referrals.destinations_rule": Fuzz("coordinator", {
            "destination": record_id("destination"), "reason": choice(REASONS, required=True),
            "beneficiary": choice(("yes", "no", "any")), "priority": number(1, 999), "open_today_only": FLAG}),
        "referrals.destinations_link_staff": Fuzz("coordinator", {
            "code": Field(good=lambda f: st.sampled_from(f["codes"]),
                          bad=lambda f: JUNK.filter(lambda v: v.strip().upper() not in f["codes"]), required=True)},
            args={"destination_id": record_id("destination")}),
        "referrals.printing": Fuzz("coordinator", {
            "slip_format": choice(("80mm", "a6"), required=True),
            "printer_queue": Field(good=st.from_regex(r"\A[A-Za-z0-9_.-]{1,20}\Z"),
                                   bad=JUNK.filter(lambda v: v.strip() and not re.fullmatch(r"[A-Za-z0-9_.-]{1,60}",
                                                                                            v.strip())))}),
        "clinic.lookup": Fuzz("clinic", {"folio": Field(good=lambda f: folios(f), bad=JUNK, required=True)}),
        "clinic.act": Fuzz("clinic", {
            "day": date_field(), "today": FLAG,
            "result": choice(CONFIRM_RESULTS, matters=lambda b: b.get("@action") == "confirmation"),
            "reason": choice(CLOSE_REASONS, matters=lambda b: b.get("@action") == "close")},
            args={"referral_id": record_id("referral"), "action": arg(("arrival", "confirmation", "treatment",
                                                                       "close"))}),
        "clinic.provisional": Fuzz("clinic", {
            "token": Field(good=lambda f: st.sampled_from(f["tokens"]) if f["tokens"] else st.nothing(),
                           bad=lambda f: st.one_of(JUNK, st.binary(min_size=24, max_size=24).map(b64)).filter(
                               lambda v: v and v not in f["tokens"])),
            "folio": Field(good=lambda f: folios(f), bad=JUNK.filter(lambda v: not folio_ok(v)),
                           matters=lambda b: not b.get("token")),
            "day": date_field(required=True, good=st.dates(date(2026, 3, 1), date(2026, 6, 27)).map(date.isoformat))}),
        # ------------------------------------------------------------- the sync screens (the signed API is in tests/sync)
        "sync.enroll": Fuzz("coordinator", {
            "central_url": Field(good=st.sampled_from(["http://127.0.0.1:9", "https://127.0.0.1:9/", "http://[::1]:9"]),
                                 bad=JUNK.filter(lambda v: not v.strip().startswith(("http://", "https://"))),
                                 required=True),
            "code": Field(good=st.from_regex(r"\A[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\Z"), bad=JUNK)},
            refused_by_state=NO_CENTRAL),
        **{e: Fuzz("coordinator", refused_by_state=NOT_ENROLLED)
           for e in ("sync.push", "sync.pull", "sync.check_receipt", "sync.bundle", "sync.bundle_receipt")},
        "sync.purge": Fuzz("coordinator", {"confirm": choice(("yes",), required=True)}),
    }


NO_CENTRAL = "no central server answers in this world (a refused connection on port 9)"
NOT_ENROLLED = "this node is not enrolled with a central server: only the enrolled exchange (tests/sync) goes further"


def central_fuzz() -> dict[str, Fuzz]:
    import zoneinfo

    booth = booth_fuzz()
    zones = ("America/Mexico_City", "America/Monterrey", "America/Tijuana", "America/Cancun", "UTC")
    known_zones = zoneinfo.available_timezones()
    pw_ok = lambda v: 12 <= len(v) <= 128  # noqa: E731
    password = Field(good=st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=12,
                                  max_size=40).filter(lambda v: v != CENTRAL_PASSWORD),
                     bad=st.one_of(JUNK, repeated(129)).filter(lambda v: not pw_ok(v)), required=True)
    totp = Field(good=lambda f: st.from_regex(r"\A[0-9]{6}\Z").filter(lambda v: v not in f["totp"]),
                 bad=JUNK.filter(lambda v: not re.fullmatch(r"\s*[0-9]{6}\s*", v)))
    return {
        "core.set_language": Fuzz("anonymous", {"next": FREE}, args={"code": arg(("es", "en"))}),
        "central.setup": Fuzz("empty server", {"code": staff_code_field(), "password": password,
                                               "password_confirm": Field(good=password.good, bad=password.bad,
                                                                         required=True, same_as="password")}),
        "central.signin": Fuzz("anonymous", {"code": staff_code_field(), "password": password, "totp": totp}),
        "central.totp_setup": Fuzz("pending", {"totp": Field(good=totp.good, bad=totp.bad, required=True)}),
        "clinic.lookup": booth["clinic.lookup"],
        "clinic.act": booth["clinic.act"],
        "clinic.provisional": booth["clinic.provisional"],
        "sync_admin.create_event": Fuzz("coordinator", {
            "day": date_field(required=True), "name": text(120), "place": text(160),
            "timezone": Field(good=st.sampled_from(zones), bad=JUNK.filter(lambda v: v not in known_zones),
                              required=True)}),
        "sync_admin.register_node": Fuzz("coordinator", {"event": record_id("event", required=False),
                                                         "name": text(80)}),
        "sync_admin.link_node": Fuzz("coordinator", {"event": record_id("event")}, args={"node_id": record_id("node")}),
        "sync_admin.revoke_node": Fuzz("coordinator", {"confirm": choice(("yes",), required=True)},
                                       args={"node_id": record_id("node")}),
        "sync_admin.resolve": Fuzz("coordinator", {"action": choice(("apply", "keep"), required=True)},
                                   args={"entry_id": record_id("quarantine")}),
    }


def b64(raw: bytes) -> str:
    import base64
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def folios(facts):
    """Well-formed folios (check symbol right) that are not the world's referrals."""
    from booth.referrals import codes
    body = st.text(st.sampled_from(codes.ALPHABET), min_size=8, max_size=8)
    return body.map(lambda b: codes.display(b + codes.check_symbol(b))).filter(
        lambda f: codes.normalize(f) not in facts["folios"])


def folio_ok(value) -> bool:
    from booth.referrals import codes
    return codes.is_valid(value)


# ================================================================= a malformed request

@dataclass
class Request:
    args: dict
    pairs: list          # (name, value), duplicates allowed
    encoding: str        # form | multipart | json
    htmx: bool
    poison: list         # what makes it malformed

    def describe(self) -> str:
        short = [(k[:40], (v[:60] + "…") if len(v) > 60 else v) for k, v in self.pairs]
        return f"args={self.args} encoding={self.encoding} htmx={self.htmx} poison={self.poison} body={short}"


@st.composite
def malformed(draw, spec: Fuzz, facts: dict) -> Request:
    fields = spec.resolved_fields(facts)
    encoding = draw(st.sampled_from(["form"] * 6 + ["multipart", "json"]))
    in_body = encoding != "json"
    slots = [("arg", n) for n in spec.args]
    slots += [("field", n) for n, f in fields.items() if not f.free and (in_body or f.required)]
    forced = draw(st.sampled_from(slots)) if slots else None

    args, poison = {}, []
    for name, f in spec.args.items():
        good = resolve(f.good, facts)
        bad = forced == ("arg", name) or good.is_empty or draw(st.sampled_from([False, False, False, True]))
        args[name] = draw(resolve(f.bad, facts).filter(in_path) if bad else good)
        if bad:
            poison.append(f"url {name}")

    values: dict[str, list] = {}
    modes: dict[str, str] = {}
    for name, f in fields.items():
        forced_here = forced == ("field", name)
        if forced_here:
            mode = draw(st.sampled_from(["bad", "dup"] + (["absent"] if f.required else [])))
        else:
            # mostly well-formed, so that the poison reaches the checks deep in the view and the service
            mode = draw(st.sampled_from(["good"] * 6 + ["absent", "absent", "bad", "dup"]))
        good, bad = resolve(f.good, facts), resolve(f.bad, facts)
        if mode == "good" and good.is_empty:
            mode = "absent"
        if f.same_as and mode == "good":
            first = values.get(f.same_as)
            values[name] = [first[0]] if first else [draw(good)]
        elif f.same_as and mode in ("bad", "dup"):
            other = (values.get(f.same_as) or [None])[0]
            values[name] = [draw(bad.filter(lambda v: v != other) | good.filter(lambda v: v != other))]
        elif mode == "good":
            values[name] = draw(st.lists(good, min_size=1, max_size=3)) if f.many else [draw(good)]
        elif mode == "bad":
            values[name] = [draw(bad)] if not f.many else draw(st.permutations(
                draw(st.lists(good, max_size=2)) + [draw(bad)]))
        elif mode == "dup":  # the first copy is the malformed one (a single field reads the first)
            values[name] = [draw(bad)] + draw(st.lists(st.one_of(good, bad), min_size=1, max_size=2))
        if mode != "absent":
            modes[name] = "bad" if mode in ("bad", "dup") else "good"
        else:
            modes[name] = "absent"

    seen = {n: (v if fields[n].many else v[0]) for n, v in values.items()} if in_body else {}
    seen.update({f"@{k}": v for k, v in args.items()})
    for name, f in fields.items():
        if f.free or (f.matters and not f.matters(seen)):
            continue
        if in_body and modes[name] == "bad":
            poison.append(name)
        elif f.required and (not in_body or modes[name] == "absent"):
            poison.append(f"{name} missing")
    if spec.refused_by_state and not poison:  # the world's state refuses it whatever it holds
        poison.append(spec.refused_by_state)
    assume(poison)

    extra = draw(st.lists(st.tuples(st.one_of(TEXT, st.sampled_from(["id", "__proto__", "csrf", "a[]", "x" * 300])),
                                    JUNK), max_size=3))
    for k, v in extra:
        if k and k not in fields and k != "csrf_token":
            values.setdefault(k, []).append(v)
    # any order of the keys; the copies of one key keep theirs (a single field reads the first)
    pairs = [(n, v) for n in draw(st.permutations(list(values))) for v in values[n]]
    return Request(args, pairs, encoding, draw(st.booleans()), poison)


# ================================================================= what the database holds

class SqliteState:
    """The booth world's rows, a pristine copy to put back, and PRAGMA data_version to know when anything
    was committed by the app's connections."""

    def __init__(self, path):
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA busy_timeout=5000")
        self.tables = {name: [c[1] for c in self.conn.execute(f'PRAGMA table_info("{name}")')]
                       for (name,) in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND "
                                                        "name NOT LIKE 'sqlite_%' AND name != 'alembic_version'")}
        self.pristine = sqlite3.connect(":memory:", check_same_thread=False)
        self.conn.backup(self.pristine)
        self.base = self.rows()
        self.mark = self.data_version()

    def data_version(self) -> int:
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def committed(self) -> bool:
        return self.data_version() != self.mark

    def rows(self) -> dict:
        return {t: filtered(t, cols, self.conn.execute(f'SELECT * FROM "{t}"').fetchall())
                for t, cols in self.tables.items()}

    def restore(self) -> None:
        self.pristine.backup(self.conn)
        self.mark = self.data_version()

    def close(self):
        self.conn.close()
        self.pristine.close()


class SqlAlchemyState:
    """Central (PostgreSQL): the same digest through the app's session; nothing to put back (bookkeeping only)."""

    def __init__(self, app):
        self.app = app
        self.base = self.rows()

    def committed(self) -> bool:
        return True

    def rows(self) -> dict:
        with self.app.app_context():
            return {t.name: filtered(t.name, [c.name for c in t.columns], db.session.execute(t.select()).all())
                    for t in db.metadata.sorted_tables}

    def restore(self) -> None:
        pass  # a write fails the test; bookkeeping is left out of the digest

    def close(self):
        pass


def filtered(table: str, cols: list, rows) -> list:
    skip = BOOKKEEPING_COLUMNS.get(table, set())
    out = []
    for row in rows:
        rec = dict(zip(cols, row))
        if table == "audit_entries" and rec.get("action") in BOOKKEEPING_AUDIT:
            continue
        out.append(repr(sorted((k, v) for k, v in rec.items() if k not in skip)))
    return sorted(out)


def changes(before: dict, after: dict) -> dict:
    out = {}
    for t in after:
        if before.get(t) != after[t]:
            added = [r for r in after[t] if r not in before.get(t, [])]
            gone = [r for r in before.get(t, []) if r not in after[t]]
            out[t] = {"added": added[:2], "removed": gone[:2]}
    return out


# ================================================================= answers

ALERT_RE = re.compile(r'<div class="alert alert--(?:error|warn)" role="alert">(.*?)</div>', re.S)
HEADING_RE = re.compile(r"<h1>(.*?)</h1>", re.S)


def message_of(response) -> str:
    body = response.get_data(as_text=True)
    if response.is_json:
        return str((response.get_json(silent=True) or {}).get("error") or "")
    m = ALERT_RE.search(body)
    if m is None and (response.status_code in (404, 413) or 'id="error"' in body):
        m = HEADING_RE.search(body)  # the error page, the clinic's not-found and provisional pages
    return re.sub(r"<[^>]+>|\s+", " ", m.group(1)).strip() if m else ""


def csrf_messages(app) -> set:
    """The CSRF refusal's message in every language of the app."""
    from flask_babel import force_locale, gettext

    with app.test_request_context():
        out = set()
        for code in app.config["LANGUAGES"]:
            with force_locale(code):
                out.add(gettext("The form expired or was sent from elsewhere. Reload the page and try again."))
        return out


class ErrorLog(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def last(self) -> str:
        if not self.records:
            return ""
        r = self.records[-1]
        return logging.Formatter().formatException(r.exc_info) if r.exc_info else r.getMessage()


# ================================================================= running one route

@dataclass
class Target:
    app: object
    endpoint: str
    spec: Fuzz
    facts: dict
    cookies: dict
    token: str
    state: object
    stats: Counter
    messages: Counter = field(default_factory=Counter)   # the refusals seen: how deep the fuzz got


def build(app, endpoint, args) -> str | None:
    with app.test_request_context():
        try:
            return url_for(endpoint, **args)
        except (BuildError, ValueError):
            return None


def client_for(target: Target):
    client = target.app.test_client()
    for name, value in target.cookies.items():
        client.set_cookie(name, value)
    return client


def send(target: Target, req: Request):
    url = build(target.app, target.endpoint, req.args)
    assume(url is not None)
    headers = {"X-CSRFToken": target.token}
    if req.htmx:
        headers["HX-Request"] = "true"
    client = client_for(target)
    if req.encoding == "json":
        body = {}
        for k, v in req.pairs:
            body.setdefault(k, []).append(v)
        return url, client.post(url, json=body, headers=headers)
    pairs = [("csrf_token", target.token)] + req.pairs
    if req.encoding == "multipart":
        return url, client.post(url, data=MultiDict(pairs), content_type="multipart/form-data", headers=headers)
    data = urlencode(pairs).encode()
    return url, client.post(url, data=data, content_type="application/x-www-form-urlencoded", headers=headers)


def check_refused(target: Target, req: Request, errors: ErrorLog) -> None:
    url, r = send(target, req)
    target.stats["inputs"] += 1
    target.stats[f"status {r.status_code}"] += 1
    what = f"{target.endpoint} POST {url} → {r.status_code}\n{req.describe()}"
    written = {}
    if target.state.committed():
        written = changes(target.state.base, target.state.rows())
        target.state.restore()  # the next example starts from the same world, whatever this one did
    if r.status_code >= 500:
        target.stats["server_errors"] += 1
        raise AssertionError(f"server error: {what}\n{errors.last()}")
    if written:
        target.stats["writes"] += 1
        raise AssertionError(f"a malformed request wrote to {sorted(written)}: {what}\n{written}")
    message = message_of(r)
    assert 400 <= r.status_code < 500, f"not refused: {what} {r.headers.get('Location', '')}"
    assert r.status_code not in (403, 429), f"did not reach the view: {what}"
    assert message not in csrf_messages(target.app), f"the CSRF check refused it (not the view): {what}"
    assert message, f"no message in the answer: {what}\n{r.get_data(as_text=True)[:600]}"
    target.messages[f"{r.status_code} {message[:100]}"] += 1


def run_route(target: Target) -> None:
    errors = ErrorLog()
    target.app.logger.addHandler(errors)

    @settings(max_examples=examples(), deadline=None, suppress_health_check=list(HealthCheck))
    @given(malformed(target.spec, target.facts))
    def fuzz(req):
        check_refused(target, req, errors)

    # one entry per route in hypothesis' example database (as hypothesis.stateful does), so a failure found in
    # bench/fuzz.py is replayed first by the next run of the same route
    fuzz.hypothesis.inner_test._hypothesis_internal_add_digest = \
        f"{target.app.config['ROLE']}:{target.endpoint}".encode()
    try:
        fuzz()
    finally:
        target.app.logger.removeHandler(errors)
        report(target)


def report(target: Target) -> None:
    """One JSON line per route for bench/fuzz.py, when VINCULO_FUZZ_REPORT names a file."""
    path = os.environ.get("VINCULO_FUZZ_REPORT")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"endpoint": target.endpoint, "role": target.app.config["ROLE"],
                                 **{k: target.stats[k] for k in ("inputs", "server_errors", "writes")},
                                 "statuses": {k[7:]: v for k, v in target.stats.items() if k.startswith("status ")},
                                 "refusals": dict(target.messages.most_common())}, ensure_ascii=False) + "\n")


# ================================================================= the booth world

def booth_facts(app, ids: dict) -> dict:
    """Ids of every kind of record in the world (well-formed values, and wrong ids of another kind)."""
    from booth.auth.models import Device, Staff
    from booth.counseling.models import Counseling
    from booth.referrals.models import Destination, Referral
    from booth.screening.models import Screening, ScreeningResult
    from booth.settings.models import KitProduct
    from booth.stock.models import KitLot
    from booth.visits import closing
    from booth.visits.models import Consent, Visit
    from booth.workflow import booth_day

    models = {"visit": Visit, "consent": Consent, "counseling": Counseling, "screening": Screening,
              "result": ScreeningResult, "referral": Referral, "destination": Destination, "lot": KitLot,
              "product": KitProduct, "staff": Staff, "device": Device}
    with app.test_request_context():
        out = Facts({"ids": {k: sorted(str(i) for i in db.session.scalars(select(m.id))) for k, m in models.items()}})
        out["versions"] = {"visit": sorted({str(v) for v in db.session.scalars(select(Visit.version))}),
                           "screening": sorted({str(v) for v in db.session.scalars(select(Screening.version))})}
        out["codes"] = sorted(db.session.scalars(select(Staff.code)))
        out["product_codes"] = sorted(db.session.scalars(select(KitProduct.code)))
        out["folios"] = set(db.session.scalars(select(Referral.folio)))
        out["tokens"] = [ids[TOKEN]] if TOKEN in ids else []
        bd = booth_day()
        out["named"] = {FRESH: ids_of(Visit, Visit.seq == 2), DUO: ids_of(KitLot, KitLot.lot_number == "L-BIO1")}
        out["lot_counts"] = {str(lc.lot.id): lc.expected for lc in closing.lots_to_count(db.session, bd.booth.id)}
    return out


def ids_of(model, *where) -> str:
    return str(db.session.scalar(select(model.id).where(*where)))


def add_to_world(app, clock) -> None:
    """Beyond the authorization matrix's world: a visit with no consent yet (so consent, counseling and
    intake have something to take) and a lot in quarantine (so release has one)."""
    from booth.auth.services import staff_by_code
    from booth.stock import services as stock
    from booth.stock.models import KitLot
    from booth.visits import services as visits
    from booth.workflow import booth_day

    with app.test_request_context():
        bd = booth_day()
        tester = staff_by_code(db.session, "T01")
        visits.register_visit(db.session, booth=bd.booth, intake=visits.Intake(age_band="30-34"), now=clock.now(),
                              actor=tester)
        lot = db.session.scalar(select(KitLot).where(KitLot.lot_number == "L-ORA1"))
        stock.quarantine(db.session, lot, reason="temperature", now=clock.now(), actor=tester)
        db.session.commit()


def relax_rate_limits(app) -> None:
    # the limits are read per request: the fuzz must reach the view, not the limiter
    app.config["LOGIN_RATE_LIMIT"] = app.config["LOOKUP_RATE_LIMIT"] = "1000000 per minute"
    app.config["SYNC_TIMEOUT_S"] = 2


def booth_target(request, endpoint: str, spec: Fuzz, clock) -> Target:
    if spec.actor == "empty node":
        app = request.getfixturevalue("app")
        relax_rate_limits(app)
        client = app.test_client()
        token = csrf_token(client, "/setup")
        facts = Facts({"ids": {}, "codes": [], "versions": {}})
    else:
        world = request.getfixturevalue("booth_world")
        app = world.app
        relax_rate_limits(app)
        add_to_world(app, clock)
        facts = booth_facts(app, world.ids)
        client = actor_client(world, clock, spec.actor)
        token = csrf_token(client, world.csrf_page(spec.actor))
    cookies = {n: c.value for n in COOKIES if (c := client.get_cookie(n)) is not None}
    path = app.config["SQLALCHEMY_DATABASE_URI"][len("sqlite:///"):]
    return Target(app, endpoint, spec, facts, cookies, token, SqliteState(path), Counter())


# ================================================================= the tests

BOOTH_FUZZ = booth_fuzz()
CENTRAL_FUZZ = central_fuzz()


def fuzzed_posts(app) -> set[str]:
    """Every POST route except the signed sync API (schemathesis covers it in tests/sync)."""
    return {r.endpoint for r in app.url_map.iter_rules()
            if "POST" in r.methods and not r.rule.startswith(SYNC_PREFIX)}


def assert_every_post_fuzzed(app, table: dict, matrix: dict, actors: tuple, where: str) -> None:
    missing = fuzzed_posts(app) - set(table) - set(TAP_ONLY)
    assert not missing, f"POST route(s) {sorted(missing)} have no fuzz strategy: add them to {where}"
    taps = {e: Fuzz(actor) for e, (actor, _why) in TAP_ONLY.items() if e in fuzzed_posts(app)}
    for endpoint, spec in {**table, **taps}.items():
        # the actor is one the authorization matrix lets through ("empty node", "empty server" and "pending",
        # right after a correct password, are states of a browser the matrix has no column for)
        if spec.actor in actors:
            assert dict(zip(actors, matrix[endpoint].post))[spec.actor] not in REFUSALS, endpoint


def test_every_booth_post_route_is_fuzzed(app):
    assert_every_post_fuzzed(app, BOOTH_FUZZ, BOOTH, BOOTH_ACTORS, "booth_fuzz()")


def test_every_central_post_route_is_fuzzed(pg_app):
    assert_every_post_fuzzed(pg_app, CENTRAL_FUZZ, CENTRAL, CENTRAL_ACTORS, "central_fuzz()")


def test_a_new_post_route_without_a_strategy_fails(app):
    from booth.auth.access import role_required
    from booth.auth.models import Role

    app.add_url_rule("/api/sync/brand-new", "sync_brand_new", lambda: "new", methods=["POST"])
    assert_every_post_fuzzed(app, BOOTH_FUZZ, BOOTH, BOOTH_ACTORS, "booth_fuzz()")  # the sync API is left out
    app.add_url_rule("/brand-new", "brand_new", role_required(Role.TESTER)(lambda: "new"), methods=["POST"])
    with pytest.raises(AssertionError, match=r"\['brand_new'\] have no fuzz strategy"):
        assert_every_post_fuzzed(app, BOOTH_FUZZ, BOOTH, BOOTH_ACTORS, "booth_fuzz()")


@pytest.mark.parametrize("endpoint", sorted(BOOTH_FUZZ))
def test_booth_form_refuses_malformed_input(endpoint, request, clock):
    target = booth_target(request, endpoint, BOOTH_FUZZ[endpoint], clock)
    try:
        run_route(target)
    finally:
        target.state.close()
    assert target.stats["inputs"] >= min(examples(), 20)


def central_target(pg_app, clock, endpoint: str, spec: Fuzz) -> Target:
    relax_rate_limits(pg_app)
    if spec.actor == "empty server":
        client, page = pg_app.test_client(), "/central/setup"
    elif spec.actor == "pending":
        client, _url, _body, page, _changes = central_post("central.totp_setup", pg_app, clock)
    else:
        client, page = central_world(pg_app, clock, spec.actor)  # central holds no referral yet
    token = csrf_token(client, page)
    cookies = {n: c.value for n in COOKIES if (c := client.get_cookie(n)) is not None}
    with pg_app.app_context():
        from booth.events import services as events
        from booth.events.models import Event
        from booth.sync import services as sync
        from booth.sync.models import SyncNode

        if spec.actor == "coordinator":  # an event and a node for the sync screens
            event = events.create_event(db.session, name="Marcha", day=clock.now().date(), place="CDMX",
                                        timezone="America/Mexico_City", now=clock.now())
            sync.register_node(db.session, name="Módulo 1", event=event, now=clock.now())
            db.session.commit()
        ids = {"event": [str(i) for i in db.session.scalars(select(Event.id))],
               "node": [str(i) for i in db.session.scalars(select(SyncNode.id))],
               "referral": [], "destination": [], "quarantine": [], "staff": [
                   str(i) for i in db.session.scalars(select(Staff.id))]}
        # the codes a TOTP app shows now, which a guess must not hit by chance
        secrets = [s for s in db.session.scalars(select(Staff.totp_secret)) if s]
    totp = {pyotp.TOTP(s).at(clock.now() + timedelta(seconds=d)) for s in secrets for d in (-30, 0, 30)}
    facts = Facts({"ids": ids, "codes": ["C01", "CLI1"], "folios": set(), "tokens": [], "totp": totp})
    return Target(pg_app, endpoint, spec, facts, cookies, token, SqlAlchemyState(pg_app), Counter())


@pytest.mark.parametrize("endpoint", sorted(CENTRAL_FUZZ))
def test_central_form_refuses_malformed_input(endpoint, pg_app, clock):
    target = central_target(pg_app, clock, endpoint, CENTRAL_FUZZ[endpoint])
    run_route(target)
    assert target.stats["inputs"] >= min(examples(), 20)


# ---------------------------------------------------------------- one-tap routes

def tables_written(state, before) -> set:
    return set(changes(before, state.rows()))


@pytest.mark.parametrize("endpoint", ["auth.logout", "stock.shift"])
def test_booth_one_tap_route_ignores_junk(endpoint, request, clock):
    actor, _why = TAP_ONLY[endpoint]
    target = booth_target(request, endpoint, Fuzz(actor), clock)
    try:
        client = client_for(target)
        r = client.post(build(target.app, endpoint, {}), data={"csrf_token": target.token})
        assert r.status_code == 303
        clean = tables_written(target.state, target.state.base)
        target.state.restore()
        assert clean, "the clean tap writes something"

        @settings(max_examples=examples(), deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.lists(st.tuples(st.one_of(TEXT, st.just("next")), JUNK), max_size=4), st.booleans())
        def fuzz(pairs, htmx):
            target.stats["inputs"] += 1
            req = Request({}, [(k, v) for k, v in pairs if k and k != "csrf_token"], "form", htmx, ["junk"])
            url, r = send(target, req)
            target.stats[f"status {r.status_code}"] += 1
            assert r.status_code < 500, req.describe()
            written = tables_written(target.state, target.state.base)
            target.state.restore()
            if htmx and r.status_code == 204:
                location = r.headers.get("HX-Redirect", "")
            else:
                assert r.status_code == 303, req.describe()
                location = r.headers["Location"]
            assert urlsplit(location).netloc in ("", "localhost") and not location.startswith("//"), location
            assert written == clean, f"{written} ≠ {clean}: {req.describe()}"
        fuzz()
    finally:
        target.state.close()
        report(target)


def test_central_sign_out_ignores_junk(pg_app, clock):
    """Sign-out has no input: whatever else the body holds, the session ends and the answer is the sign-in page."""
    target = Target(pg_app, "central.signout", Fuzz("coordinator"), Facts(), {}, "", None, Counter())
    secret = central_staff(pg_app, clock, "C01", ["coordinator"])

    @settings(max_examples=examples(), deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(st.one_of(TEXT, st.just("next")), JUNK), max_size=4), st.booleans())
    def fuzz(pairs, htmx):
        clock.advance(seconds=30)  # a TOTP code signs in once: each example signs in with the next one
        client = central_signin(pg_app, clock, "C01", secret)
        token = csrf_token(client, "/")
        body = MultiDict([("csrf_token", token)] + [(k, v) for k, v in pairs if k and k != "csrf_token"])
        r = client.post("/signout", data=body, headers={"HX-Request": "true"} if htmx else {})
        target.stats["inputs"] += 1
        target.stats[f"status {r.status_code}"] += 1
        assert r.status_code < 500
        location = r.headers.get("HX-Redirect") if r.status_code == 204 else r.headers.get("Location")
        assert r.status_code in (204, 303) and urlsplit(location).path == "/signin", (r.status_code, location)
        assert client.get("/").status_code == 302, "the session ended"
    try:
        fuzz()
    finally:
        report(target)


def test_the_harness_sees_writes(request, clock):
    """The checks are not vacuous: well-formed requests are written and fail them (a temperature; a language
    switch, which the node remembers for the device), and the world is put back after each."""
    target = booth_target(request, "stock.temperature", BOOTH_FUZZ["stock.temperature"], clock)
    try:
        with pytest.raises(AssertionError, match=r"wrote to \['audit_entries', 'temperature_logs'\]"):
            check_refused(target, Request({}, [("celsius", "21,5")], "form", False, ["none"]), ErrorLog())
        assert not target.state.committed() and target.state.rows() == target.state.base, "the world was put back"
        target.endpoint = "core.set_language"
        with pytest.raises(AssertionError, match=r"wrote to \['devices'\]"):
            check_refused(target, Request({"code": "en"}, [("next", "/")], "form", False, ["none"]), ErrorLog())
        assert target.stats["writes"] == 2
    finally:
        target.state.close()


# ---------------------------------------------------------------- size limits

def test_a_body_over_the_size_limit_is_refused_and_writes_nothing(request, clock):
    target = booth_target(request, "stock.temperature", BOOTH_FUZZ["stock.temperature"], clock)
    try:
        client = client_for(target)
        big = "x" * (target.app.config["MAX_CONTENT_LENGTH"] + 1)
        r = client.post("/stock/temperature", data={"csrf_token": target.token, "celsius": big},
                        headers={"X-CSRFToken": target.token})
        assert r.status_code == 413 and message_of(r)
        assert not target.state.committed() or not changes(target.state.base, target.state.rows())
    finally:
        target.state.close()


# ---------------------------------------------------------------- what the fuzz found, kept as examples

FRESH, DUO, RUNNING_VERSION = "<a fresh visit id>", "<the bioline-duo lot id>", "<the running device's version>"
PRIORITY_OK = [("destination", DESTINATION_ID), ("reason", "prep")]
DESTINATION = [("name", "Centro 5"), ("slip_name", "Centro 5"), ("address", "Calle 1"), ("hours", "9-14"),
               ("phone", "55 1"), ("kind", "family_clinic"), ("reasons", "prep")]
SETTINGS = [("diseases", "hiv"), ("products", "determine-hiv"), ("read_from_determine-hiv", "15"),
            ("read_until_determine-hiv", "60"), ("samples_determine-hiv", "fingerstick"), ("consent_es", "Sí"),
            ("consent_en", "Yes")]
DAY_CLOSE = "<every visit and lot of the day, well-formed>"

# endpoint, actor, URL arguments, the malformed body (as found), the same body made well-formed (it is accepted:
# so the refusal is about the malformed part), how it is sent, what the app did before the fix
REGRESSIONS = [
    ("visits.consent", "tester", {"visit_id": FRESH}, [("all", "yes"), ("given", "\x00")],
     [("all", "yes"), ("given", "no")], "form", "a junk answer was recorded as a refusal of every test"),
    ("visits.correct_consent", "coordinator", {"consent_id": CONSENT_ID}, [("given", "\x00"), ("reason", "wrong_entry")],
     [("given", "no"), ("reason", "wrong_entry")], "form", "a junk answer removed the consent"),
    ("visits.close", "tester", {"visit_id": VISIT_ID}, [("final_state", "done"), ("version", "\x00")],
     [("final_state", "done")], "form", "a version that is not a number skipped the stale-write check"),
    ("visits.update_intake", "tester", {"visit_id": VISIT_ID}, [("age_band", "30-34"), ("version", "v2")],
     [("age_band", "30-34")], "form", "a version that is not a number skipped the stale-write check"),
    ("screening.result", "tester", {"screening_id": RUNNING_ID},
     [("outcome", "invalid"), ("reason", "read_too_early"), ("version", "x")],
     [("outcome", "invalid"), ("reason", "read_too_early"), ("version", RUNNING_VERSION)], "form",
     "a version that is not a number skipped the stale-write check"),
    ("screening.start", "tester", {"visit_id": VISIT_ID}, [("lot", DUO), ("sample_type", "fingerstick"), ("slot", "A")],
     [("lot", DUO), ("sample_type", "fingerstick"), ("slot", "7")], "form",
     "a tray slot that is not a number took the first free slot"),
    ("counseling.finish", "counselor", {"visit_id": VISIT_ID, "kind": "post"},
     [("result_given", "yes"), ("minutes", "10"), ("prep_interest", "maybe")],
     [("result_given", "yes"), ("minutes", "10"), ("prep_interest", "yes")], "form",
     "a junk answer to PrEP interest was stored as unanswered"),
    ("referrals.issue", "counselor", {"visit_id": VISIT_ID},
     [("reason", "prep"), ("destination", DESTINATION_ID), ("valid_days", "-739794")],
     [("reason", "prep"), ("destination", DESTINATION_ID), ("valid_days", "30")], "form",
     "500: the date overflowed (OverflowError)"),
    ("referrals.destinations_save", "coordinator", {}, DESTINATION + [("open_days", "\u00b2")],
     DESTINATION + [("open_days", "2")], "form", "500: int('²') after str.isdigit() said yes"),
    ("referrals.destinations_save", "coordinator", {}, DESTINATION + [("open_days", "9")],
     DESTINATION + [("open_days", "6")], "form", "an unknown opening day was dropped and the rest saved"),
    ("referrals.destinations_rule", "coordinator", {}, PRIORITY_OK + [("priority", "high")],
     PRIORITY_OK + [("priority", "5")], "form", "a priority that is not a number became 100"),
    ("settings.update", "coordinator", {}, SETTINGS + [("algorithm_syphilis", "three_test")], SETTINGS, "form",
     "an unknown algorithm for a disease not offered was stored in the draft"),
    ("settings.update", "coordinator", {}, SETTINGS + [("diseases", "flu")], SETTINGS, "form",
     "an unknown disease was dropped and the rest saved"),
    ("stock.adjust_supply", "coordinator", {}, [("item", "condom"), ("delta", "9" * 40), ("reason", "damaged")],
     [("item", "condom"), ("delta", "9"), ("reason", "damaged")], "form",
     "500: the number did not fit SQLite's INTEGER (OverflowError)"),
    ("day.close", "coordinator", {}, [("\r", "\x00"), ("<finals>", DAY_CLOSE)], [("\r", "\x00"), ("<all>", DAY_CLOSE)],
     "multipart", "500: a multipart part without a name (Werkzeug gives None) broke key.startswith()"),
]


def regression_ids(target: Target, request) -> dict:
    world = request.getfixturevalue("booth_world")
    from booth.screening.models import Screening
    with target.app.app_context():
        version = str(db.session.get(Screening, uuid.UUID(world.ids[RUNNING_ID])).version)
    return {**world.ids, **target.facts["named"], RUNNING_VERSION: version}


def expand(pairs, ids, facts) -> list:
    out = []
    for k, v in pairs:
        if k in ("<all>", "<finals>"):  # a final state for every visit (and every lot counted as expected)
            out += [(f"final_{v}", "done") for v in facts["ids"]["visit"]]
            out += [(f"count_{lot}", str(n)) for lot, n in facts["lot_counts"].items()] if k == "<all>" else []
        else:
            out.append((k, ids.get(v, v)))
    return out


@pytest.mark.parametrize("endpoint,actor,args,bad,good,encoding,before",
                         [pytest.param(*r, id=f"{r[0]}-{n}") for n, r in enumerate(REGRESSIONS)])
def test_booth_regression(endpoint, actor, args, bad, good, encoding, before, request, clock):
    """Each found bug: the malformed request is refused and writes nothing; the same request made well-formed is
    accepted (so the refusal is about the malformed part, not the world)."""
    target = booth_target(request, endpoint, Fuzz(actor), clock)
    try:
        ids = regression_ids(target, request)
        url_args = {k: ids.get(v, v) for k, v in args.items()}
        check_refused(target, Request(url_args, expand(bad, ids, target.facts), encoding, False, [before]), ErrorLog())
        _url, r = send(target, Request(url_args, expand(good, ids, target.facts), encoding, False, []))
        assert r.status_code == 303, (r.status_code, message_of(r))
        assert target.state.committed() and changes(target.state.base, target.state.rows())
    finally:
        target.state.close()


def test_central_signin_with_nul_in_the_code_is_refused(pg_app, clock):
    """Found by the fuzz: PostgreSQL refuses a NUL in a text parameter, and the sign-in looked the code up (500)."""
    target = central_target(pg_app, clock, "central.signin", CENTRAL_FUZZ["central.signin"])
    bad = [("code", "C\x0001"), ("password", "x" * 12), ("totp", "000000")]
    check_refused(target, Request({}, bad, "form", False, ["code"]), ErrorLog())
