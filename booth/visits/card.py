"""Everything the visit card shows, computed once: one template renders every state of a visit."""
from __future__ import annotations

import re
from dataclasses import dataclass

from flask import render_template, request
from flask_babel import get_locale

from booth.auth.access import current_staff
from booth.auth.models import Role
from booth.core.idempotency import new_nonce
from booth.counseling import services as counseling
from booth.counseling.models import TOPICS
from booth.extensions import db
from booth.screening import algorithm
from booth.screening.models import INVALID_REASONS
from booth.settings import services as settings_services
from booth.stock import services as stock
from booth.stock.models import SUPPLIES
from booth.visits import queries, services
from booth.visits.models import Visit
from booth.workflow import booth_day


@dataclass
class StartOption:
    disease: str
    second: bool
    products: list     # [(product, suggested lot or None, lots)]
    repeat: bool = False  # only invalid devices so far: a new device


def start_options(view: queries.VisitView, bd) -> list[StartOption]:
    if bd.settings is None or view.visit.final_state or bd.locked:
        return []
    products = settings_services.products_by_code(db.session)
    running_targets = {d for s in view.running for d in s.product.targets}
    lots_of: dict | None = None          # product id → usable lots, read once per card (one query)
    out = []
    for disease, derived in view.conclusions.items():
        if derived.next_step is None or disease in running_targets:
            continue
        consent = services.active_consent(view.visit, disease)
        if consent is None or not consent.given:
            continue
        second = derived.next_step is algorithm.NextStep.SECOND_TEST
        options = []
        for code in bd.settings.content.get("products", {}):
            p = products.get(code)
            if p is None or disease not in p.targets or (second and code == derived.first_product):
                continue
            if lots_of is None:
                lots_of = stock.usable_lots_by_product(
                    db.session, [p.id for c, p in products.items() if c in bd.settings.content.get("products", {})],
                    bd.today)
            lots = lots_of.get(p.id, [])
            options.append((p, lots[0] if lots else None, lots))
        options.sort(key=lambda o: (o[1] is None, o[0].is_dual, o[0].name))
        out.append(StartOption(disease, second, options, repeat=derived.next_step is algorithm.NextStep.REPEAT))
    return out


def can_correct(entry_author: str | None, recorded_at, bd) -> bool:
    staff = current_staff()
    if staff is None:
        return False
    if staff.has_role(Role.COORDINATOR):
        return True
    return (not bd.locked and staff.code == entry_author and bd.now - recorded_at <= services.AUTHOR_GRACE)


# Runs of blank lines and indentation left by the template: the card is sent after every tap.
_BLANKS = re.compile(r"[ \t]*\n\s*")


def post_test_ready(view: queries.VisitView, options: list[StartOption], consents_missing: list) -> bool:
    """Post-test counseling is offered once consent is settled, no device is developing, and either a
    device has been read or no test can be started (refused, known positive, no usable lot)."""
    startable = any(lot is not None for o in options for _p, lot, _lots in o.products)
    return not consents_missing and not view.running and (bool(view.screenings) or not startable)


def render_card(visit: Visit, *, status: int = 200, error: str | None = None, stale: bool = False):
    """The card of ``visit`` as loaded in this request (callers roll back a failed write first, which expires it)."""
    bd = booth_day()
    view = queries.visit_view(db.session, visit, bd.settings, bd.now)

    def fix(author, at) -> bool:
        return can_correct(author, at, bd)

    scripts = {d: counseling.script(d, c.conclusion) for d, c in view.conclusions.items() if c.final}
    consents_missing = [d for d in (bd.settings.diseases if bd.settings else [])
                        if services.active_consent(visit, d) is None]
    options = start_options(view, bd)
    ctx = dict(view=view, visit=visit, bd=bd, options=options, scripts=scripts,
               consents_missing=consents_missing, error=error, stale=stale, nonce=new_nonce(),
               topics=TOPICS, supplies=SUPPLIES, invalid_reasons=INVALID_REASONS,
               consent_text=bd.settings.consent_text(str(get_locale())) if bd.settings else "",
               can_correct=fix, post_ready=post_test_ready(view, options, consents_missing),
               fixable_consents=[c for c in visit.consents if not c.voided_at and fix(c.recorded_by, c.recorded_at)],
               fixable_results=[r for s in view.screenings if s.state != "running" for r in s.results
                                if not r.voided_at and fix(r.recorded_by, r.recorded_at)],
               supply_stock=lambda: stock.supplies_on_hand(db.session, bd.booth.id),  # read only if shown
               presets=counseling.PRESET_MINUTES)
    template = "visits/_card.html" if request.headers.get("HX-Request") else "visits/show.html"
    return _BLANKS.sub("\n", render_template(template, **ctx)), status
