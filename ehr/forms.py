"""Provides the EHR's forms: patient search, vital signs entry and the developer launcher."""

from datetime import timedelta
from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone
from oauth2_provider.models import get_application_model

from ehr.vitals import VITAL_SPECS, VitalsEntry

Application = get_application_model()


class PatientSearchForm(forms.Form):
    q = forms.CharField(
        label="Name, MRN or birth date",
        required=False,
        max_length=100,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": "e.g. Garcia, MRN-100003, 1961-04-12",
                "autocomplete": "off",
            }
        ),
    )
    page = forms.IntegerField(required=False, min_value=1, max_value=10_000)


LABELS = {
    "systolic": "Systolic",
    "diastolic": "Diastolic",
    "heart_rate": "Heart rate",
    "temperature": "Temperature",
    "spo2": "SpO₂ (pulse oximetry)",
    "weight": "Weight",
    "height": "Height",
}


def _vital_field(name: str) -> forms.DecimalField:
    spec = VITAL_SPECS[name]
    step = "1" if spec.decimals == 0 else "0.1"
    implausible = (
        f"Outside the plausible range {spec.low}–{spec.high} {spec.unit_label}: check the value and unit."
    )
    return forms.DecimalField(
        label=LABELS[name],
        required=False,
        error_messages={"min_value": implausible, "max_value": implausible},
        min_value=spec.low,
        max_value=spec.high,
        decimal_places=spec.decimals,
        help_text=f"{spec.unit_label}, {spec.low}–{spec.high}",
        widget=forms.NumberInput(attrs={"step": step, "inputmode": "decimal"}),
    )


class VitalsForm(forms.Form):
    """One set of vital signs; each field is optional but at least one measurement is needed."""

    effective = forms.DateTimeField(
        label="Taken at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
    )
    systolic = _vital_field("systolic")
    diastolic = _vital_field("diastolic")
    heart_rate = _vital_field("heart_rate")
    temperature = _vital_field("temperature")
    spo2 = _vital_field("spo2")
    weight = _vital_field("weight")
    height = _vital_field("height")

    MEASUREMENTS = ("systolic", "diastolic", "heart_rate", "temperature", "spo2", "weight", "height")
    NOTHING_ENTERED = "Enter at least one measurement."
    BP_INCOMPLETE = "Enter both systolic and diastolic pressure."
    BP_ORDER = "Diastolic pressure must be lower than systolic pressure."
    IN_FUTURE = "The time cannot be in the future."

    def clean_effective(self):  # type: ignore[no-untyped-def]
        value = self.cleaned_data["effective"]
        if value > timezone.now() + timedelta(minutes=5):
            raise forms.ValidationError(self.IN_FUTURE)
        return value

    def clean(self):  # type: ignore[no-untyped-def]
        data = super().clean()
        if not self.errors and all(data.get(name) is None for name in self.MEASUREMENTS):
            raise forms.ValidationError(self.NOTHING_ENTERED)
        systolic, diastolic = data.get("systolic"), data.get("diastolic")
        if (systolic is None) != (diastolic is None) and not ({"systolic", "diastolic"} & self.errors.keys()):
            self.add_error("systolic" if systolic is None else "diastolic", self.BP_INCOMPLETE)
        elif systolic is not None and diastolic is not None and diastolic >= systolic:
            self.add_error("diastolic", self.BP_ORDER)
        return data

    def entry(self) -> VitalsEntry:
        data = self.cleaned_data
        values: dict[str, Decimal | None] = {name: data.get(name) for name in self.MEASUREMENTS}
        return VitalsEntry(effective=data["effective"], **values)


class DeveloperLaunchForm(forms.Form):
    """The developer launcher: which app, as whom, for which patient and encounter, and how to open it."""

    client = forms.ModelChoiceField(
        label="App", queryset=Application.objects.none(), to_field_name="client_id", empty_label=None
    )
    user = forms.ModelChoiceField(
        label="Launch as user",
        queryset=get_user_model().objects.none(),
        to_field_name="username",
        help_text="The user who must sign in at /authorize: the launch is bound to this user.",
    )
    patient_id = forms.CharField(
        label="Patient id",
        max_length=64,
        required=False,
        widget=forms.TextInput(attrs={"list": "patient-ids"}),
    )
    encounter_id = forms.CharField(label="Encounter id", max_length=64, required=False)
    mode = forms.ChoiceField(label="Open", choices=Application.LaunchMode.choices)

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["client"].queryset = (
            Application.objects.filter(enabled=True).exclude(launch_uri="").order_by("name")
        )
        self.fields["client"].label_from_instance = lambda app: f"{app.name} ({app.client_id})"
        self.fields["user"].queryset = get_user_model().objects.filter(is_active=True).order_by("username")
