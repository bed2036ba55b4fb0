from __future__ import annotations

import zoneinfo

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, HiddenField, SelectField, StringField, URLField
from wtforms.validators import InputRequired, Length, Optional, URL

from booth.forms import code_validators, pin_field

COMMON_ZONES = ["America/Mexico_City", "America/Monterrey", "America/Tijuana", "America/Cancun",
                "America/Bogota", "America/Lima", "America/Santiago", "America/Argentina/Buenos_Aires",
                "America/Sao_Paulo", "America/New_York", "America/Los_Angeles", "Europe/Madrid", "UTC"]


def zone_choices():
    others = sorted(z for z in zoneinfo.available_timezones() if z not in COMMON_ZONES and "/" in z)
    return [(z, z) for z in COMMON_ZONES + others]


class SetupForm(FlaskForm):
    event_name = StringField(_l("Event name"), validators=[
        InputRequired(message=_l("Enter the event name.")), Length(max=120)],
        description=_l("For example: Pride march 2026"))
    event_day = DateField(_l("Event date"), validators=[InputRequired(message=_l("Enter a valid date."))])
    place = StringField(_l("Place"), validators=[InputRequired(message=_l("Enter the place.")), Length(max=160)],
                        description=_l("City and area, not a person's address"))
    timezone = SelectField(_l("Time zone"), default="America/Mexico_City",
                           validators=[InputRequired()])
    booth_name = StringField(_l("Booth name"), validators=[
        InputRequired(message=_l("Enter the booth name.")), Length(max=80)],
        description=_l("For example: Booth 3 – Reforma"))
    central_base_url = URLField(_l("Central server address (optional)"),
                                validators=[Optional(), Length(max=300),
                                            URL(require_tld=False, message=_l("Enter a full address such as https://central.example.org"))],
                                description=_l("Referral QR codes point here. It can be filled in later by sync enrollment."))
    coordinator_code = StringField(_l("Your staff code"), validators=code_validators(),
                                   description=_l("A short code, not your name (for example C01)"),
                                   render_kw={"autocomplete": "off", "autocapitalize": "characters"})
    pin = pin_field()
    pin_confirm = pin_field(_l("PIN again"))
    browser_time_ms = HiddenField()
    confirm_clock = BooleanField(_l("I checked: the node's clock is right"))

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.timezone.choices = zone_choices()

    def validate_pin_confirm(self, field):
        from wtforms.validators import ValidationError
        if self.pin.data != field.data:
            raise ValidationError(_l("The two PINs do not match."))
