"""Small-cell suppression, checked the way an attacker would: linear programming over everything published.

For random tables, nothing under the threshold is shown, and every cell hidden because its count is
1 … threshold − 1 keeps a linear-programming range (scipy ``linprog``, minimum and maximum given every
published number, the margins, non-negativity, and "<10" cells bounded 1 … threshold − 1) that reaches
≤ 1 and ≥ threshold − 1. The same over a day, a two-day range and the all-days export of the same data,
with the constraints of the three published tables stacked over the same underlying cells; and over one
booth and all booths.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import linprog

from booth.reports import suppression as sup
from booth.reports.suppression import HIDDEN, SMALL

count = st.one_of(st.integers(0, 12), st.integers(0, 60))
thresholds = st.sampled_from([3, 5, 10, 16])


@st.composite
def shapes(draw):
    return draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.booleans()), draw(st.booleans())


@st.composite
def tables(draw, n_units=1):
    rows, cols, row_totals, col_totals = draw(shapes())
    units = [[[draw(count) for _ in range(cols)] for _ in range(rows)] for _ in range(n_units)]
    return units, row_totals, col_totals, draw(thresholds)


# ---------------------------------------------------------------- the LP over published values

class Attack:
    """Linear constraints over the underlying cells ``x[u][i][j]`` of several units."""

    def __init__(self, n_units: int, rows: int, cols: int, threshold: int):
        self.n, self.rows, self.cols, self.t = n_units, rows, cols, threshold
        self.size = n_units * rows * cols
        self.eq, self.eq_b, self.ub, self.ub_b = [], [], [], []

    def var(self, u, i, j) -> int:
        return (u * self.rows + i) * self.cols + j

    def expr(self, units, cells) -> np.ndarray:
        a = np.zeros(self.size)
        for u in units:
            for i, j in cells:
                a[self.var(u, i, j)] = 1
        return a

    def published(self, value, a) -> None:
        if value is None or value is HIDDEN:
            return
        if value is SMALL:
            self.ub.append(a)
            self.ub_b.append(self.t - 1)
            self.ub.append(-a)
            self.ub_b.append(-1)
            return
        self.eq.append(a)
        self.eq_b.append(value)

    def table(self, units, pub: sup.Published) -> None:
        r, c = self.rows, self.cols
        for i in range(r):
            for j in range(c):
                self.published(pub.cells[i][j], self.expr(units, [(i, j)]))
        for i, v in enumerate(pub.row_totals or ()):
            self.published(v, self.expr(units, [(i, j) for j in range(c)]))
        for j, v in enumerate(pub.col_totals or ()):
            self.published(v, self.expr(units, [(i, j) for i in range(r)]))
        if pub.grand is not None:
            self.published(pub.grand, self.expr(units, [(i, j) for i in range(r) for j in range(c)]))

    def bounds(self, a) -> tuple[float, float]:
        kw = {"A_eq": np.array(self.eq) if self.eq else None, "b_eq": self.eq_b or None,
              "A_ub": np.array(self.ub) if self.ub else None, "b_ub": self.ub_b or None,
              "bounds": [(0, None)] * self.size, "method": "highs"}
        low = linprog(a, **kw)
        high = linprog(-a, **kw)
        assert low.status == 0, low.message            # the true table is always feasible
        assert high.status in (0, 3), high.message
        return low.fun, (float("inf") if high.status == 3 else -high.fun)


def assert_nothing_small_shown(pub: sup.Published, t: int) -> None:
    for v in pub.values():
        assert v is SMALL or v is HIDDEN or v == 0 or v >= t, v


def lines(rows, cols, row_totals, col_totals):
    """(cells of the margin, is it published) for every margin."""
    out = []
    if row_totals:
        out += [[(i, j) for j in range(cols)] for i in range(rows)]
    if col_totals:
        out += [[(i, j) for i in range(rows)] for j in range(cols)]
    if row_totals or col_totals:
        out.append([(i, j) for i in range(rows) for j in range(cols)])
    return out


# ---------------------------------------------------------------- one table

@given(tables())
def test_one_table_nothing_small_shown_and_no_small_cell_narrowed(case):
    (cells,), row_totals, col_totals, t = case
    rows, cols = len(cells), len(cells[0])
    pub = sup.suppress(cells, threshold=t, row_totals=row_totals, col_totals=col_totals)
    assert_nothing_small_shown(pub, t)
    lp = Attack(1, rows, cols, t)
    lp.table([0], pub)
    for i in range(rows):
        for j in range(cols):
            v = cells[i][j]
            if 0 < v < t:
                assert pub.cells[i][j] is SMALL
                low, high = lp.bounds(lp.expr([0], [(i, j)]))
                assert low <= 1 + 1e-6 and high >= t - 1 - 1e-6, (cells, (i, j), low, high)
            else:
                assert pub.cells[i][j] == v       # no interior cell is hidden as a complement
    # a margin whose own count is small is hidden too; its range is as wide as the "<10" cells it sums allow
    for line in lines(rows, cols, row_totals, col_totals):
        v = sum(cells[i][j] for i, j in line)
        if 0 < v < t:
            smalls = sum(1 for i, j in line if pub.cells[i][j] is SMALL)
            low, high = lp.bounds(lp.expr([0], line))
            assert low <= max(1, smalls) + 1e-6 and high >= t - 1 - 1e-6, (cells, line, low, high)


def test_hand_example_two_small_cells_in_a_row():
    """The case that breaks "hide a second cell of the row": 1 and 1 above 50 and 50."""
    pub = sup.suppress([[1, 1], [50, 50]])
    assert pub.cells == [[SMALL, SMALL], [50, 50]]
    assert pub.row_totals == [HIDDEN, 100] and pub.col_totals == [HIDDEN, HIDDEN] and pub.grand is HIDDEN
    assert sup.text(pub.cells[0][0]) == "<10" and sup.text(pub.grand) == "" and sup.text(50) == "50"


def test_no_small_cell_publishes_everything():
    pub = sup.suppress([[0, 12], [30, 10]], threshold=10)
    assert pub.cells == [[0, 12], [30, 10]] and pub.row_totals == [12, 40] and pub.col_totals == [30, 22]
    assert pub.grand == 52


def test_threshold_is_an_argument():
    assert sup.suppress([[4, 20]], threshold=5).cells == [[SMALL, 20]]
    assert sup.suppress([[5, 20]], threshold=5).cells == [[5, 20]]
    assert sup.text(SMALL, threshold=5) == "<5"
    with pytest.raises(ValueError):
        sup.suppress([[1]], threshold=0)


def test_rates_need_published_numbers():
    assert sup.rate(12, 40) == 0.3
    assert sup.rate(SMALL, 40) is HIDDEN and sup.rate(12, HIDDEN) is HIDDEN
    assert sup.rate(0, 0) is None


# ---------------------------------------------------------------- one total split several ways

@st.composite
def linked(draw, n_units=1):
    """Units of one total split 1–3 ways (e.g. visits by age band, by gender, by how the visit ended)."""
    widths = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    units = []
    for _ in range(n_units):
        first = [draw(count) for _ in range(widths[0])]
        total, parts = sum(first), [first]
        for w in widths[1:]:       # another split of the same total: random cut points
            cuts = sorted(draw(st.lists(st.integers(0, total), min_size=w - 1, max_size=w - 1)))
            parts.append([b - a for a, b in zip([0] + cuts, cuts + [total])])
        units.append(parts)
    return units, draw(thresholds)


def linked_attack(units, t, ranges):
    """LP variables: every split cell of every unit; the unit's splits all sum to one (hidden) total."""
    index, n = {}, 0
    for u, parts in enumerate(units):
        for i, p in enumerate(parts):
            for j in range(len(p)):
                index[u, i, j], n = n, n + 1
    eq, eq_b, ub, ub_b = [], [], [], []
    for u, parts in enumerate(units):          # what anyone knows: the splits of a unit add up alike
        for i in range(1, len(parts)):
            a = np.zeros(n)
            for j in range(len(parts[0])):
                a[index[u, 0, j]] += 1
            for j in range(len(parts[i])):
                a[index[u, i, j]] -= 1
            eq.append(a)
            eq_b.append(0)
    published = [sup.suppress_linked(p, threshold=t) for p in units]
    for r in ranges:
        pub = sup.combine_linked([published[u] for u in r])
        assert all(v is SMALL or v is HIDDEN or v == 0 or v >= t for v in pub.values())

        def add(value, a):
            if value is HIDDEN:
                return
            if value is SMALL:
                ub.extend([a, -a])
                ub_b.extend([t - 1, -1])
            else:
                eq.append(a)
                eq_b.append(value)
        for i, p in enumerate(pub.partitions):
            for j, v in enumerate(p):
                a = np.zeros(n)
                for u in r:
                    a[index[u, i, j]] = 1
                add(v, a)
        a = np.zeros(n)
        for u in r:
            for j in range(len(units[u][0])):
                a[index[u, 0, j]] = 1
        add(pub.total, a)
    kw = {"A_eq": np.array(eq) if eq else None, "b_eq": eq_b or None, "A_ub": np.array(ub) if ub else None,
          "b_ub": ub_b or None, "bounds": [(0, None)] * n, "method": "highs"}
    for (u, i, j), k in index.items():
        v = units[u][i][j]
        if 0 < v < t:
            a = np.zeros(n)
            a[k] = 1
            low, high = linprog(a, **kw), linprog(-a, **kw)
            assert low.status == 0 and high.status in (0, 3)
            top = float("inf") if high.status == 3 else -high.fun
            # a one-way split is the total itself: like a margin, it is at least the number of "<10" cells
            # of another split (each is ≥ 1), which is the published band, not a disclosure
            floor = 1 if len(units[u][i]) > 1 else max(
                [1] + [sum(1 for x in p if x is SMALL) for p in published[u].partitions])
            assert low.fun <= floor + 1e-6 and top >= t - 1 - 1e-6, (units, (u, i, j), low.fun, top)


