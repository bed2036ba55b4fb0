"""Referral slip PDFs (80 mm roll and A6, Spanish and English): the QR decodes to the URL and only
the URL, the text has the folio and the destination and nothing that outs the person, and each
layout matches its approved image.

Needs poppler-utils (``pdftoppm``, ``pdftotext``, ``pdfinfo``) and zbar-tools (``zbarimg``); Pillow
is there because reportlab requires it.

Approval images live in ``tests/referrals/approved/``. When one is missing, or when
``VINCULO_APPROVE=1`` is set, the test writes it and is skipped saying so: look at the new image and
commit it to approve a layout change on purpose.
"""
from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from booth.referrals import codes, slip_pdf
from booth.referrals.slip import TEXT, SlipData

TOOLS = ("pdftoppm", "pdftotext", "pdfinfo", "zbarimg")
pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                                 reason="needs poppler-utils and zbar-tools (" + ", ".join(TOOLS) + ")")

APPROVED = Path(__file__).parent / "approved"
FORMATS = ("80mm", "a6")
LANGUAGES = ("es", "en")
MAX_BYTES = 60_000
MM = 72 / 25.4

# Nothing on a slip may say what it is for or who carries it (case-insensitive, anywhere).
FORBIDDEN = ("hiv", "vih", "hepatitis", "vhc", "hcv", "reactive", "reactivo", "reactiva", "positive",
             "positivo", "positiva", "sífilis", "sifilis", "syphilis", "sida", "aids",
             "25-29", "trans", "hsh", "msm", "gay", "lgbt", "mujer", "hombre", "woman", "no binario",
             "nonbinary", "sex worker", "trabajadora sexual", "transmisión sexual", "sexually transmitted")


def forbidden_in(text: str) -> list[str]:
    """Short words (HIV, HSH, gay…) as whole words, longer ones anywhere; case-insensitive."""
    lower = text.lower()
    return [w for w in FORBIDDEN
            if re.search(rf"(?<!\w){re.escape(w)}(?!\w)" if len(w) <= 4 else re.escape(w), lower)]


def make_slip(language: str, *, folio: str | None = None, url: str | None = None, urgent: bool = False,
              **fields) -> SlipData:
    es = language == "es"
    values = dict(
        folio=folio or codes.display(codes.new_folio()),
        url=url or "https://central.example.org/r/" + codes.new_token(b"k" * 32),
        destination="Clínica Familiar Ejemplo 12" if es else "Example Family Clinic 12",
        address="Av. Insurgentes Sur 1234, col. Del Valle, Benito Juárez, 03100 CDMX",
        hours="Lunes a viernes, 8:00–14:00" if es else "Monday to Friday, 8:00–14:00",
        phone="55 1234 5678",
        what_to_bring="Identificación oficial y esta hoja" if es else "Photo ID and this slip",
        valid_until=date(2026, 6, 27) if urgent else date(2026, 7, 27),
        issued_on=date(2026, 6, 27),
        counselor_code="B01",
        urgent=urgent,
        language=language,
    )
    values.update(fields)
    return SlipData(**values)


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout


def write_pdf(tmp_path: Path, pdf: bytes, name: str = "slip") -> Path:
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(pdf)
    return path


def decode_qr(pdf_path: Path) -> list[str]:
    """Render at 203 dpi (a thermal printer's resolution), downscale by half, read with zbarimg."""
    base = pdf_path.with_suffix("")
    run("pdftoppm", "-r", "203", "-png", "-singlefile", str(pdf_path), str(base) + "-203")
    full = Image.open(str(base) + "-203.png").convert("L")
    half = full.reduce(2)
    half.save(str(base) + "-half.png")
    out = subprocess.run(["zbarimg", "--raw", "-q", str(base) + "-half.png"], capture_output=True, text=True,
                         timeout=60)
    return out.stdout.splitlines()


def pdf_text(pdf_path: Path) -> str:
    return " ".join(run("pdftotext", "-enc", "UTF-8", str(pdf_path), "-").split())


