"""Folio check symbol and QR token MAC (property tests)."""
import secrets

from hypothesis import given
from hypothesis import strategies as st

from booth.referrals import codes

folio_bodies = st.text(alphabet=codes.ALPHABET, min_size=8, max_size=8)


def full(body):
    return body + codes.check_symbol(body)


def test_quasigroup_is_latin_and_totally_antisymmetric():
    n = 32
    for x in range(n):
        assert sorted(codes.TABLE[x]) == list(range(n))
        assert sorted(codes.TABLE[r][x] for r in range(n)) == list(range(n))
    for c in range(n):
        for x in range(n):
            for y in range(n):
                if x != y:
                    assert codes.TABLE[codes.TABLE[c][x]][y] != codes.TABLE[codes.TABLE[c][y]][x]


def test_new_folios_are_valid_and_use_only_the_alphabet():
    for _ in range(200):
        f = codes.new_folio()
        assert len(f) == 9 and set(f) <= set(codes.ALPHABET) and codes.is_valid(f)
    assert codes.display("7K3MQ9XDR") == "7K3M-Q9XD-R"


@given(folio_bodies, st.integers(0, 8), st.sampled_from(codes.ALPHABET))
def test_every_single_substitution_is_detected(body, pos, symbol):
    f = full(body)
    if f[pos] == symbol:
        return
    assert not codes.is_valid(f[:pos] + symbol + f[pos + 1:])


@given(folio_bodies)
def test_every_substitution_and_adjacent_transposition_of_a_folio(body):
    f = full(body)
    for pos in range(9):
        for symbol in codes.ALPHABET:
            if symbol != f[pos]:
                assert not codes.is_valid(f[:pos] + symbol + f[pos + 1:])
    for pos in range(8):
        if f[pos] != f[pos + 1]:
            swapped = f[:pos] + f[pos + 1] + f[pos] + f[pos + 2:]
            assert not codes.is_valid(swapped)


@given(folio_bodies)
def test_tolerant_reading(body):
    f = full(body)
    shown = codes.display(f)
    variants = [shown, shown.lower(), f.lower(), " ".join(shown), shown.replace("-", " "),
                shown.replace("0", "O").replace("1", "I"), shown.replace("1", "l").lower()]
    for v in variants:
        assert codes.normalize(v) == f and codes.is_valid(v)
    assert codes.normalize(f + "X") is None and codes.normalize("U" * 9) is None


def test_token_has_128_random_bits_and_verifies_only_under_its_key():
    key, other = secrets.token_bytes(32), secrets.token_bytes(32)
    tokens = {codes.new_token(key) for _ in range(500)}
    assert len(tokens) == 500
    for t in list(tokens)[:50]:
        raw, tag = codes.split_token(t)
        assert len(raw) * 8 >= 128 and len(tag) == 8
        assert codes.token_verifies(t, key) and not codes.token_verifies(t, other)
        forged = t[:-2] + ("AA" if t[-2:] != "AA" else "BB")
        assert not codes.token_verifies(forged, key)
    for junk in (None, "", "x", "%%%", "A" * 100):
        assert not codes.token_verifies(junk, key)
