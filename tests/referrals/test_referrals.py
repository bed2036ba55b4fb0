"""Referrals through the services and HTTP: destinations, issuing, slip, neutral page, clinic flow."""
import re
import secrets
from datetime import timedelta

import pytest
from sqlalchemy import select

from booth.auth import services as auth
from booth.auth.models import Role
from booth.errors import DomainError
from booth.extensions import db
from booth.referrals import codes, services
from booth.referrals.models import Referral
from booth.screening import services as screening
from tests.conftest import Tablet, new_device
from tests.workflow.conftest import build_ctx

KEY = secrets.token_bytes(32)


def reactive_visit(ctx, beneficiary="no"):
    v = ctx.visit(beneficiary=beneficiary)
    ctx.consent_all(v)
    s = screening.start(db.session, visit=v, product=ctx.products["determine-hiv"], lot=ctx.lots["determine-hiv"],
                        sample_type="fingerstick", slot=None, settings=ctx.settings, today=ctx.today,
                        now=ctx.clock.now(), actor=ctx.tester)
    ctx.clock.advance(minutes=15)
    screening.record_result(db.session, s, {"hiv": ("reactive", None)}, now=ctx.clock.now(), actor=ctx.tester)
    return v


@pytest.mark.parametrize("name", ["Clínica VIH Norte", "CAPASITS Iztapalapa", "Centro de ITS", "Hepatología 3",
                                  "Clinica Condesa", "Servicio PrEP", "Unidad Sífilis", "Clínica trans"])
def test_slip_names_with_forbidden_words_refused(ctx, name):
    with pytest.raises(DomainError) as e:
        services.save_destination(db.session, services.DestinationInput(
            name="x", slip_name=name, kind="hiv_clinic", address="Calle 1", hours="9-14", phone="55",
            what_to_bring="", reasons=("hiv_confirmation",)), now=ctx.clock.now(), actor=ctx.coordinator)
    assert "neutral" in str(e.value.message) or "neutro" in str(e.value.message)


def test_suggestion_follows_rules_and_pep_needs_open_today(ctx):
    family, special, hep, pep = services.add_examples(db.session, now=ctx.clock.now())
    v_yes, v_no = ctx.visit(beneficiary="yes"), ctx.visit(beneficiary="no")
    assert services.suggest(db.session, reason="hiv_confirmation", visit=v_yes, today=ctx.today).id == family.id
    assert services.suggest(db.session, reason="hiv_confirmation", visit=v_no, today=ctx.today).id == special.id
    assert services.suggest(db.session, reason="hcv_viral_load", visit=v_no, today=ctx.today).id == hep.id
    assert services.suggest(db.session, reason="pep_urgent", visit=v_no, today=ctx.today).id == pep.id
    pep.open_days = [((ctx.today.isoweekday()) % 7) + 1]  # closed today
    assert services.suggest(db.session, reason="pep_urgent", visit=v_no, today=ctx.today) is None
    assert services.default_valid_until("pep_urgent", ctx.today) == ctx.today
    assert services.default_valid_until("prep", ctx.today) == ctx.today + timedelta(days=30)


def test_issue_makes_folio_and_token_without_personal_data(ctx):
    _f, special, _h, _p = services.add_examples(db.session, now=ctx.clock.now())
    v = reactive_visit(ctx)
    ref, token = services.issue(db.session, visit=v, reason="hiv_confirmation", destination=special,
                                valid_until=ctx.today + timedelta(days=30), key=KEY, today=ctx.today,
                                now=ctx.clock.now(), actor=ctx.counselor)
    assert codes.is_valid(ref.folio) and codes.token_verifies(token, KEY)
    assert ref.token_hash == codes.token_hash(token) and token not in (ref.token_hash, ref.folio)
    assert codes.token_for(KEY, ref.id) == token  # a reprint gives the same QR
    url = services.slip_url("https://central.example.org", token)
    for leak in ("hiv", "vih", "25-29", "reactive", str(v.id)):
        assert leak not in url.lower()
    with pytest.raises(DomainError):  # the same reason twice: reprint instead
        services.issue(db.session, visit=v, reason="hiv_confirmation", destination=special,
                       valid_until=ctx.today, key=KEY, today=ctx.today, now=ctx.clock.now(), actor=ctx.counselor)
    with pytest.raises(DomainError):  # destination does not take the reason
        services.issue(db.session, visit=v, reason="pep_urgent", destination=special, valid_until=ctx.today,
                       key=KEY, today=ctx.today, now=ctx.clock.now(), actor=ctx.counselor)


