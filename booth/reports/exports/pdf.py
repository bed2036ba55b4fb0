"""The PDF export: a daily report (reportlab) of the suppressed totals — a summary page, one page per booth,
charts — with text that ``pdftotext`` can read.

Every number comes from ``common.Scope.published``: the summary is the union of every unit in range, a
booth's page the union of that booth's units, a day's row the union of that day's units — unions of whole
suppressed units, like the CSV. Counts 1 … threshold − 1 are written ``<10``, hidden values are left blank,
rates only where the CSV gives them. The charts are drawn with reportlab graphics from the same published
numbers: a ``<10`` bar is not drawn (its label says ``<10``), a hidden one is neither drawn nor labelled. The
booth dashboard's hourly chart is not here: hourly counts are not among the suppressed tables (a split of the
visits by hour would blank the visits total of almost every day).

Helvetica (not embedded, WinAnsi): names outside it are spelled without accents (``slip_pdf._printable``).
Output is deterministic for the same data and ``now`` (``invariant=1``); the metadata says only "Vínculo".
"""
from __future__ import annotations

import io
from datetime import date
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from reportlab.graphics.shapes import Drawing, Line, Rect, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import (KeepTogether, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table,
                                TableStyle)

from booth import labels
from booth.referrals.slip_pdf import _printable
from booth.reports import suppression as sup
from booth.reports.charts import INK, MUTED, PALETTE, nice_ceiling
from booth.reports.exports import common
from booth.reports.exports.common import Scope, indicator_label, text, value_label

REGULAR, BOLD = "Helvetica", "Helvetica-Bold"
MARGIN = 15 * mm
WIDTH = A4[0] - 2 * MARGIN
GRID = colors.HexColor("#c9c4d6")
SHADE = colors.HexColor("#f1edf6")
OUTCOMES = ("non_reactive", "reactive", "discordant", "unresolved", "in_progress")
DIMENSIONS = ("age_band", "gender_identity", "beneficiary", "key_population")

STYLES = {
    "h1": ParagraphStyle("h1", fontName=BOLD, fontSize=16, leading=20, spaceAfter=4, textColor=INK),
    "h2": ParagraphStyle("h2", fontName=BOLD, fontSize=10.5, leading=13, spaceBefore=7, spaceAfter=3, textColor=INK),
    "body": ParagraphStyle("body", fontName=REGULAR, fontSize=8.5, leading=11, textColor=INK),
    "note": ParagraphStyle("note", fontName=REGULAR, fontSize=7.5, leading=9.5, textColor=MUTED),
    "cell": ParagraphStyle("cell", fontName=REGULAR, fontSize=7.5, leading=9, textColor=INK),
    "head": ParagraphStyle("head", fontName=BOLD, fontSize=7.5, leading=9, textColor=INK),
    "headnum": ParagraphStyle("headnum", fontName=BOLD, fontSize=7.5, leading=9, textColor=INK, alignment=2),
}


def _p(value: str, style: str = "body") -> Paragraph:
    return Paragraph(escape(_printable(value)), STYLES[style])


def _day(d: date) -> str:
    return d.strftime("%d/%m/%Y")


def _days(days: list[date]) -> str:
    if not days:
        return "—"
    if len(days) == 1:
        return _day(days[0])
    return _("%(first)s to %(last)s", first=_day(days[0]), last=_day(days[-1]))


# ---------------------------------------------------------------- tables

