"""The referral slip as a PDF (reportlab canvas): an 80 mm thermal roll or A6, Spanish or English.

One neutral design for every reason — ``render`` never receives a reason, and nothing it prints
comes from one: the folio, the destination's neutral slip name, address, hours, phone, what to
bring, dates and the counselor's code. The QR (``booth.referrals.qr``) carries only the URL and is
drawn as vector squares, its module size a whole number of dots of a 203 dpi thermal printer so it
prints crisp. The PDF's metadata is neutral too: the title "Hoja de referencia" / "Referral slip",
no author or subject. Output is deterministic (reportlab ``invariant=1``) for approval images.

The 80 mm page is as tall as its content. A6 (105 × 148 mm) puts the QR beside the destination; if a
destination's texts are very long, the type is scaled down until everything fits on the page.
"""
from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass, field
from datetime import date

from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen import canvas

from booth.referrals.slip import FORMATS, TEXT, SlipData

REGULAR = "Helvetica"
BOLD = "Helvetica-Bold"
DOT = 72 / 203  # one dot of a 203 dpi thermal printer, in points

MONTHS = {
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
           "octubre", "noviembre", "diciembre"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"),
}
TITLE = {"es": TEXT["es"]["title"], "en": TEXT["en"]["title"]}


def long_date(d: date, language: str) -> str:
    month = MONTHS[language][d.month - 1]
    return f"{d.day} de {month} de {d.year}" if language == "es" else f"{d.day} {month} {d.year}"


def _printable(text: str | None) -> str:
    """Helvetica (a standard PDF font, not embedded) covers Latin-1 and the rest of WinAnsi:
    á é í ó ú ñ ü ¿ ¡ “ ” – … Anything else is spelled without its accent, or as '?'."""
    out = []
    for ch in " ".join((text or "").split()):
        try:
            ch.encode("cp1252")
            out.append(ch)
        except UnicodeEncodeError:
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            try:
                base.encode("cp1252")
                out.append(base or "?")
            except UnicodeEncodeError:
                out.append("?")
    return "".join(out)


# ------------------------------------------------------------------ layout: a list of drawing ops

@dataclass
class _Col:
    """A column of content, laid out top-down: ``y`` is the distance from the top of the page."""
    x: float
    width: float
    scale: float = 1.0
    y: float = 0.0
    ops: list = field(default_factory=list)

    def gap(self, pts: float) -> None:
        self.y += pts * self.scale

    def lines(self, text: str, font: str, size: float, *, align: str = "left", leading: float = 1.22,
              white: bool = False) -> None:
        size *= self.scale
        for line in simpleSplit(text, font, size, self.width) or [""]:
            self.ops.append(("text", font, size, align, self._ax(align), self.y + 0.80 * size, line, white))
            self.y += size * leading

    def fitted(self, text: str, font: str, size: float, *, align: str = "center") -> None:
        """One line, as large as ``size`` but never wider than the column."""
        size = min(size * self.scale, self.width / stringWidth(text, font, 1))
        self.ops.append(("text", font, size, align, self._ax(align), self.y + 0.76 * size, text, False))
        self.y += size * 1.05

    def row(self, label: str, value: str, label_w: float, size: float, *, bold_value: bool = False) -> None:
        """Label in bold on the left, the value wrapped in the rest of the width."""
        size *= self.scale
        label_w *= self.scale
        self.ops.append(("text", BOLD, size, "left", self.x, self.y + 0.80 * size, label, False))
        value_lines = simpleSplit(value, BOLD if bold_value else REGULAR, size, self.width - label_w) or [""]
        for line in value_lines:
            self.ops.append(("text", BOLD if bold_value else REGULAR, size, "left", self.x + label_w,
                             self.y + 0.80 * size, line, False))
            self.y += size * 1.22

    def stacked(self, label: str, value: str, size: float) -> None:
        """Small bold label above its value."""
        self.lines(label, BOLD, size * 0.86, leading=1.15)
        self.lines(value, REGULAR, size)

    def rule(self, weight: float = 0.6) -> None:
        self.ops.append(("rule", self.x, self.x + self.width, self.y, weight))

    def banner(self, text: str, size: float) -> None:
        """White bold text on a black band (the urgent line)."""
        pad = 2.2 * self.scale
        top = self.y
        self.y += pad
        start = len(self.ops)
        inner = _Col(self.x + pad, self.width - 2 * pad, self.scale, self.y)
        inner.lines(text, BOLD, size, align="center", white=True)
        self.y = inner.y + pad * 0.4
        self.ops[start:start] = [("box", self.x, top, self.width, self.y - top)]
        self.ops.extend(inner.ops)

    def qr(self, matrix: list[list[bool]], module: float, *, align: str = "center") -> float:
        side = len(matrix) * module
        x = {"left": self.x, "center": self.x + (self.width - side) / 2, "right": self.x + self.width - side}[align]
        x = round(x / DOT) * DOT
        y = round(self.y / DOT) * DOT
        self.ops.append(("qr", x, y, module, matrix))
        self.y = y + side
        return side

    def _ax(self, align: str) -> float:
        return {"left": self.x, "center": self.x + self.width / 2, "right": self.x + self.width}[align]