def pdf_info(pdf_path: Path) -> dict:
    info = {}
    for line in run("pdfinfo", "-enc", "UTF-8", str(pdf_path)).splitlines():
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    return info


# ------------------------------------------------------------------ QR, text, metadata, size

@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_slip_qr_is_the_url_and_text_is_neutral(tmp_path, fmt, language):
    slip = make_slip(language)
    pdf = slip_pdf.render(slip, fmt)
    path = write_pdf(tmp_path, pdf)

    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert len(pdf) < MAX_BYTES, f"{len(pdf)} bytes"
    info = pdf_info(path)
    assert info["Pages"] == "1"

    assert decode_qr(path) == [slip.url]  # exactly one symbol, and it carries only the URL

    text = pdf_text(path)
    assert slip.folio in text
    assert slip.destination in text
    for value in (slip.address, slip.hours, slip.phone, slip.what_to_bring, slip.counselor_code):
        assert value in text
    t = TEXT[language]
    assert t["scan"] in text and t["confidential"] in text
    assert slip.url not in text and slip.url.rsplit("/", 1)[1] not in text  # the token is in the QR only
    found = forbidden_in(text)
    assert not found, f"the {fmt} {language} slip says {found}: {text}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_page_size_and_neutral_metadata(tmp_path, fmt):
    for language in LANGUAGES:
        path = write_pdf(tmp_path, slip_pdf.render(make_slip(language), fmt), f"{fmt}-{language}")
        info = pdf_info(path)
        assert info["Title"] == TEXT[language]["title"]
        assert not info.get("Author") and not info.get("Subject") and not info.get("Keywords")
        w, h = (float(x) for x in re.match(r"([\d.]+) x ([\d.]+) pts", info["Page size"]).groups())
        if fmt == "80mm":
            assert abs(w - 80 * MM) < 0.5 and 100 * MM < h < 200 * MM
        else:
            assert abs(w - 105 * MM) < 0.5 and abs(h - 148 * MM) < 0.5


def test_render_never_receives_a_reason_and_is_deterministic():
    assert list(inspect.signature(slip_pdf.render).parameters) == ["slip", "fmt", "qr_backend"]
    slip = make_slip("es")
    assert slip_pdf.render(slip, "80mm") == slip_pdf.render(slip, "80mm")


@pytest.mark.parametrize("fmt", FORMATS)
def test_urgent_line_only_on_urgent_slips(tmp_path, fmt):
    for language in LANGUAGES:
        urgent = pdf_text(write_pdf(tmp_path, slip_pdf.render(make_slip(language, urgent=True), fmt), "u"))
        normal = pdf_text(write_pdf(tmp_path, slip_pdf.render(make_slip(language), fmt), "n"))
        assert TEXT[language]["urgent"] in urgent
        assert TEXT[language]["urgent"] not in normal


@pytest.mark.parametrize("fmt", FORMATS)
def test_segno_backend_decodes_too(tmp_path, fmt):
    slip = make_slip("en")
    path = write_pdf(tmp_path, slip_pdf.render(slip, fmt, qr_backend="segno"))
    assert decode_qr(path) == [slip.url]