def _table(rows: list[list], widths: list[float], *, header: bool = True, sections: tuple[int, ...] = (),
           words: int = 1) -> Table:
    """A compact table: the first ``words`` columns words (wrapped), the others numbers (right-aligned);
    ``sections``: rows that are a sub-heading spanning the table."""
    def cell(c, r: int, k: int):
        if isinstance(c, Paragraph):
            return c
        c = _printable(str(c))
        if header and r == 0:                                   # words wrap; numbers stay on one line
            return Paragraph(escape(c), STYLES["head" if k < words else "headnum"])
        if k < words or r in sections:
            return Paragraph(escape(c), STYLES["head" if r in sections else "cell"])
        return c

    body = [[cell(c, r, k) for k, c in enumerate(row)] for r, row in enumerate(rows)]
    style = [("FONT", (0, 0), (-1, -1), REGULAR, 7.5), ("LEADING", (0, 0), (-1, -1), 9),
             ("TEXTCOLOR", (0, 0), (-1, -1), INK), ("ALIGN", (words, 0), (-1, -1), "RIGHT"),
             ("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("LINEBELOW", (0, 0), (-1, -1), 0.25, GRID),
             ("TOPPADDING", (0, 0), (-1, -1), 1.6), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.6),
             ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3)]
    if header:
        style += [("FONT", (0, 0), (-1, 0), BOLD, 7.5), ("LINEBELOW", (0, 0), (-1, 0), 0.8, INK)]
    for r in sections:
        style += [("SPAN", (0, r), (-1, r)), ("FONT", (0, r), (-1, r), BOLD, 7.5), ("BACKGROUND", (0, r), (-1, r), SHADE),
                  ("ALIGN", (0, r), (-1, r), "LEFT")]
    t = Table(body, colWidths=widths, repeatRows=1 if header else 0, hAlign="LEFT")
    t.setStyle(TableStyle(style))
    return t


def _side_by_side(*parts, widths: list[float]) -> Table:
    t = Table([list(parts)], colWidths=widths, hAlign="LEFT")
    t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                           ("RIGHTPADDING", (0, 0), (-1, -1), 8), ("TOPPADDING", (0, 0), (-1, -1), 0),
                           ("BOTTOMPADDING", (0, 0), (-1, -1), 0)]))
    return t


def _v(published: dict, indicator: str, disaggregation: str = "total", *, threshold: int, default="—") -> str:
    """A published value in words; "—" when this range has no such row (e.g. a test nobody took)."""
    if (indicator, disaggregation) not in published:
        return default
    return text(published[(indicator, disaggregation)], threshold=threshold)


def _diseases(published: dict) -> list[str]:
    return [d for d in labels.DISEASES if (f"{d}.tested", "total") in published]


def _per_test(published: dict, threshold: int, width: float) -> Table | Paragraph:
    diseases = _diseases(published)
    if not diseases:
        return _p(_("No test is offered yet: the clinical settings are not signed off."), "note")
    measures = ("consented", "refused", "tested") + OUTCOMES + ("positivity",)
    rows = [[_("Indicator")] + [str(labels.DISEASES[d]) for d in diseases]]
    for m in measures:
        rows.append([str(common.PER_DISEASE[m])] + [_v(published, f"{d}.{m}", threshold=threshold) for d in diseases])
    if "hiv" in diseases:
        rows.append([str(common.PER_DISEASE["known_positive_tested"])]
                    + [_v(published, "hiv.known_positive_tested", threshold=threshold) if d == "hiv" else "—"
                       for d in diseases])
    first = width * 0.46
    return _table(rows, [first] + [(width - first) / len(diseases)] * len(diseases))


def _label_values(items: list[tuple[str, str]], width: float, title: str) -> Table:
    rows = [[title, ""]] + [[label, value] for label, value in items]
    t = _table(rows, [width * 0.74, width * 0.26])
    return t


def _disaggregations(published: dict, threshold: int, width: float, dimensions=DIMENSIONS) -> Table:
    measures = (("visits", _("Visits")), ("people_tested", _("People tested")),
                ("people_with_result", _("With a result")), ("people_reactive", _("Reactive")))
    rows = [[""] + [m[1] for m in measures]]
    sections = []
    for dim in dimensions:
        values = [dis.partition("=")[2] for ind, dis in published if ind == "visits" and dis.startswith(dim + "=")]
        if not values:
            continue
        sections.append(len(rows))
        rows.append([str(common.DIMENSIONS[dim])] + [""] * len(measures))
        for value in values:
            rows.append([value_label(dim, value)]
                        + [_v(published, m, f"{dim}={value}", threshold=threshold) for m, _label in measures])
    first = width * 0.34
    return _table(rows, [first] + [(width - first) / len(measures)] * len(measures), sections=tuple(sections))


