"""Clinical settings: a draft that coordinators edit, a sign-off by a clinical lead that locks it.

A change after sign-off makes a new draft version; the booth keeps testing under the last signed
version until the new one is signed off. Every screening and consent records the version it used.
"""
from __future__ import annotations

import copy
import uuid
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from booth.audit import services as audit
from booth.errors import DomainError
from booth.settings import defaults
from booth.settings.models import ClinicalSettings, KitProduct

MAX_WINDOW_S = 24 * 3600
MAX_CONSENT_CHARS = 4000


CATALOGUE_NAMESPACE = uuid.UUID("6f0c1d7e-3b1a-5c2e-9d4f-8a7b6c5d4e3f")


def product_id(code: str) -> uuid.UUID:
    """The id of a catalogue product: the same on every node and at central (derived from its code), so
    a booth's screenings point to central's row of the same product."""
    return uuid.uuid5(CATALOGUE_NAMESPACE, "kit_product:" + code)


def ensure_catalogue(session, *, now: datetime) -> list[KitProduct]:
    """The kit products of DOMAIN.md, inserted once, with the same ids everywhere (central owns the
    catalogue; a booth pulls newer versions of it)."""
    existing = {p.code: p for p in session.scalars(select(KitProduct))}
    for code, name, targets, samples, rf, ru, tmin, tmax in defaults.PRODUCTS:
        if code not in existing:
            p = KitProduct(id=product_id(code), code=code, name=name, targets_csv=targets, samples_csv=samples, read_from_s=rf * 60,
                           read_until_s=ru * 60, temp_min_c=tmin, temp_max_c=tmax, created_at=now, updated_at=now)
            session.add(p)
            existing[code] = p
    session.flush()
    return sorted(existing.values(), key=lambda p: p.name)


def catalogue(session) -> list[KitProduct]:
    return session.scalars(select(KitProduct).order_by(KitProduct.name)).all()


def versions(session, event_id) -> list[ClinicalSettings]:
    """Every version of an event's clinical settings, newest first."""
    return session.scalars(select(ClinicalSettings).where(ClinicalSettings.event_id == event_id)
                           .order_by(ClinicalSettings.number.desc())).all()


def products_by_code(session) -> dict[str, KitProduct]:
    return {p.code: p for p in session.scalars(select(KitProduct))}


def signed(session, event_id) -> ClinicalSettings | None:
    return session.scalar(select(ClinicalSettings).where(ClinicalSettings.event_id == event_id,
                                                         ClinicalSettings.status == "signed")
                          .order_by(ClinicalSettings.number.desc()).limit(1))


def latest(session, event_id) -> ClinicalSettings | None:
    return session.scalar(select(ClinicalSettings).where(ClinicalSettings.event_id == event_id)
                          .order_by(ClinicalSettings.number.desc()).limit(1))


def draft(session, event_id, *, now: datetime, actor=None) -> ClinicalSettings:
    """The draft being edited; created from the last version (or the defaults) when there is none."""
    last = latest(session, event_id)
    if last is not None and last.status == "draft":
        return last
    if last is None:
        ensure_catalogue(session, now=now)
        content = defaults.default_content()
    else:
        content = copy.deepcopy(last.content)
    d = ClinicalSettings(event_id=event_id, number=(last.number + 1) if last else 1, content=content,
                         status="draft", created_by=actor.code if actor else None, created_at=now, updated_at=now)
    session.add(d)
    session.flush()
    return d