@pytest.mark.parametrize("fmt", FORMATS)
def test_longest_texts_fit_on_the_page(tmp_path, fmt):
    """Every field at the longest a destination may have (services.validate_destination): all of it
    is printed, inside the page, and the QR still decodes."""
    slip = make_slip(
        "es", urgent=True,
        destination=("Centro de Salud Ejemplo Número Veinticuatro, Alcaldía Benito Juárez Norte Poniente")[:80],
        address=("Avenida Insurgentes Sur 1234, interior 5, colonia Tlacoquemécatl del Valle, alcaldía Benito "
                 "Juárez, 03200 Ciudad de México, entre Félix Cuevas y Ángel Urraza, junto a la farmacia del "
                 "mercado")[:200],
        hours=("Lunes a viernes de 8:00 a 14:00 y de 15:00 a 19:00; sábados de 9:00 a 13:00; domingos y días "
               "festivos cerrado, llegue temprano")[:120],
        phone="+52 55 1234 5678 ext. 1234 / 55 8765 4321"[:40],
        what_to_bring=("Identificación oficial con fotografía (INE, pasaporte o licencia), comprobante de "
                       "domicilio reciente, CURP y esta hoja de referencia impresa o en el teléfono celular")[:200],
    )
    path = write_pdf(tmp_path, slip_pdf.render(slip, fmt))
    assert pdf_info(path)["Pages"] == "1"
    assert decode_qr(path) == [slip.url]
    text = pdf_text(path)
    for value in (slip.destination, slip.address, slip.hours, slip.phone, slip.what_to_bring,
                  TEXT["es"]["urgent"], TEXT["es"]["confidential"]):
        assert value in text
    # every word lies inside the page, clear of its edges
    bbox = run("pdftotext", "-bbox", str(path), "-")
    page = re.search(r'<page width="([\d.]+)" height="([\d.]+)"', bbox)
    width, height = float(page.group(1)), float(page.group(2))
    for m in re.finditer(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">', bbox):
        x0, y0, x1, y1 = (float(v) for v in m.groups())
        assert 3 * MM <= x0 and x1 <= width - 3 * MM and 3 * MM <= y0 and y1 <= height - 3 * MM, m.group(0)


# ------------------------------------------------------------------ approval images

def approval_slip(language: str) -> SlipData:
    """Fixed data: the Spanish slips are ordinary (30 days), the English ones urgent (valid today),
    so the four images cover both designs."""
    body = "7K3MQ9XD"
    return make_slip(language, folio=codes.display(body + codes.check_symbol(body)),
                     url="https://central.example.org/r/" + codes.token_for(b"k" * 32, "approval"),
                     urgent=language == "en")


def render_png(pdf_path: Path) -> Image.Image:
    base = pdf_path.with_suffix("")
    run("pdftoppm", "-r", "100", "-gray", "-png", "-singlefile", str(pdf_path), str(base))
    return Image.open(str(base) + ".png").convert("L")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_slip_matches_approved_image(tmp_path, fmt, language):
    approved = APPROVED / f"slip-{fmt}-{language}.png"
    actual = render_png(write_pdf(tmp_path, slip_pdf.render(approval_slip(language), fmt)))
    if os.environ.get("VINCULO_APPROVE") == "1" or not approved.exists():
        approved.parent.mkdir(parents=True, exist_ok=True)
        actual.save(approved, optimize=True)
        pytest.skip(f"wrote approval image {approved}: look at it and commit it to approve this layout")
    expected = Image.open(approved).convert("L")
    actual_path = tmp_path / approved.name
    actual.save(actual_path)
    assert actual.size == expected.size, (
        f"slip size changed: {actual.size} vs approved {expected.size}; see {actual_path} "
        "(VINCULO_APPROVE=1 to approve)")
    diff = ImageChops.difference(actual, expected).point(lambda v: 255 if v > 64 else 0)
    changed = sum(diff.histogram()[255:])
    share = changed / (actual.width * actual.height)
    if share > 0.005:
        diff.save(tmp_path / ("diff-" + approved.name))
    assert share <= 0.005, (f"{share:.2%} of the pixels differ from {approved}; see {actual_path} and the diff "
                            "next to it (VINCULO_APPROVE=1 to approve the new layout)")


def test_the_forbidden_word_check_would_catch_a_leak(tmp_path):
    """The check above is not vacuous: words that do reach the PDF are found in its text."""
    slip = make_slip("es", destination="Clínica VIH Hepatitis", what_to_bring="HSH 25-29 trans")
    found = forbidden_in(pdf_text(write_pdf(tmp_path, slip_pdf.render(slip, "a6"))))
    assert {"vih", "hepatitis", "hsh", "25-29", "trans"} <= set(found)