def test_linkage_flow_and_closed_is_final(ctx):
    _f, special, _h, _p = services.add_examples(db.session, now=ctx.clock.now())
    ref, _t = services.issue(db.session, visit=reactive_visit(ctx), reason="hiv_confirmation", destination=special,
                             valid_until=ctx.today + timedelta(days=30), key=KEY, today=ctx.today,
                             now=ctx.clock.now(), actor=ctx.counselor)
    clinic = auth.create_staff(db.session, code="L09", roles=[Role.CLINIC], pin="582931", now=ctx.clock.now())
    with pytest.raises(DomainError):
        services.record(db.session, ref, action="confirmation", result="hiv_confirmed", today=ctx.today,
                        now=ctx.clock.now(), actor=clinic)
    with pytest.raises(DomainError):
        services.record(db.session, ref, action="arrival", day=ctx.today + timedelta(days=1), today=ctx.today,
                        now=ctx.clock.now(), actor=clinic)
    services.record(db.session, ref, action="arrival", day=ctx.today, today=ctx.today, now=ctx.clock.now(),
                    actor=clinic)
    services.record(db.session, ref, action="confirmation", result="hiv_confirmed", today=ctx.today,
                    now=ctx.clock.now(), actor=clinic)
    services.record(db.session, ref, action="treatment", day=ctx.today, today=ctx.today, now=ctx.clock.now(),
                    actor=clinic)
    assert services.status(ref, ctx.today) == "treatment_started"
    services.record(db.session, ref, action="close", reason="completed", today=ctx.today, now=ctx.clock.now(),
                    actor=clinic)
    for action in ("arrival", "treatment", "close"):
        with pytest.raises(DomainError):
            services.record(db.session, ref, action=action, day=ctx.today, reason="lost", today=ctx.today,
                            now=ctx.clock.now(), actor=clinic)
    assert ref.status == "issued"  # the booth-owned row never holds linkage fields


def test_expired_status(ctx):
    _f, special, _h, _p = services.add_examples(db.session, now=ctx.clock.now())
    ref, _t = services.issue(db.session, visit=reactive_visit(ctx), reason="hiv_confirmation", destination=special,
                             valid_until=ctx.today + timedelta(days=7), key=KEY, today=ctx.today,
                             now=ctx.clock.now(), actor=ctx.counselor)
    assert services.status(ref, ctx.today + timedelta(days=8)) == "expired"


# ------------------------------------------------------------------ HTTP

def booth_with_referral(node, clock, login):
    with node.app.app_context():
        ctx = build_ctx(node.app, node, clock)
        services.add_examples(db.session, now=clock.now())
        v = reactive_visit(ctx)
        db.session.commit()
        visit_id = v.id
    counselor = login("counselor")
    page = counselor.get(f"/visits/{visit_id}/referrals/new").get_data(as_text=True)
    assert "hiv_confirmation" in page
    dest = re.search(r'name="destination" value="([^"]+)" checked', page).group(1)
    r = counselor.post(f"/visits/{visit_id}/referrals", {"reason": "hiv_confirmation", "destination": dest,
                                                         "valid_days": "30"},
                       csrf_page=f"/visits/{visit_id}/referrals/new?reason=hiv_confirmation")
    assert r.status_code == 303, r.get_data(as_text=True)[:600]
    ref_url = r.headers["Location"]
    with node.app.app_context():
        ref = db.session.scalar(select(Referral))
        token = codes.token_for(services.referral_key(node.app.instance_path), ref.id)
        return counselor, ref_url, ref.id, ref.folio, token, dest, visit_id


