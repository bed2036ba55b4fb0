"""What a referral slip shows. The same neutral design for every reason: nothing says HIV,
hepatitis, syphilis, reactive or positive; no age, gender or population; the counselor's code only."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

FORMATS = ("80mm", "a6")


@dataclass(frozen=True)
class SlipData:
    folio: str            # displayed form, e.g. "7K3M-Q9XD-R"
    url: str              # QR payload: central base URL + /r/<token>
    destination: str      # the destination's neutral slip name
    address: str
    hours: str
    phone: str
    what_to_bring: str
    valid_until: date
    issued_on: date
    counselor_code: str
    urgent: bool          # valid only today (e.g. an emergency service): "go today"
    language: str = "es"  # "es" or "en"


TEXT = {
    "es": {
        "title": "Hoja de referencia",
        "folio": "Folio",
        "go_to": "Acuda a",
        "address": "Dirección",
        "hours": "Horario",
        "phone": "Teléfono",
        "bring": "Lleve",
        "valid": "Válida hasta",
        "urgent": "Acuda HOY, lo antes posible.",
        "issued": "Emitida",
        "counselor": "Consejero(a)",
        "scan": "En la unidad, muestre esta hoja o diga el folio.",
        "confidential": "Esta hoja es confidencial y no lleva su nombre. La atención es gratuita y es su derecho "
                        "recibirla sin discriminación.",
    },
    "en": {
        "title": "Referral slip",
        "folio": "Folio",
        "go_to": "Go to",
        "address": "Address",
        "hours": "Hours",
        "phone": "Phone",
        "bring": "Bring",
        "valid": "Valid until",
        "urgent": "Go TODAY, as soon as possible.",
        "issued": "Issued",
        "counselor": "Counselor",
        "scan": "At the clinic, show this slip or say the folio.",
        "confidential": "This slip is confidential and does not carry your name. Care is free and it is your "
                        "right to receive it without discrimination.",
    },
}
