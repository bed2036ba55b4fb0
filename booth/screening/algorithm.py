"""The booth conclusion per visit and disease, derived from the results — never typed.

DOMAIN.md: a single rapid test never diagnoses; a reactive result needs confirmation. With the
two-test algorithm a reactive first test is followed by a second test of a *different product*;
reactive + reactive → reactive_needs_confirmation, reactive + non-reactive → discordant_needs_lab.
Syphilis (treponemal) is always one test and has no discordant or known-positive conclusion.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Sequence


class Disease(str, enum.Enum):
    HIV = "hiv"
    HCV = "hcv"
    SYPHILIS = "syphilis"


class Outcome(str, enum.Enum):
    REACTIVE = "reactive"
    NON_REACTIVE = "non_reactive"
    INVALID = "invalid"


class Algorithm(str, enum.Enum):
    ONE_TEST = "one_test"
    TWO_TEST = "two_test"


class Conclusion(str, enum.Enum):
    NON_REACTIVE = "non_reactive"
    REACTIVE_NEEDS_CONFIRMATION = "reactive_needs_confirmation"
    DISCORDANT_NEEDS_LAB = "discordant_needs_lab"
    INVALID_UNRESOLVED = "invalid_unresolved"
    NOT_TESTED = "not_tested"
    KNOWN_POSITIVE_NOT_TESTED = "known_positive_not_tested"


class NextStep(str, enum.Enum):
    FIRST_TEST = "first_test"
    SECOND_TEST = "second_test"   # a different product after a reactive first test
    REPEAT = "repeat"             # only invalid devices so far: repeat with a new device


@dataclass(frozen=True)
class Reading:
    """One device's result for one disease (voided results are left out by the caller)."""
    product: str
    outcome: Outcome


@dataclass(frozen=True)
class Derived:
    conclusion: Conclusion
    next_step: NextStep | None = None
    first_product: str | None = None

    @property
    def final(self) -> bool:
        return self.next_step is None


CONCLUSIONS = {
    Disease.HIV: tuple(Conclusion),
    Disease.HCV: tuple(c for c in Conclusion if c is not Conclusion.KNOWN_POSITIVE_NOT_TESTED),
    Disease.SYPHILIS: (Conclusion.NON_REACTIVE, Conclusion.REACTIVE_NEEDS_CONFIRMATION,
                       Conclusion.INVALID_UNRESOLVED, Conclusion.NOT_TESTED),
}


def derive(disease: Disease, readings: Sequence[Reading], *, algorithm: Algorithm = Algorithm.ONE_TEST,
           consented: bool = True, known_positive: bool = False, offered: bool = True) -> Derived:
    """Readings in the order the devices were started."""
    if disease is Disease.SYPHILIS:
        algorithm = Algorithm.ONE_TEST
    if not readings:
        if disease is Disease.HIV and known_positive:
            return Derived(Conclusion.KNOWN_POSITIVE_NOT_TESTED)
        if not consented or not offered:
            return Derived(Conclusion.NOT_TESTED)
        return Derived(Conclusion.NOT_TESTED, NextStep.FIRST_TEST)
    valid = [r for r in readings if r.outcome is not Outcome.INVALID]
    if not valid:
        return Derived(Conclusion.INVALID_UNRESOLVED, NextStep.REPEAT)
    first = valid[0]
    if first.outcome is Outcome.NON_REACTIVE:
        return Derived(Conclusion.NON_REACTIVE)
    if algorithm is Algorithm.ONE_TEST:
        return Derived(Conclusion.REACTIVE_NEEDS_CONFIRMATION)
    first_index = readings.index(first)
    second = next((r for r in readings[first_index + 1:]
                   if r.outcome is not Outcome.INVALID and r.product != first.product), None)
    if second is None:
        return Derived(Conclusion.REACTIVE_NEEDS_CONFIRMATION, NextStep.SECOND_TEST, first.product)
    if second.outcome is Outcome.REACTIVE:
        return Derived(Conclusion.REACTIVE_NEEDS_CONFIRMATION)
    return Derived(Conclusion.DISCORDANT_NEEDS_LAB)
