"""Pure logic: read-window edges and the testing algorithm (property tests)."""
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from booth.screening.algorithm import (Algorithm, Conclusion, Disease, NextStep, Outcome, Reading, CONCLUSIONS,
                                       derive)
from booth.screening.windows import ReadWindow, TimerState

T0 = datetime(2026, 6, 27, 16, 0, tzinfo=timezone.utc)
SECOND = timedelta(seconds=1)


@pytest.mark.parametrize("start,end", [(15, 60), (20, 40), (10, 20), (5, 20), (15, 20), (10, 25), (1, 5)])
def test_window_edges_one_second_before_at_after(start, end):
    w = ReadWindow.minutes(start, end)
    opens, closes = T0 + timedelta(minutes=start), T0 + timedelta(minutes=end)
    assert w.state(T0, opens - SECOND) is TimerState.DEVELOPING
    assert w.is_early(T0, opens - SECOND)
    assert w.state(T0, opens) is TimerState.READY
    assert w.state(T0, opens + SECOND) is TimerState.READY
    assert w.state(T0, closes - SECOND) is TimerState.READY
    assert w.state(T0, closes) is TimerState.READY
    assert w.state(T0, closes + SECOND) is TimerState.TOO_LATE
    assert w.is_late(T0, closes + SECOND) and not w.is_late(T0, closes)
    assert w.wait(T0, opens - SECOND) == SECOND and w.wait(T0, opens) == timedelta(0)


def test_window_must_be_ordered():
    with pytest.raises(ValueError):
        ReadWindow.minutes(20, 20)
    with pytest.raises(ValueError):
        ReadWindow.minutes(-1, 5)


@given(st.integers(0, 3600), st.integers(1, 3600), st.integers(-100, 8000))
def test_window_states_partition_time(start, length, offset):
    w = ReadWindow(timedelta(seconds=start), timedelta(seconds=start + length))
    now = T0 + timedelta(seconds=offset)
    state = w.state(T0, now)
    assert (state is TimerState.DEVELOPING) == (offset < start)
    assert (state is TimerState.TOO_LATE) == (offset > start + length)


PRODUCTS = ["determine-hiv", "oraquick-hiv", "bioline-hiv"]
readings = st.lists(st.builds(Reading, st.sampled_from(PRODUCTS), st.sampled_from(list(Outcome))), max_size=5)


@given(st.sampled_from(list(Disease)), readings, st.sampled_from(list(Algorithm)), st.booleans(), st.booleans())
def test_conclusion_is_always_one_of_the_disease_list(disease, rs, alg, consented, known):
    d = derive(disease, rs, algorithm=alg, consented=consented, known_positive=known)
    assert d.conclusion in CONCLUSIONS[disease]


@given(readings)
def test_one_test_algorithm_first_valid_result_decides(rs):
    d = derive(Disease.HIV, rs, algorithm=Algorithm.ONE_TEST)
    valid = [r for r in rs if r.outcome is not Outcome.INVALID]
    if not rs:
        assert d.conclusion is Conclusion.NOT_TESTED
    elif not valid:
        assert d.conclusion is Conclusion.INVALID_UNRESOLVED and d.next_step is NextStep.REPEAT
    elif valid[0].outcome is Outcome.REACTIVE:
        assert d.conclusion is Conclusion.REACTIVE_NEEDS_CONFIRMATION and d.final
    else:
        assert d.conclusion is Conclusion.NON_REACTIVE and d.final


@given(readings)
def test_two_test_algorithm(rs):
    d = derive(Disease.HIV, rs, algorithm=Algorithm.TWO_TEST)
    valid = [r for r in rs if r.outcome is not Outcome.INVALID]
    if not valid:
        return
    first = valid[0]
    if first.outcome is Outcome.NON_REACTIVE:
        assert d.conclusion is Conclusion.NON_REACTIVE
        return
    second = [r for r in valid[1:] if r.product != first.product]
    if not second:
        assert d.next_step is NextStep.SECOND_TEST and d.first_product == first.product
        assert d.conclusion is Conclusion.REACTIVE_NEEDS_CONFIRMATION
    elif second[0].outcome is Outcome.REACTIVE:
        assert d.conclusion is Conclusion.REACTIVE_NEEDS_CONFIRMATION and d.final
    else:
        assert d.conclusion is Conclusion.DISCORDANT_NEEDS_LAB and d.final


@pytest.mark.parametrize("first,second,expected", [
    ("reactive", "reactive", Conclusion.REACTIVE_NEEDS_CONFIRMATION),
    ("reactive", "non_reactive", Conclusion.DISCORDANT_NEEDS_LAB),
    ("non_reactive", None, Conclusion.NON_REACTIVE),
])
def test_two_test_combinations(first, second, expected):
    rs = [Reading("determine-hiv", Outcome(first))]
    if second:
        rs.append(Reading("oraquick-hiv", Outcome(second)))
    assert derive(Disease.HIV, rs, algorithm=Algorithm.TWO_TEST).conclusion is expected


def test_same_product_does_not_count_as_second_test():
    rs = [Reading("determine-hiv", Outcome.REACTIVE), Reading("determine-hiv", Outcome.NON_REACTIVE)]
    d = derive(Disease.HIV, rs, algorithm=Algorithm.TWO_TEST)
    assert d.next_step is NextStep.SECOND_TEST


def test_known_positive_and_refusal():
    assert derive(Disease.HIV, [], known_positive=True).conclusion is Conclusion.KNOWN_POSITIVE_NOT_TESTED
    assert derive(Disease.HCV, [], known_positive=True, consented=False).conclusion is Conclusion.NOT_TESTED
    d = derive(Disease.HIV, [], consented=False)
    assert d.conclusion is Conclusion.NOT_TESTED and d.final


def test_syphilis_is_always_one_test():
    rs = [Reading("bioline-duo", Outcome.REACTIVE)]
    d = derive(Disease.SYPHILIS, rs, algorithm=Algorithm.TWO_TEST)
    assert d.conclusion is Conclusion.REACTIVE_NEEDS_CONFIRMATION and d.final