def test_issue_over_http_shows_slip_and_visit_is_done(node, clock, login):
    counselor, ref_url, ref_id, folio, token, _dest, visit_id = booth_with_referral(node, clock, login)
    page = counselor.get(ref_url).get_data(as_text=True)
    assert codes.display(folio) in page and "slip.pdf" in page
    pdf = counselor.get(f"/referrals/{ref_id}/slip.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert pdf.headers["Content-Disposition"] == 'inline; filename="hoja.pdf"'
    assert "referral_pending" not in counselor.get(f"/visits/{visit_id}").get_data(as_text=True)


def test_neutral_page_shows_destination_only(node, clock, login):
    _c, _u, _id, folio, token, _d, _v = booth_with_referral(node, clock, login)
    anon = node.app.test_client()
    r = anon.get(f"/r/{token}")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "Clínica de Salud Integral Norte" in html
    for leak in ("VIH", "HIV", "confirm", "Reactiv", "reactiv", folio, "Determine"):
        assert leak not in html
    assert anon.get("/r/" + codes.new_token(b"x" * 32)).status_code == 404


def test_clinic_sees_only_its_own_referrals_and_closes_the_loop(node, clock, login):
    _c, _u, ref_id, folio, token, dest, _v = booth_with_referral(node, clock, login)
    mine, other = login("clinic"), login("clinic")
    coord = login("coordinator")
    assert coord.post(f"/destinations/{dest}/staff", {"code": mine.code}, csrf_page="/destinations").status_code == 303
    assert other.get(f"/clinic/referrals/{ref_id}").status_code == 404
    assert other.post("/clinic/lookup", {"folio": folio}, csrf_page="/clinic").status_code == 404
    r = mine.post("/clinic/lookup", {"folio": codes.display(folio).lower()}, csrf_page="/clinic")
    assert r.status_code == 303 and r.headers["Location"].endswith(str(ref_id))
    assert mine.get(f"/clinic/r/{token}").headers["Location"].endswith(str(ref_id))
    page = mine.get(f"/clinic/referrals/{ref_id}").get_data(as_text=True)
    assert "Determine" in page  # booth results summary for the reason
    day = clock.now().date().isoformat()
    base = f"/clinic/referrals/{ref_id}"
    for action, data in (("arrival", {"day": day}), ("confirmation", {"result": "hiv_confirmed"}),
                         ("treatment", {"day": day}), ("close", {"reason": "completed"})):
        assert mine.post(f"{base}/{action}", data, csrf_page=base).status_code == 303, action
    assert mine.post(f"{base}/arrival", {"day": day}, csrf_page=base).status_code == 422


def test_unknown_folios_and_tokens_get_one_generic_answer_and_are_rate_limited(make_app, clock):
    """1,000 random folios and 1,000 random tokens: nothing matches, every answer is the same generic one
    (a well-formed folio → the same provisional-arrival offer, a typo or a forged token → not found)."""
    from tests.conftest import add_staff, setup_node
    app = make_app(LOOKUP_RATE_LIMIT="100000 per minute")
    node = setup_node(app, clock)
    with app.app_context():
        ctx_booth = None  # one real referral exists, so "nothing matches" is meaningful
        from tests.workflow.conftest import build_ctx
        ctx_booth = build_ctx(app, node, clock)
        _f, special, _h, _p = services.add_examples(db.session, now=clock.now())
        real, _t = services.issue(db.session, visit=reactive_visit(ctx_booth), reason="hiv_confirmation",
                                  destination=special, valid_until=ctx_booth.today + timedelta(days=30),
                                  key=services.referral_key(app.instance_path), today=ctx_booth.today,
                                  now=clock.now(), actor=ctx_booth.counselor)
        db.session.commit()
        real_folio = real.folio
    add_staff(app, clock, "L05", ["clinic"])
    t = Tablet(app, new_device(app, clock))
    t.login("L05", "731945")
    token = t.csrf("/clinic")
    bodies, found = set(), 0
    for _ in range(1000):
        folio = codes.new_folio()
        if folio == real_folio:
            continue
        r = t.client.post("/clinic/lookup", data={"folio": folio, "csrf_token": token})
        assert r.status_code == 404
        bodies.add(re.sub(r'value="[^"]+"|"X-CSRFToken": "[^"]+"', "", r.get_data(as_text=True))
                   .replace(codes.display(folio), "FOLIO"))
        r2 = t.client.get("/clinic/r/" + codes.new_token(secrets.token_bytes(32)))
        assert r2.status_code == 404
        found += r2.status_code != 404
    assert len(bodies) == 1 and found == 0
    typo = real_folio[:-1] + ("0" if real_folio[-1] != "0" else "1")  # a typo of a real folio never matches
    assert t.client.post("/clinic/lookup", data={"folio": typo, "csrf_token": token}).status_code == 404
    app.config["LOOKUP_RATE_LIMIT"] = "5 per minute"  # read at each request
    codes_seen = [t.client.post("/clinic/lookup", data={"folio": codes.new_folio(), "csrf_token": token}).status_code
                  for _ in range(7)]
    assert codes_seen[:5] == [404] * 5 and codes_seen[5:] == [429, 429]
    anon = app.test_client()
    statuses = [anon.get("/r/" + codes.new_token(b"k" * 32)).status_code for _ in range(7)]
    assert statuses[:5] == [404] * 5 and statuses[-1] == 429


def test_provisional_arrivals_verified_by_mac_or_unverified_by_folio(node, clock, login):
    clinic = login("clinic")
    with node.app.app_context():
        key = services.referral_key(node.app.instance_path)
    genuine = codes.new_token(key)  # issued by this node but not (yet) known here
    page = clinic.get(f"/clinic/r/{genuine}")
    assert page.status_code == 404 and "provisional" in page.get_data(as_text=True)
    day = clock.now().date().isoformat()
    assert clinic.post("/clinic/provisional", {"token": genuine, "day": day}, csrf_page="/clinic").status_code == 303
    assert clinic.post("/clinic/provisional", {"token": genuine, "day": day}, csrf_page="/clinic").status_code == 422
    forged = codes.new_token(b"z" * 32)
    assert clinic.post("/clinic/provisional", {"token": forged, "day": day}, csrf_page="/clinic").status_code == 422
    folio = codes.new_folio()
    assert clinic.post("/clinic/provisional", {"folio": folio, "day": day}, csrf_page="/clinic").status_code == 303
    from booth.referrals.models import ProvisionalArrival
    with node.app.app_context():
        rows = db.session.scalars(select(ProvisionalArrival).order_by(ProvisionalArrival.created_at)).all()
        assert [(r.verified, r.folio) for r in rows] == [(True, None), (False, folio)]


def test_one_tap_print_sends_pdf_to_configured_queue_with_lp(node, clock, login, tmp_path, monkeypatch):
    counselor, ref_url, ref_id, _f, _t, _d, _v = booth_with_referral(node, clock, login)
    # no printer configured: the page embeds the PDF for the browser's print dialog
    r = counselor.post(f"/referrals/{ref_id}/print", {}, csrf_page=ref_url)
    assert r.status_code == 303 and "printed=browser" in r.headers["Location"]
    assert '<object class="slip"' in counselor.get(r.headers["Location"]).get_data(as_text=True)
    # a stand-in `lp` on PATH records its arguments and the file it received
    bindir, log = tmp_path / "bin", tmp_path / "lp.log"
    bindir.mkdir()
    (bindir / "lp").write_text(f'#!/bin/sh\necho "$@" > {log}\nfor a; do f="$a"; done\ncp "$f" {tmp_path}/got.pdf\n')
    (bindir / "lp").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{__import__('os').environ['PATH']}")
    coord = login("coordinator")
    assert coord.post("/destinations/printing", {"slip_format": "a6", "printer_queue": "termica-80"},
                      csrf_page="/destinations").status_code == 303
    r = counselor.post(f"/referrals/{ref_id}/print", {}, csrf_page=ref_url)
    assert r.status_code == 303 and "printed=printer" in r.headers["Location"]
    args = log.read_text().split()
    assert args[:2] == ["-d", "termica-80"]
    assert (tmp_path / "got.pdf").read_bytes().startswith(b"%PDF")
    # a bad queue name is refused and changes nothing
    assert coord.post("/destinations/printing", {"slip_format": "a6", "printer_queue": "x; rm -rf /"},
                      csrf_page="/destinations").status_code == 422


def test_cli_list_and_reprint(node, clock, login, tmp_path):
    _c, _u, _id, folio, _t, _d, _v = booth_with_referral(node, clock, login)
    runner = node.app.test_cli_runner()
    r = runner.invoke(args=["referrals", "list", "--json"])
    import json
    rows = json.loads(r.output)
    assert rows[0]["folio"] == codes.display(folio) and rows[0]["status"] == "issued"
    out = tmp_path / "slip.pdf"
    r = runner.invoke(args=["referrals", "slip", codes.display(folio).lower(), "--out", str(out), "--format", "a6"])
    assert r.exit_code == 0, r.output
    assert out.read_bytes().startswith(b"%PDF")
    r = runner.invoke(args=["referrals", "slip", "0000-0000-0", "--out", str(out)])
    assert r.exit_code != 0