# ---------------------------------------------------------------- charts (reportlab graphics)

def bar_drawing(title: str, categories: list[str], series: list[tuple[str, list]], *, threshold: int,
                width: float, height: float = 150) -> Drawing:
    """Grouped vertical bars of published values: a number is a bar with its value above it; ``<10`` is no bar
    and the label ``<10`` on the axis line; a hidden value is no bar and no label."""
    d = Drawing(width, height)
    left, right, top = 30, 6, 34
    longest = max((stringWidth(_printable(c), REGULAR, 6.5) for c in categories), default=0)
    stagger = longest > (width - left - right) / max(1, len(categories)) - 2   # labels on two alternating lines
    bottom = 22 if stagger else 14
    plot_w, plot_h = width - left - right, height - top - bottom
    numbers = [v for _label, values in series for v in values if sup.is_number(v) and v is not None]
    y_max = nice_ceiling(max(numbers + [4 * threshold]))      # every axis label ≥ threshold: none reads as a count
    d.add(String(0, height - 11, _printable(title), fontName=BOLD, fontSize=8.5, fillColor=colors.HexColor(INK)))
    lx = 0
    for k, (label, _values) in enumerate(series):                           # legend
        d.add(Rect(lx, height - 26, 7, 7, fillColor=colors.HexColor(PALETTE[k % len(PALETTE)]), strokeColor=None))
        d.add(String(lx + 10, height - 25, _printable(label), fontName=REGULAR, fontSize=7,
                     fillColor=colors.HexColor(INK)))
        lx += 10 + stringWidth(_printable(label), REGULAR, 7) + 12

    def y(v: float) -> float:
        return bottom + v / y_max * plot_h

    for i in range(5):                                                       # grid and value axis
        v = y_max * i / 4
        d.add(Line(left, y(v), width - right, y(v), strokeColor=GRID, strokeWidth=0.4))
        d.add(String(left - 3, y(v) - 2.5, f"{v:g}", fontName=REGULAR, fontSize=6.5, textAnchor="end",
                     fillColor=colors.HexColor(MUTED)))
    groups = max(1, len(categories))
    group_w = plot_w / groups
    bar_w = min(18.0, group_w * 0.8 / max(1, len(series)))
    for g, category in enumerate(categories):
        gx = left + g * group_w + (group_w - bar_w * len(series)) / 2
        for k, (_label, values) in enumerate(series):
            v = values[g]
            x = gx + k * bar_w
            colour = colors.HexColor(PALETTE[k % len(PALETTE)])
            if sup.is_number(v) and v is not None:
                if v:
                    d.add(Rect(x, bottom, bar_w - 1.5, y(v) - bottom, fillColor=colour, strokeColor=None))
                d.add(String(x + (bar_w - 1.5) / 2, y(v) + 1.5, f"{v:,}", fontName=REGULAR, fontSize=6,
                             textAnchor="middle", fillColor=colors.HexColor(INK)))
            elif v is sup.SMALL:
                d.add(String(x + (bar_w - 1.5) / 2, bottom + 1.5, f"<{threshold}", fontName=REGULAR, fontSize=6,
                             textAnchor="middle", fillColor=colour))
        # horizontal text only (rotated text comes out of pdftotext letter by letter)
        d.add(String(left + (g + 0.5) * group_w, bottom - (17 if stagger and g % 2 else 9), _printable(category),
                     fontName=REGULAR, fontSize=6.5, textAnchor="middle", fillColor=colors.HexColor(INK)))
    d.add(Line(left, bottom, width - right, bottom, strokeColor=colors.HexColor(INK), strokeWidth=0.6))
    return d


