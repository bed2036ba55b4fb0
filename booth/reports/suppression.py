"""Small-cell suppression: what of a table of counts may leave the coordinator view (DOMAIN.md).

Pure functions, no Flask. The rule (docs/ARCHITECTURE.md, "Small-cell suppression"):

1. **Unit.** Suppression is decided once per *unit*: one booth's day. A unit's table is a grid of counts
   (rows × columns) with, when they mean something, row totals, column totals and a grand total.
2. **Primary.** Every interior count 1 … threshold − 1 is published as ``SMALL`` (written ``<10``: the
   reader learns only that it lies in 1 … threshold − 1). Zeros and counts ≥ threshold are published.
3. **Complementary: margins go.** The total of every row or column that holds a ``SMALL`` cell is
   ``HIDDEN`` (written blank: nothing is said about it, not even "< 10"), and so is the grand total as soon
   as any total is hidden. No interior cell is ever hidden as a complement. Then every linear equation a
   reader can write (row, column and grand totals) that involves a small cell also involves a hidden total
   that appears nowhere else as a number: a small cell stays anywhere in 1 … threshold − 1, whatever else
   is published. (The usual "hide a second cell of the row" leaves cases the LP audit breaks — two small
   cells whose total is small — and needs an audit per table; this rule needs none.)
4. **Unions of whole units.** A table over several units (a date range, several booths) is never
   suppressed afresh from its own sums: it is the union of the units' *published* tables. A cell of the
   union is a number only when it is a number in every unit (the sum of those numbers); it is ``SMALL``
   when exactly one unit has it non-zero and that one is ``SMALL`` (the same fact that unit publishes);
   otherwise ``HIDDEN``. So every number of any export is a sum of numbers that the unit exports publish
   anyway, and subtracting two exports (day 1 from days 1–2, one booth from all booths) yields only sums of
   published numbers: never a hidden cell.
5. **Linked partitions.** One total split several ways (visits by age band, by gender identity, by
   social-security status, by how the visit ended) is one linked table (``suppress_linked``): the sums of
   the splits all equal the same total, so a split with no small cell would give the total away. When any
   split holds a small cell, the total is ``HIDDEN`` and *every* split gets one ``HIDDEN`` cell besides its
   ``SMALL`` ones: its smallest cell that is zero or ≥ threshold (a split with no such cell — all its cells
   small, or a single cell — is hidden whole).
   Each split then has an unbounded slack, so whatever is published, every small cell can still be
   anything from 1 to threshold − 1.
6. **Rates** are published only when their numerator and denominator are published numbers (``rate``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence, Union


class Mask:
    """A published value that is not a number."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


SMALL = Mask("SMALL")      # an interior count 1 … threshold − 1: written "<10"
HIDDEN = Mask("HIDDEN")    # a complementary (or union) suppression: written blank, no range given

Value = Union[int, Mask]
DEFAULT_THRESHOLD = 10


def is_number(v: Value) -> bool:
    return not isinstance(v, Mask)


@dataclass
class Published:
    """A table as it may be published. ``row_totals``/``col_totals``/``grand`` are None when the table has
    no such margin (e.g. key populations: a person can count in several columns)."""
    cells: list[list[Value]]
    row_totals: list[Value] | None
    col_totals: list[Value] | None
    grand: Value | None

    def values(self) -> Iterable[Value]:
        for row in self.cells:
            yield from row
        yield from self.row_totals or ()
        yield from self.col_totals or ()
        if self.grand is not None:
            yield self.grand


def _check(cells: Sequence[Sequence[int]], threshold: int) -> None:
    if threshold < 1:
        raise ValueError("threshold must be at least 1")
    widths = {len(r) for r in cells}
    if len(widths) > 1:
        raise ValueError("ragged table")
    if any((not isinstance(v, int)) or v < 0 for r in cells for v in r):
        raise ValueError("counts must be non-negative integers")