def _module(matrix: list[list[bool]], max_side: float) -> float:
    """The largest whole number of printer dots per module that keeps the QR (with its quiet zone)
    within ``max_side`` points — at least 3 dots."""
    return max(3, int(max_side / (len(matrix) * DOT))) * DOT


def _label_width(t: dict, keys, size: float) -> float:
    return max(stringWidth(t[k], BOLD, size) for k in keys) + 2.5 * mm


def _validity(col: _Col, slip: SlipData, t: dict, size: float) -> None:
    """Valid until (in bold, a size up) and, for a slip valid only today, the urgent band."""
    col.lines(f"{t['valid']}: {long_date(slip.valid_until, slip.language)}", BOLD, size + 2)
    if slip.urgent:
        col.gap(1.5)
        col.banner(t["urgent"], size + 2)
    col.gap(2.5)
    col.lines(f"{t['issued']}: {long_date(slip.issued_on, slip.language)}   ·   "
              f"{t['counselor']}: {_printable(slip.counselor_code) or '—'}", REGULAR, size - 1.5)


def _footer(col: _Col, t: dict, size: float) -> None:
    """The line for the clinic and the confidentiality / right-to-free-care statement."""
    col.rule()
    col.gap(4)
    col.lines(t["scan"], BOLD, size)
    col.gap(1.5)
    col.lines(t["confidential"], REGULAR, size - 1, leading=1.25)


def _layout_80mm(slip: SlipData, t: dict, matrix):
    width = 80 * mm
    margin = 5 * mm  # an 80 mm printer prints the middle 72 mm
    col = _Col(margin, width - 2 * margin, 1.0, 4 * mm)
    col.lines(t["title"], BOLD, 13, align="center")
    col.gap(1)
    col.rule(0.8)
    col.gap(5)
    col.lines(t["folio"], REGULAR, 8.5, align="center")
    col.fitted(slip.folio, BOLD, 27)
    col.qr(matrix, _module(matrix, 44 * mm))  # 7 dots per module: 36 mm symbol + quiet zone
    col.lines(t["go_to"], REGULAR, 8.5)
    col.lines(_printable(slip.destination), BOLD, 12.5, leading=1.18)
    col.gap(3)
    size = 9
    keys = ["address", "hours", "phone"] + (["bring"] if slip.what_to_bring.strip() else [])
    label_w = _label_width(t, keys, size)
    values = {"address": slip.address, "hours": slip.hours, "phone": slip.phone, "bring": slip.what_to_bring}
    for k in keys:
        col.row(t[k], _printable(values[k]), label_w, size)
        col.gap(1.5)
    col.gap(2)
    _validity(col, slip, t, size)
    col.gap(4)
    _footer(col, t, size)
    height = round((col.y + 5 * mm) / DOT) * DOT  # a whole number of printer dots
    return width, height, col.ops


