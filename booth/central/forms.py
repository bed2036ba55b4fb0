from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired, Length, Optional, Regexp, ValidationError

from booth.forms import code_validators


def password_field(label=None):
    return PasswordField(label or _l("Password (at least 12 characters)"),
                         validators=[InputRequired(message=_l("Enter the password.")),
                                     Length(min=12, max=128, message=_l("The password must have 12 to 128 characters."))],
                         render_kw={"autocomplete": "current-password"})


def totp_field(required=True):
    return StringField(_l("6-digit code from your authenticator app"),
                       validators=[InputRequired(message=_l("Enter the 6-digit code.")) if required else Optional(),
                                   Regexp(r"^\s*[0-9]{6}\s*$", message=_l("The code has 6 digits."))],
                       render_kw={"inputmode": "numeric", "autocomplete": "one-time-code", "maxlength": 6})


class CentralSetupForm(FlaskForm):
    code = StringField(_l("Your staff code"), validators=code_validators(),
                       render_kw={"autocomplete": "username", "autocapitalize": "characters"})
    password = password_field()
    password_confirm = password_field(_l("Password again"))

    def validate_password_confirm(self, field):
        if self.password.data != field.data:
            raise ValidationError(_l("The two passwords do not match."))


class SigninForm(FlaskForm):
    code = StringField(_l("Staff code"), validators=code_validators(),
                       render_kw={"autocomplete": "username", "autocapitalize": "characters", "autofocus": True})
    password = password_field(_l("Password"))
    totp = totp_field(required=False)


class TotpForm(FlaskForm):
    totp = totp_field()