def _results_chart(published: dict, threshold: int, width: float) -> Drawing | None:
    diseases = _diseases(published)
    if not diseases:
        return None
    shown = {"non_reactive": _("Non-reactive"), "reactive": _("Reactive"), "discordant": _("Discordant"),
             "unresolved": _("Invalid, not resolved")}
    return bar_drawing(_("People per test and result"), [str(labels.DISEASES[d]) for d in diseases],
                       [(label, [published.get((f"{d}.{o}", "total"), 0) for d in diseases])
                        for o, label in shown.items()], threshold=threshold, width=width)


def _age_chart(published: dict, threshold: int, width: float) -> Drawing | None:
    bands = [dis.partition("=")[2] for ind, dis in published if ind == "visits" and dis.startswith("age_band=")]
    if not bands:
        return None
    return bar_drawing(_("Visits by age band"), [value_label("age_band", b) for b in bands],
                       [(_("Visits"), [published[("visits", f"age_band={b}")] for b in bands])],
                       threshold=threshold, width=width)


# ---------------------------------------------------------------- pages

def _summary_items(published: dict, threshold: int) -> list[tuple[str, str]]:
    keys = ("visits", "people_tested", "people_with_result", "people_reactive", "first_time", "first_time_share",
            "last_test_over_12m", "known_positive", "exposure_72h", "post_counseling", "result_and_post_counseling",
            "prep_interest", "pep_need", "referrals", "devices.used", "devices.invalid")
    return [(indicator_label(k), _v(published, k, threshold=threshold)) for k in keys]


def _visit_items(published: dict, threshold: int) -> list[tuple[str, str]]:
    out = [(_("Total"), _v(published, "visits", threshold=threshold))]
    for state in ("done", "left_before_result", "left_before_test", "open"):
        out.append(("… " + value_label("final_state", state),
                    _v(published, "visits", f"final_state={state}", threshold=threshold)))
    for k in ("first_time", "first_time_share", "last_test_over_12m", "known_positive", "exposure_72h"):
        out.append((indicator_label(k), _v(published, k, threshold=threshold)))
    return out


def _care_items(published: dict, threshold: int) -> list[tuple[str, str]]:
    out = [(indicator_label(k), _v(published, k, threshold=threshold))
           for k in ("pre_counseling", "post_counseling", "result_and_post_counseling", "prep_interest", "pep_need",
                     "referrals")]
    for ind, dis in published:
        if ind == "referrals" and dis.startswith("reason="):
            out.append(("… " + value_label("reason", dis.partition("=")[2]), _v(published, ind, dis, threshold=threshold)))
    for k in ("devices.used", "devices.invalid", "devices.invalid_timing", "devices.repeats"):
        out.append((indicator_label(k), _v(published, k, threshold=threshold)))
    return out


def _legend(threshold: int) -> Paragraph:
    return _p(_("Counts above zero and under %(t)s are shown as “<%(t)s”. A blank cell is hidden so that no small "
                "count can be worked out from the totals (complementary suppression); rates are given only when every "
                "count they come from is shown. Each booth's day is suppressed once; a range is the sum of its days.",
                t=threshold), "note")