def validate_content(session, content: dict) -> dict:
    products = products_by_code(session)
    diseases = content.get("diseases") or []
    if not diseases:
        raise DomainError(_l("Choose at least one disease to offer."), "diseases")
    if any(d not in defaults.DISEASES for d in diseases):
        raise DomainError(_l("Unknown disease."), "diseases")
    chosen = content.get("products") or {}
    for code, p in chosen.items():
        if code not in products:
            raise DomainError(_l("Unknown kit product."), "products")
        rf, ru = p.get("read_from_s"), p.get("read_until_s")
        if not isinstance(rf, int) or not isinstance(ru, int) or rf < 0 or ru <= rf or ru > MAX_WINDOW_S:
            raise DomainError(_l("%(product)s: the read window must start before it ends (minutes, up to 24 hours).",
                                 product=products[code].name), "products")
        samples = p.get("samples") or []
        if not samples or any(s not in products[code].samples for s in samples):
            raise DomainError(_l("%(product)s: choose at least one of its sample types.",
                                 product=products[code].name), "products")
    for disease in diseases:
        usable = {c for c in chosen if disease in products[c].targets}
        if not usable:
            raise DomainError(_l("Choose at least one kit product for %(disease)s.", disease=disease.upper()),
                              "products")
        algorithm = content.get("algorithms", {}).get(disease, "one_test")
        if algorithm not in ("one_test", "two_test") or (disease == "syphilis" and algorithm != "one_test"):
            raise DomainError(_l("Unknown testing algorithm."), "algorithms")
        if algorithm == "two_test" and len(usable) < 2:
            raise DomainError(_l("The two-test algorithm for %(disease)s needs two different products.",
                                 disease=disease.upper()), "algorithms")
    consent = content.get("consent") or {}
    for lang in ("es", "en"):
        text = (consent.get(lang) or "").strip()
        if not text:
            raise DomainError(_l("Write the consent text in Spanish and in English."), "consent")
        if len(text) > MAX_CONSENT_CHARS:
            raise DomainError(_l("The consent text is too long (at most %(n)s characters).", n=MAX_CONSENT_CHARS),
                              "consent")
    return content


def adopt_consent_texts(session, event_id, texts: dict, *, now: datetime) -> bool:
    """Central's consent texts (pulled by sync) become the starting point of this event's draft: only while
    the draft still holds the built-in texts (a booth's own edit, and every signed-off version, stay as they
    are). True when the draft changed."""
    clean = {lang: (texts.get(lang) or "").strip() for lang in ("es", "en")} if isinstance(texts, dict) else {}
    if not all(clean.get(lang) and len(clean[lang]) <= MAX_CONSENT_CHARS for lang in ("es", "en")):
        return False
    last = latest(session, event_id)
    if last is not None and last.status != "draft":
        return False
    d = draft(session, event_id, now=now)
    built_in = defaults.default_content()["consent"]
    current = d.content.get("consent") or {}
    if current == clean or any(current.get(lang) != built_in[lang] for lang in ("es", "en")):
        return False
    content = copy.deepcopy(d.content)
    content["consent"] = clean
    d.content, d.updated_at = content, now
    session.flush()
    audit.record(session, "settings.consent_from_central", now=now, record_id=d.id)
    return True


def update_draft(session, event_id, content: dict, *, now: datetime, actor) -> ClinicalSettings:
    d = draft(session, event_id, now=now, actor=actor)
    d.content = validate_content(session, copy.deepcopy(content))
    d.updated_at = now
    d.version += 1
    session.flush()
    audit.record(session, "settings.edit", now=now, actor=actor, record_id=d.id)
    return d


def sign_off(session, settings: ClinicalSettings, *, now: datetime, actor) -> ClinicalSettings:
    if actor is None or not actor.clinical_lead:
        raise DomainError(_l("Only a clinical lead can sign off clinical settings."))
    if settings.status != "draft":
        raise DomainError(_l("This version is already signed off."))
    validate_content(session, settings.content)
    previous = signed(session, settings.event_id)
    if previous is not None:
        previous.status = "superseded"
        previous.updated_at = now
        previous.version += 1
    settings.status = "signed"
    settings.signed_by = actor.code
    settings.signed_at = now
    settings.updated_at = now
    settings.version += 1
    session.flush()
    audit.record(session, "settings.sign_off", now=now, actor=actor, record_id=settings.id)
    return settings


def sign_off_defaults(session, event_id, *, now: datetime, actor, content: dict | None = None) -> ClinicalSettings:
    """Used by the demo and tests: draft from the defaults (or ``content``) and sign it off."""
    d = draft(session, event_id, now=now, actor=actor)
    if content is not None:
        d.content = validate_content(session, copy.deepcopy(content))
    return sign_off(session, d, now=now, actor=actor)