def suppress(cells: Sequence[Sequence[int]], *, threshold: int = DEFAULT_THRESHOLD, row_totals: bool = True,
             col_totals: bool = True) -> Published:
    """One unit's table of counts → what may be published (rules 2 and 3 of the module docstring)."""
    _check(cells, threshold)
    n_cols = len(cells[0]) if cells else 0
    out = [[SMALL if 0 < v < threshold else v for v in row] for row in cells]
    rows = cols = grand = None
    if row_totals:
        rows = [HIDDEN if any(v is SMALL for v in out[i]) else sum(cells[i]) for i in range(len(cells))]
    if col_totals:
        cols = [HIDDEN if any(out[i][j] is SMALL for i in range(len(cells))) else sum(r[j] for r in cells)
                for j in range(n_cols)]
    if row_totals or col_totals:
        margins = (rows or []) + (cols or [])
        any_small = any(v is SMALL for r in out for v in r)
        grand = HIDDEN if any_small or any(m is HIDDEN for m in margins) else sum(sum(r) for r in cells)
    return Published(out, rows, cols, grand)


@dataclass
class Linked:
    """One total and its splits (each a list of counts summing to the total), as it may be published."""
    partitions: list[list[Value]]
    total: Value

    def values(self) -> Iterable[Value]:
        for p in self.partitions:
            yield from p
        yield self.total


def suppress_linked(partitions: Sequence[Sequence[int]], *, threshold: int = DEFAULT_THRESHOLD) -> Linked:
    """One unit's total split several ways → what may be published (rule 5). Every split must sum to the
    same total."""
    _check([[sum(p)] for p in partitions], threshold)
    for p in partitions:
        _check([list(p)], threshold)
    totals = {sum(p) for p in partitions}
    if len(totals) > 1:
        raise ValueError(f"the splits do not add up to one total: {sorted(totals)}")
    total = totals.pop() if totals else 0
    if not any(0 < v < threshold for p in partitions for v in p) and not 0 < total < threshold:
        return Linked([list(p) for p in partitions], total)
    out: list[list[Value]] = []
    for p in partitions:
        row: list[Value] = [SMALL if 0 < v < threshold else v for v in p]
        plain = [k for k, v in enumerate(p) if not 0 < v < threshold]
        if len(p) == 1 or not plain:
            row = [HIDDEN] * len(p)          # a one-way "split" is the total; a split of small cells only
        else:
            row[min(plain, key=lambda k: p[k])] = HIDDEN
        out.append(row)
    return Linked(out, HIDDEN)


def combine_linked(tables: Sequence[Linked]) -> Linked:
    """The union of several units' published linked tables of the same shape (rule 4)."""
    first = tables[0]
    return Linked([[combine_values([t.partitions[i][j] for t in tables]) for j in range(len(first.partitions[i]))]
                   for i in range(len(first.partitions))], combine_values([t.total for t in tables]))


def combine_values(parts: Sequence[Value]) -> Value:
    """One cell of a union of units (rule 4)."""
    if all(is_number(p) for p in parts):
        return sum(parts)  # type: ignore[arg-type]
    nonzero = [p for p in parts if p != 0]
    if len(nonzero) == 1 and nonzero[0] is SMALL:
        return SMALL
    return HIDDEN


def combine(tables: Sequence[Published]) -> Published:
    """The union of several units' published tables of the same shape (rule 4)."""
    if not tables:
        raise ValueError("nothing to combine")
    first = tables[0]

    def margin(get):
        if get(first) is None:
            return None
        return [combine_values([get(t)[k] for t in tables]) for k in range(len(get(first)))]

    cells = [[combine_values([t.cells[i][j] for t in tables]) for j in range(len(first.cells[i]))]
             for i in range(len(first.cells))]
    grand = None if first.grand is None else combine_values([t.grand for t in tables])
    return Published(cells, margin(lambda t: t.row_totals), margin(lambda t: t.col_totals), grand)


def rate(numerator: Value, denominator: Value) -> float | None | Mask:
    """numerator / denominator when both are published numbers; ``HIDDEN`` when either is not; None when
    there is nothing to divide by."""
    if not (is_number(numerator) and is_number(denominator)):
        return HIDDEN
    return numerator / denominator if denominator else None  # type: ignore[operator]


def text(value, *, threshold: int = DEFAULT_THRESHOLD) -> str:
    """How a published value is written: a number, "<10" for ``SMALL``, blank for ``HIDDEN`` (or None)."""
    if value is SMALL:
        return f"<{threshold}"
    if value is HIDDEN or value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