@given(linked())
def test_linked_splits_give_no_small_cell_away(case):
    units, t = case
    linked_attack(units, t, ranges=[[0]])


@given(linked(n_units=3))
def test_linked_splits_over_a_day_two_days_and_all_days(case):
    units, t = case
    linked_attack(units, t, ranges=[[0], [0, 1], [0, 1, 2]])


def test_linked_hand_example():
    """Visits by age band [1, 100] and by gender [9, 92]: publishing 100 and 92 with a hidden total would
    pin both small cells (the total must be ≥ 101 and ≤ 101); one more hidden cell per split prevents it."""
    pub = sup.suppress_linked([[1, 100], [9, 92]])
    assert pub.partitions == [[SMALL, HIDDEN], [SMALL, HIDDEN]] and pub.total is HIDDEN
    assert sup.suppress_linked([[20, 0], [5, 15]]).partitions == [[20, HIDDEN], [SMALL, HIDDEN]]
    assert sup.suppress_linked([[20, 10], [15, 15]]) == sup.Linked([[20, 10], [15, 15]], 30)
    with pytest.raises(ValueError):
        sup.suppress_linked([[1, 2], [4]])


# ---------------------------------------------------------------- overlapping and cumulative ranges

def check_stack(units, row_totals, col_totals, t, ranges):
    rows, cols = len(units[0]), len(units[0][0])
    published = [sup.suppress(u, threshold=t, row_totals=row_totals, col_totals=col_totals) for u in units]
    lp = Attack(len(units), rows, cols, t)
    for r in ranges:
        pub = sup.combine([published[u] for u in r])
        assert_nothing_small_shown(pub, t)
        lp.table(r, pub)
    # every underlying small count, in any unit, whether or not its own unit export is among the ranges
    for u, cells in enumerate(units):
        for i in range(rows):
            for j in range(cols):
                if 0 < cells[i][j] < t:
                    low, high = lp.bounds(lp.expr([u], [(i, j)]))
                    assert low <= 1 + 1e-6 and high >= t - 1 - 1e-6, (units, u, (i, j), low, high)
        for line in lines(rows, cols, row_totals, col_totals):
            if 0 < sum(cells[i][j] for i, j in line) < t:
                assert lp.bounds(lp.expr([u], line))[1] >= t - 1 - 1e-6


