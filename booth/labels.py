"""Translated labels for the codes stored in the database (one place, used by templates and PDFs)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

AGE_BANDS = {"lt15": "<15", "65+": "65+", "unknown": _l("Unknown")}
GENDERS = {"woman": _l("Woman"), "man": _l("Man"), "trans_woman": _l("Trans woman"), "trans_man": _l("Trans man"),
           "non_binary": _l("Non-binary person"), "another": _l("Another identity"),
           "prefer_not": _l("Prefers not to say")}
SEX_AT_BIRTH = {"female": _l("Female"), "male": _l("Male"), "intersex": _l("Intersex"),
                "prefer_not": _l("Prefers not to say")}
BENEFICIARY = {"yes": _l("Yes"), "no": _l("No"), "unknown": _l("Does not know")}
LAST_TEST = {"lt3m": _l("Less than 3 months ago"), "3to12m": _l("3 to 12 months ago"),
             "gt12m": _l("More than 12 months ago"), "never": _l("Never")}
KEY_POPULATIONS = {"msm": _l("Men who have sex with men"), "trans_woman": _l("Trans woman"),
                   "trans_man": _l("Trans man"), "non_binary": _l("Non-binary person"),
                   "sex_work": _l("Sex work"), "pwid": _l("Injects drugs"), "chemsex": _l("Chemsex")}
DISEASES = {"hiv": _l("HIV"), "hcv": _l("Hepatitis C"), "syphilis": _l("Syphilis")}
OUTCOMES = {"reactive": _l("Reactive"), "non_reactive": _l("Non-reactive"), "invalid": _l("Invalid")}
INVALID_REASONS = {"no_control_line": _l("No control line"), "background": _l("Background too strong"),
                   "partial_line": _l("Partial line"), "read_too_early": _l("Read too early"),
                   "read_too_late": _l("Read too late"), "expired_kit": _l("Expired kit"),
                   "procedure_error": _l("Procedure error")}
CONCLUSIONS = {"non_reactive": _l("Non-reactive"),
               "reactive_needs_confirmation": _l("Reactive: needs a confirmatory test"),
               "discordant_needs_lab": _l("Discordant: needs a laboratory test"),
               "invalid_unresolved": _l("Invalid: not resolved"), "not_tested": _l("Not tested"),
               "known_positive_not_tested": _l("Known positive: not tested")}
STATES = {"waiting": _l("Waiting"), "testing": _l("Testing"), "ready_to_read": _l("Ready to read"),
          "counseling": _l("Counseling"), "referral_pending": _l("Referral pending"), "done": _l("Done"),
          "left_before_result": _l("Left before result"), "left_before_test": _l("Left before testing")}
TIMER_STATES = {"developing": _l("Developing"), "ready": _l("Ready to read"), "too_late": _l("Too late")}
SAMPLES = {"fingerstick": _l("Fingerstick blood"), "oral_fluid": _l("Oral fluid"), "venous": _l("Venous blood")}
ALGORITHMS = {"one_test": _l("One test"), "two_test": _l("Second test of a different product after a reactive one")}
TOPICS = {"window_period": _l("Window period"), "confirmation": _l("Confirmatory test"), "prep": _l("PrEP"),
          "pep": _l("PEP"), "condoms": _l("Condoms and lubricant"), "hcv_treatment": _l("Hepatitis C treatment"),
          "harm_reduction": _l("Harm reduction"), "partner_testing": _l("Partner testing"),
          "rights_free_care": _l("Right to free care"), "mental_health": _l("Emotional support")}
SUPPLIES = {"condom": _l("Condoms"), "lubricant": _l("Lubricant"), "self_test": _l("Self-test kits")}
CORRECTION_REASONS = {"wrong_entry": _l("Wrong button"), "wrong_visit": _l("Wrong visit"),
                      "wrong_disease": _l("Wrong test"), "duplicate": _l("Recorded twice"),
                      "misread": _l("Misread result"), "other": _l("Other")}
ADJUSTMENT_REASONS = {"damaged": _l("Damaged"), "lost": _l("Lost"), "count_correction": _l("Count correction"),
                      "returned": _l("Returned"), "transfer": _l("Transfer to another booth"), "other": _l("Other")}
QUARANTINE_REASONS = {"temperature": _l("Temperature out of range"), "qc_failed": _l("Quality control failed"),
                      "damaged_packaging": _l("Damaged packaging"), "recall": _l("Recall")}
FINAL_STATES = {"done": _l("Done"), "left_before_result": _l("Left before result"),
                "left_before_test": _l("Left before testing")}

REASONS = {"hiv_confirmation": _l("HIV confirmation"), "hcv_viral_load": _l("Hepatitis C viral load"),
           "syphilis_confirmation": _l("Syphilis confirmation and treatment"),
           "discordant_lab": _l("Discordant results: laboratory"), "prep": _l("PrEP"), "pep_urgent": _l("PEP (urgent)"),
           "other_care": _l("Other care")}
KINDS = {"family_clinic": _l("Family clinic"), "hiv_clinic": _l("Specialised HIV clinic"),
         "hepatitis_service": _l("Hepatitis service"), "prep_service": _l("PrEP service"),
         "pep_emergency": _l("PEP / emergency")}
SERVES = {"everyone": _l("Everyone"), "beneficiaries": _l("Social-security beneficiaries"),
          "non_beneficiaries": _l("People without social security")}
REFERRAL_STATUSES = {"issued": _l("Issued"), "arrived": _l("Arrived"), "confirmed": _l("Confirmed"),
                     "not_confirmed": _l("Not confirmed"), "treatment_started": _l("Treatment started"),
                     "closed": _l("Closed"), "expired": _l("Expired"), "cancelled": _l("Cancelled")}
CONFIRM_RESULTS = {"hiv_confirmed": _l("HIV confirmed"), "hiv_not_confirmed": _l("HIV not confirmed"),
                   "hiv_indeterminate": _l("HIV indeterminate"), "hcv_rna_detected": _l("HCV RNA detected"),
                   "hcv_rna_not_detected": _l("HCV RNA not detected"),
                   "syphilis_active": _l("Syphilis: active infection"),
                   "syphilis_past_treated": _l("Syphilis: past, treated"),
                   "syphilis_not_confirmed": _l("Syphilis not confirmed")}
CLOSE_REASONS = {"not_confirmed": _l("Not confirmed"), "lost": _l("Lost to follow-up"), "declined": _l("Declined"),
                 "completed": _l("Completed"), "other_service": _l("Went to another service")}
WEEKDAYS = {"1": _l("Mon"), "2": _l("Tue"), "3": _l("Wed"), "4": _l("Thu"), "5": _l("Fri"), "6": _l("Sat"),
            "7": _l("Sun")}
BENEFICIARY_RULE = {"any": _l("Anyone"), "yes": _l("Beneficiaries"), "no": _l("Non-beneficiaries")}


SYNC_KINDS = {"event": _l("Event"), "booth": _l("Booth"), "staff": _l("Staff (code and roles only)"),
              "clinical_settings": _l("Clinical settings"), "destination": _l("Destinations"),
              "routing_rule": _l("Routing rules"), "kit_lot": _l("Kit lots"), "shift": _l("Shifts"),
              "visit": _l("Visits"), "consent": _l("Consents"), "screening": _l("Devices started"),
              "screening_result": _l("Results"), "counseling": _l("Counseling"), "referral": _l("Referrals"),
              "linkage": _l("Linkage (clinic)"), "stock_movement": _l("Stock movements"), "qc_run": _l("Quality control"),
              "temperature_log": _l("Temperature"), "day_closure": _l("Close of day"), "audit_entry": _l("Audit log")}


def all_labels() -> dict:
    return {k.lower(): v for k, v in globals().items() if k.isupper() and isinstance(v, dict)}
