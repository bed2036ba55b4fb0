from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SelectField, SelectMultipleField, StringField
from wtforms.validators import InputRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from booth.auth.models import Role
from booth.forms import code_validators, pin_field


def role_labels():
    return {
        Role.TESTER.value: _l("Tester"),
        Role.COUNSELOR.value: _l("Counselor"),
        Role.COORDINATOR.value: _l("Coordinator"),
        Role.CLINIC.value: _l("Clinic"),
    }


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class LoginForm(FlaskForm):
    code = StringField(_l("Staff code"), validators=code_validators(),
                       render_kw={"autocomplete": "off", "autocapitalize": "characters", "autofocus": True})
    pin = pin_field()
    next = HiddenField()


class UnlockForm(FlaskForm):
    pin = pin_field(render_kw={"autofocus": True})
    next = HiddenField()


class EnrollForm(FlaskForm):
    code = StringField(_l("Enrollment code"), validators=[InputRequired(message=_l("Enter the enrollment code.")),
                                                         Length(max=20)],
                       render_kw={"autocomplete": "off", "autocapitalize": "characters"},
                       description=_l("8 letters and digits, shown on the coordinator's screen"))
    name = StringField(_l("Name for this device (optional)"), validators=[Optional(), Length(max=40)],
                       description=_l("For example: Tablet 3 or Tray screen. Never a person's name."))


class StaffForm(FlaskForm):
    code = StringField(_l("Staff code"), validators=code_validators(),
                       description=_l("A short code, not a name (for example T07)"),
                       render_kw={"autocomplete": "off", "autocapitalize": "characters"})
    alias = StringField(_l("Display alias (optional)"), validators=[Optional(), Length(max=40)],
                        description=_l("Shown on screens only; never printed, exported or synced"))
    roles = MultiCheckboxField(_l("Roles"), validators=[InputRequired(message=_l("Choose at least one role."))])
    clinical_lead = BooleanField(_l("Clinical lead (signs off clinical settings)"))
    pin = pin_field()
    pin_confirm = pin_field(_l("PIN again"))

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.roles.choices = list(role_labels().items())

    def validate_pin_confirm(self, field):
        if self.pin.data != field.data:
            raise ValidationError(_l("The two PINs do not match."))


class PinResetForm(FlaskForm):
    pin = pin_field(_l("New PIN (6 digits)"))
    pin_confirm = pin_field(_l("PIN again"))

    def validate_pin_confirm(self, field):
        if self.pin.data != field.data:
            raise ValidationError(_l("The two PINs do not match."))


class EnrollmentCodeForm(FlaskForm):
    kind = SelectField(_l("Kind of device"), choices=[("tablet", _l("Tablet for staff")),
                                                      ("display", _l("Display at the tray (read-only)"))],
                       default="tablet")


class ConfirmForm(FlaskForm):
    """A button that changes something: only the CSRF token."""
