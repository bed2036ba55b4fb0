"""A booth ready to test: signed-off settings, lots received, supplies, staff — used inside an app context."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from booth.auth import services as auth
from booth.auth.models import Role
from booth.events.models import Booth
from booth.extensions import db
from booth.settings import services as settings_services
from booth.stock import services as stock
from booth.visits import services as visits


@dataclass
class Ctx:
    booth: Booth
    settings: object
    coordinator: object
    tester: object
    counselor: object
    products: dict
    lots: dict
    clock: object
    today: date

    def visit(self, **intake):
        intake.setdefault("age_band", "25-29")
        return visits.register_visit(db.session, booth=self.booth, intake=visits.Intake(**intake),
                                     now=self.clock.now(), actor=self.tester)

    def consent_all(self, visit, given=True):
        for d in self.settings.diseases:
            visits.record_consent(db.session, visit, disease=d, given=given, settings=self.settings, language="es",
                                  now=self.clock.now(), actor=self.tester)


def build_ctx(app, node, clock, content=None) -> Ctx:
    from booth.events.models import Booth
    booth = db.session.get(Booth, node.booth_id)
    coord = auth.staff_by_code(db.session, "C01")
    coord.clinical_lead = True
    now = clock.now()
    tester = auth.create_staff(db.session, code="T01", roles=[Role.TESTER], pin="582931", now=now)
    counselor = auth.create_staff(db.session, code="K01", roles=[Role.COUNSELOR], pin="582931", now=now)
    settings = settings_services.sign_off_defaults(db.session, booth.event_id, now=now, actor=coord, content=content)
    products = settings_services.products_by_code(db.session)
    today = visits.local_day(booth.event, now)
    lots = {}
    for code in ("determine-hiv", "oraquick-hiv", "oraquick-hcv", "bioline-duo"):
        lots[code] = stock.receive_lot(db.session, booth_id=booth.id, product=products[code],
                                       lot_number=f"L-{code[:3].upper()}1", expires_on=today + timedelta(days=90),
                                       quantity=50, today=today, now=now, actor=coord)
    for item in ("condom", "lubricant", "self_test"):
        stock.receive_supply(db.session, booth_id=booth.id, item=item, quantity=200, now=now, actor=coord)
    db.session.commit()
    return Ctx(booth, settings, coord, tester, counselor, products, lots, clock, today)
