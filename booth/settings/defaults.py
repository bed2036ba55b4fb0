"""Defaults from DOMAIN.md. Clinical settings are configuration that a clinical lead signs off
before each event; these are only the starting point."""
from __future__ import annotations

# code, name, targets, samples, read from (min), not after (min), storage °C min, max
PRODUCTS = [
    ("determine-hiv", "Determine HIV-1/2", "hiv", "fingerstick", 15, 60, 2, 30),
    ("oraquick-hiv", "OraQuick ADVANCE HIV-1/2", "hiv", "oral_fluid,fingerstick", 20, 40, 2, 27),
    ("oraquick-hcv", "OraQuick HCV", "hcv", "fingerstick", 20, 40, 2, 30),
    ("bioline-hiv", "Bioline HIV-1/2 3.0", "hiv", "fingerstick,venous", 10, 20, 1, 30),
    ("bioline-hcv", "SD Bioline HCV", "hcv", "fingerstick,venous", 5, 20, 1, 30),
    ("bioline-duo", "SD Bioline HIV/Syphilis Duo", "hiv,syphilis", "fingerstick,venous", 15, 20, 1, 30),
    ("dpp-hiv-syphilis", "Chembio DPP HIV-Syphilis", "hiv,syphilis", "fingerstick,venous", 10, 25, 2, 30),
    ("insti-hiv", "INSTI HIV-1/2", "hiv", "fingerstick", 1, 5, 15, 30),
]

DISEASES = ("hiv", "hcv", "syphilis")
SAMPLE_TYPES = ("fingerstick", "oral_fluid", "venous")

CONSENT_ES = (
    "Le ofrecemos una prueba rápida gratuita y confidencial. No le pedimos su nombre ni ningún dato que le "
    "identifique. Un resultado reactivo no es un diagnóstico: necesita una prueba confirmatoria, y le "
    "ayudaremos a llegar a ella. Puede decir que no a cualquier prueba en cualquier momento, y aun así "
    "recibir consejería y condones. ¿Acepta hacerse la prueba?"
)
CONSENT_EN = (
    "We offer you a free, confidential rapid test. We do not ask for your name or anything that identifies "
    "you. A reactive result is not a diagnosis: it needs a confirmatory test, and we will help you get it. "
    "You can say no to any test at any time and still receive counseling and condoms. Do you agree to be tested?"
)


def default_content(product_codes: list[str] | None = None) -> dict:
    codes = product_codes or [p[0] for p in PRODUCTS]
    by_code = {p[0]: p for p in PRODUCTS}
    products = {}
    for code in codes:
        p = by_code.get(code)
        if p:
            products[code] = {"read_from_s": p[4] * 60, "read_until_s": p[5] * 60, "samples": p[3].split(",")}
    return {
        "diseases": ["hiv", "hcv"],
        "algorithms": {"hiv": "two_test", "hcv": "one_test", "syphilis": "one_test"},
        "products": products,
        "consent": {"es": CONSENT_ES, "en": CONSENT_EN},
    }