def _layout_a6(slip: SlipData, t: dict, matrix, scale: float = 1.0):
    width, page_h = 105 * mm, 148 * mm
    margin = 8 * mm
    col = _Col(margin, width - 2 * margin, scale, 7 * mm)
    col.lines(t["title"], BOLD, 16, align="center")
    col.gap(1)
    col.rule(0.8)
    col.gap(4)
    col.lines(t["folio"], REGULAR, 9.5, align="center")
    col.fitted(slip.folio, BOLD, 33)
    # the QR on the left (its blank quiet zone reaching into the margin), where to go on the right
    module = _module(matrix, 44 * mm * scale)
    quiet = 4 * module
    col.gap(5 - quiet / scale)
    qr_top = col.y
    col.x -= quiet
    qr_side = col.qr(matrix, module, align="left")
    col.x += quiet
    right_x = col.x + qr_side - 2 * quiet + 5 * mm
    right = _Col(right_x, margin + col.width - right_x, scale, qr_top + quiet)
    right.lines(t["go_to"], REGULAR, 9.5)
    right.lines(_printable(slip.destination), BOLD, 14, leading=1.18)
    for k, v in (("address", slip.address), ("hours", slip.hours), ("phone", slip.phone)):
        right.gap(3)
        right.stacked(t[k], _printable(v), 10.5)
    col.ops.extend(right.ops)
    col.y = max(col.y - quiet, right.y)
    size = 10.5
    if slip.what_to_bring.strip():
        col.gap(3)
        col.stacked(t["bring"], _printable(slip.what_to_bring), size)
    col.gap(5)
    _validity(col, slip, t, size)
    # the footer sits at the bottom of the page when there is room, else right after the rest
    foot = _Col(col.x, col.width, scale)
    _footer(foot, t, size)
    bottom = page_h - 7 * mm
    foot_top = max(col.y + 5 * scale, bottom - foot.y)
    for op in foot.ops:
        op = list(op)
        op[3 if op[0] == "rule" else 5] += foot_top
        col.ops.append(tuple(op))
    return width, page_h, col.ops, foot_top + foot.y <= bottom


# ------------------------------------------------------------------ drawing

def _draw(c: canvas.Canvas, page_h: float, ops) -> None:
    for op in ops:
        kind = op[0]
        if kind == "text":
            _, font, size, align, x, y, text, white = op
            c.setFillGray(1 if white else 0)
            c.setFont(font, size)
            draw = {"left": c.drawString, "center": c.drawCentredString, "right": c.drawRightString}[align]
            draw(x, page_h - y, text)
        elif kind == "rule":
            _, x1, x2, y, weight = op
            c.setLineWidth(weight)
            c.line(x1, page_h - y, x2, page_h - y)
        elif kind == "box":
            _, x, y, w, h = op
            c.setFillGray(0)
            c.rect(x, page_h - y - h, w, h, stroke=0, fill=1)
        elif kind == "qr":
            _, x, y, m, matrix = op
            c.setFillGray(0)
            path = c.beginPath()
            top = page_h - y
            for r, row in enumerate(matrix):
                run = None
                for col, dark in enumerate(row + [False]):
                    if dark and run is None:
                        run = col
                    elif not dark and run is not None:  # one rectangle per horizontal run of dark modules
                        path.rect(x + run * m, top - (r + 1) * m, (col - run) * m, m)
                        run = None
            c.drawPath(path, stroke=0, fill=1)


def render(slip: SlipData, fmt: str = "80mm", *, qr_backend: str = "qrcode") -> bytes:
    """The slip as PDF bytes. ``fmt``: "80mm" (thermal roll, height fitted) or "a6"."""
    from booth.referrals import qr

    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ValueError(f"unknown slip format {fmt!r}; use one of {FORMATS}")
    language = slip.language if slip.language in TEXT else "es"
    if language != slip.language:
        from dataclasses import replace
        slip = replace(slip, language=language)
    t = TEXT[language]
    matrix = {"qrcode": qr.qr_matrix, "segno": qr.qr_matrix_segno}[qr_backend](slip.url)

    if fmt == "80mm":
        width, height, ops = _layout_80mm(slip, t, matrix)
    else:
        scale = 1.0
        while True:
            width, height, ops, fits = _layout_a6(slip, t, matrix, scale)
            if fits or scale <= 0.6:
                break
            scale -= 0.05

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(width, height), invariant=1, pageCompression=1, lang=language)
    c.setTitle(TITLE[language])
    c.setAuthor("")
    c.setSubject("")
    c.setKeywords("")
    c.setCreator("Vínculo")
    _draw(c, height, ops)
    c.showPage()
    c.save()
    return buf.getvalue()