@given(tables(n_units=3))
def test_day_two_day_range_and_all_days_together(case):
    """Day 1, days 1–2 and days 1–3 of the same data: subtracting exports recovers no small count."""
    units, row_totals, col_totals, t = case
    check_stack(units, row_totals, col_totals, t, ranges=[[0], [0, 1], [0, 1, 2]])


@given(tables(n_units=3))
def test_one_booth_and_all_booths(case):
    """Booth 1 alone, booths 2–3, and all booths of one day."""
    units, row_totals, col_totals, t = case
    check_stack(units, row_totals, col_totals, t, ranges=[[0], [1, 2], [0, 1, 2]])


def test_subtraction_hand_example():
    """Day 1 shows 50; day 2 adds 3. Suppressing days 1–2 afresh would show 53 and give the 3 away."""
    day1, day2 = sup.suppress([[50, 20]]), sup.suppress([[3, 20]])
    both = sup.combine([day1, day2])
    assert both.cells == [[HIDDEN, 40]] and both.row_totals == [HIDDEN] and both.grand is HIDDEN
    # a unit with a zero contributes nothing: the small cell of the other unit is published as it is
    assert sup.combine([sup.suppress([[0, 20]]), day2]).cells == [[SMALL, 40]]


def test_the_attack_catches_fresh_suppression_of_a_range():
    """The LP check has teeth: suppressing days 1–2 afresh from its own sums pins day 2's small cell."""
    units, t = [[[50, 20]], [[3, 20]]], 10
    lp = Attack(2, 1, 2, t)
    lp.table([0], sup.suppress(units[0]))
    lp.table([0, 1], sup.suppress([[53, 40]]))
    assert lp.bounds(lp.expr([1], [(0, 0)])) == pytest.approx((3, 3))