def _summary(scope: Scope) -> list:
    th = scope.threshold
    published = scope.published()
    events = sorted({info.event_name for info in scope.booths.values()})
    tz = ZoneInfo(scope.units[0].timezone) if scope.units else ZoneInfo("UTC")
    story = [_p(_("Daily totals report"), "h1"),
             _p(_("Event: %(names)s", names=", ".join(events) or "—")),
             _p(_("Days: %(days)s", days=_days(scope.days()))),
             _p(_("Booths: %(names)s", names=", ".join(sorted(info.name for info in scope.booths.values())))),
             _p(_("Generated: %(when)s", when=scope.now.astimezone(tz).strftime("%d/%m/%Y %H:%M") + f" ({tz.key})")),
             Spacer(1, 4), _legend(th)]
    half = (WIDTH - 8) / 2
    story += [_p(_("Totals"), "h2"),
              _side_by_side(_label_values(_summary_items(published, th), half, _("Indicator")),
                            _per_test(published, th, half), widths=[half + 8, half])]
    chart = _results_chart(published, th, half)
    age = _age_chart(published, th, half)
    if chart or age:
        story += [Spacer(1, 6), _side_by_side(chart or "", age or "", widths=[half + 8, half])]
    by_booth = scope.by_booth()
    rows = [[_("Booth"), _("Event"), _("Days"), _("Visits"), _("People tested"), _("With a result")]]
    for booth_id, indices in by_booth.items():
        info = scope.booths[booth_id]
        p = scope.published(indices)
        rows.append([info.name, info.event_name, _days(scope.days(indices)), _v(p, "visits", threshold=th),
                     _v(p, "people_tested", threshold=th), _v(p, "people_with_result", threshold=th)])
    story += [_p(_("Per booth"), "h2"),
              _table(rows, [WIDTH * w for w in (0.2, 0.22, 0.22, 0.12, 0.12, 0.12)], words=3)]
    days = scope.days()
    if len(days) > 1:
        rows = [[_("Day"), _("Visits"), _("People tested"), _("With a result"), _("Referrals")]]
        for d in days:
            p = scope.published([i for i, u in enumerate(scope.units) if u.day == d])
            rows.append([_day(d)] + [_v(p, k, threshold=th) for k in
                                     ("visits", "people_tested", "people_with_result", "referrals")])
        story += [_p(_("Per day"), "h2"), _table(rows, [WIDTH * w for w in (0.28, 0.18, 0.18, 0.18, 0.18)])]
    return story


def _booth_page(scope: Scope, booth_id, indices: list[int]) -> list:
    th = scope.threshold
    info = scope.booths[booth_id]
    published = scope.published(indices)
    half = (WIDTH - 8) / 2
    story = [_p(f"{info.name} · {info.event_name}", "h1"), _p(_("Days: %(days)s", days=_days(scope.days(indices)))),
             _p(_("Visits and devices"), "h2"),
             _side_by_side(_label_values(_visit_items(published, th), half, _("Visits")),
                           _label_values(_care_items(published, th), half, _("Counseling and linkage")),
                           widths=[half + 8, half]),
             _p(_("Results per test"), "h2"),
             _side_by_side(_per_test(published, th, half), _results_chart(published, th, half) or "",
                           widths=[half + 8, half]),
             _p(_("Disaggregations"), "h2"),
             _side_by_side(_disaggregations(published, th, half, ("age_band", "beneficiary")),
                           _disaggregations(published, th, half, ("gender_identity", "key_population")),
                           widths=[half + 8, half])]
    return story


def render(scope: Scope) -> bytes:
    """The whole report as PDF bytes (an empty range gives a one-page report that says so)."""
    out = io.BytesIO()
    title = _("Daily totals report")

    def footer(canvas, doc):
        canvas.saveState()
        canvas.setFont(REGULAR, 7)
        canvas.setFillColor(colors.HexColor(MUTED))
        canvas.drawString(MARGIN, 9 * mm, _printable(f"Vínculo · {title} · " + _("counts under %(t)s shown as <%(t)s",
                                                                                 t=scope.threshold)))
        canvas.drawRightString(A4[0] - MARGIN, 9 * mm, _printable(_("Page %(n)s", n=doc.page)))
        canvas.restoreState()

    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                            bottomMargin=16 * mm, title=f"Vínculo · {title}", author="Vínculo", subject="",
                            creator="Vínculo", invariant=1)
    if not scope.units:
        story = [_p(title, "h1"), _p(_("No visits in this range."))]
    else:
        story = _summary(scope)
        for booth_id, indices in scope.by_booth().items():
            story += [PageBreak(), KeepTogether(_booth_page(scope, booth_id, indices))]
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()
