"""Translations: both catalogues complete and up to date; Spanish by default, English one tap away,
remembered per enrolled device."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from tests.conftest import Tablet, new_device

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "booth" / "translations"
LOCALES = ("es", "en")
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]")


def catalogue(locale: str):
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f, locale=locale)


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


@pytest.mark.parametrize("locale", LOCALES)
def test_every_message_is_translated_with_the_same_placeholders(locale):
    cat = catalogue(locale)
    problems = []
    for m in cat:
        if not m.id:
            continue
        msgid = m.id if isinstance(m.id, str) else m.id[0]
        strings = m.string if isinstance(m.string, (tuple, list)) else (m.string,)
        if m.fuzzy:
            problems.append(f"fuzzy: {msgid!r}")
        if not all(s and s.strip() for s in strings):
            problems.append(f"untranslated: {msgid!r}")
            continue
        for s in strings:
            if placeholders(s) != placeholders(msgid):
                problems.append(f"placeholders differ: {msgid!r} → {s!r}")
    assert not problems, f"{locale}/messages.po:\n" + "\n".join(problems)


def extract_command() -> list[str]:
    """The `pybabel extract …` arguments of `make extract-messages`, so the test and the Makefile agree."""
    for line in (ROOT / "Makefile").read_text().splitlines():
        if "$(PYBABEL) extract" in line:
            return shlex.split(line.split("$(PYBABEL)", 1)[1])
    raise AssertionError("no `$(PYBABEL) extract` line in the Makefile")


def test_catalogues_are_up_to_date(tmp_path, monkeypatch):
    args = extract_command()
    pot = tmp_path / "messages.pot"
    args[args.index("-o") + 1] = str(pot)
    monkeypatch.chdir(ROOT)
    CommandLineInterface().run(["pybabel", "-q", *args])
    with open(pot, "rb") as f:
        extracted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    assert len(extracted) > 50, "the extraction found almost nothing: check babel.cfg"
    for locale in LOCALES:
        known = {m.id if isinstance(m.id, str) else m.id[0] for m in catalogue(locale) if m.id}
        missing = sorted(extracted - known)
        assert not missing, (
            f"{len(missing)} source string(s) missing from {locale}/messages.po; run `make extract-messages` "
            "and translate them:\n" + "\n".join(f"  {s!r}" for s in missing))


# ---------------------------------------------------------------- the language switch over HTTP

def page_language(t: Tablet) -> str:
    r = t.get("/login")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    lang = re.search(r'<html lang="(\w+)"', html).group(1)
    if lang == "es":
        assert "Código de personal" in html and "Staff code" not in html
    else:
        assert "Staff code" in html and "Código de personal" not in html
    return lang


def test_spanish_by_default(tablet):
    assert page_language(tablet) == "es"


def test_english_is_remembered_for_the_device(node, clock, tablet):
    other = Tablet(node.app, new_device(node.app, clock))
    r = tablet.post("/lang/en", {"next": "/login"})
    assert r.status_code == 303 and r.headers["Location"].endswith("/login")
    assert page_language(tablet) == "en"
    # Same device, no language cookie (a cleared browser or another browser tab): still English.
    fresh = Tablet(node.app, node.device_token)
    assert fresh.client.get_cookie("vinculo_lang") is None
    assert page_language(fresh) == "en"
    # Another enrolled device is untouched.
    assert page_language(other) == "es"
    # And back to Spanish.
    assert tablet.post("/lang/es").status_code == 303
    assert page_language(Tablet(node.app, node.device_token)) == "es"


def test_unknown_language_is_404_and_changes_nothing(node, tablet):
    assert tablet.post("/lang/fr").status_code == 404
    assert tablet.client.get_cookie("vinculo_lang") is None
    assert page_language(tablet) == "es"
    assert page_language(Tablet(node.app, node.device_token)) == "es"


def test_language_switch_without_csrf_token_is_refused(node, tablet):
    tablet.get("/login")  # a session exists, so only the token is missing
    r = tablet.client.post("/lang/en", data={"next": "/login"})
    assert r.status_code == 400
    assert tablet.client.get_cookie("vinculo_lang") is None
    assert page_language(tablet) == "es"
    assert page_language(Tablet(node.app, node.device_token)) == "es"
