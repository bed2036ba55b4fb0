"""Shared form pieces."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import PasswordField
from wtforms.validators import InputRequired, Length, Regexp


def pin_field(label=None, **kw):
    render_kw = {"inputmode": "numeric", "autocomplete": "off", "maxlength": 6, "pattern": "[0-9]{6}"}
    render_kw.update(kw.pop("render_kw", None) or {})
    return PasswordField(label or _l("PIN (6 digits)"),
                         validators=[InputRequired(message=_l("Enter the 6-digit PIN.")),
                                     Regexp(r"^[0-9]{6}$", message=_l("The PIN must be exactly 6 digits."))],
                         render_kw=render_kw, **kw)


def code_validators():
    return [InputRequired(message=_l("Enter the staff code.")),
            Length(max=12, message=_l("The staff code must be 2 to 12 letters, digits or hyphens (for example T07)."))]
