"""Provides the launch context services: EHR launches (create, launch URL, consume) and standalone pickers.

SMART App Launch 2.x, app-launch.html#launch-app-ehr-launch: the EHR opens the app's launch URL with `iss`
(the FHIR base) and an opaque, single-use `launch` id; the app hands `launch` back at /authorize, and the
context it names (patient, encounter, fhirContext, intent, need_patient_banner, smart_style_url) reaches
the token response. For a standalone launch (`launch/patient`, `launch/encounter`) the user picks the
context instead; the selectors here list only what the user may see, as decided by fhirapi's access
policy.
"""

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.contrib.auth.models import AbstractBaseUser
from django.db import router
from django.db.models import QuerySet
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from fhirapi.access import AccessDecision, Grant, Interaction
from fhirapi.settings import fhirapi_settings
from fhirapi.store import ResourceGone, ResourceNotFound, StoreError, resource_read, resource_search
from smart.discovery import style_url
from smart.error_codes import LaunchErrorCode
from smart.models import Application, LaunchContext
from smart.rows import SQL, Batch, Claim, ClaimLost, Columns, Insert, prepared, table
from smart.scopes import parse_scopes
from smart.settings import smart_settings

AccessToken = get_access_token_model()

# Launch context fields as the token response names them (app-launch.html#response-5), in response order.
CONTEXT_FIELDS = ("patient", "encounter", "fhirContext", "intent", "need_patient_banner", "smart_style_url")

_BIRTH_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")

_INSERT = Insert(LaunchContext, returning="id")
_LAUNCH = Columns([("l", LaunchContext)])
_LAUNCH_SQL = f"SELECT {_LAUNCH.sql} FROM {table(LaunchContext)} l WHERE l.launch = %s"


class LaunchError(Exception):
    """A launch id that cannot be used; `code` says why."""

    def __init__(self, code: LaunchErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------- URLs


def fhir_base_url() -> str:
    """The public FHIR base (no trailing slash): the launch `iss` and the only accepted `aud`."""
    return fhirapi_settings.BASE_URL.rstrip("/")


def default_style_url() -> str:
    """The smart_style_url of EHR launches: SMART["SMART_STYLE_URL"], else the versioned style JSON's URL."""
    if smart_settings.SMART_STYLE_URL is not None:
        return smart_settings.SMART_STYLE_URL
    return style_url()


def fhir_user_url(reference: str | None) -> str | None:
    """ "Practitioner/1" -> "<FHIR base>/Practitioner/1" (the id_token `fhirUser` claim is absolute)."""
    return f"{fhir_base_url()}/{reference}" if reference else None


# ---------------------------------------------------------------- EHR launch


def launch_create(
    *,
    client: Application,
    user: AbstractBaseUser,
    patient_id: str | None,
    encounter_id: str | None = None,
    need_patient_banner: bool = True,
    intent: str = "",
    fhir_context: list[dict[str, Any]] | None = None,
    smart_style_url: str | None = None,
) -> LaunchContext:
    """Record one EHR launch of `client` by `user`; it expires after SMART["LAUNCH_TTL_SECONDS"]."""
    if not client.enabled:
        raise ValueError(f"The app {client} is disabled.")
    launch = LaunchContext(
        application=client,
        user=user,
        patient_id=patient_id or "",
        encounter_id=encounter_id or "",
        intent=intent,
        fhir_context=_checked_fhir_context(fhir_context or []),
        need_patient_banner=need_patient_banner,
        smart_style_url=default_style_url() if smart_style_url is None else smart_style_url,
        expires=LaunchContext.default_expiry(smart_settings.LAUNCH_TTL_SECONDS),
    )
    launch.created = timezone.now()
    values = {f.attname: getattr(launch, f.attname) for f in _INSERT.fields}
    # One statement: the row is the launch's record of its creation (smart.events builds the timeline's
    # first entry from it), so a launch costs one write.
    batch = Batch(router.db_for_write(LaunchContext))
    batch.insert(_INSERT, values)
    launch.pk = batch.run()[0][0][0]
    launch._state.adding = False
    return launch


def _checked_fhir_context(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """STU2.2 fhirContext: objects with `reference` (relative), `canonical` or `identifier`."""
    for item in items:
        if not isinstance(item, dict) or not ({"reference", "canonical", "identifier"} & item.keys()):
            raise ValueError("Each fhirContext item needs a reference, canonical or identifier.")
        if str(item.get("reference", "")).startswith(("http:", "https:")):
            raise ValueError("A fhirContext reference must be relative (Type/id).")
    return items


def launch_url(launch: LaunchContext) -> str:
    """The app's launch URL with `iss` (the FHIR base) and `launch` added to any query it already has."""
    uri = launch.application.launch_uri
    if not uri:
        raise ValueError(f"The app {launch.application} has no launch URL.")
    parts = urlsplit(uri)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("iss", "launch")]
    query += [("iss", fhir_base_url()), ("launch", launch.launch)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def launch_check(*, launch_id: str, client: Application, user: AbstractBaseUser) -> LaunchContext:
    """The usable launch `launch_id` of this client and user, without consuming it; else LaunchError."""
    return launch_verify(launch_get_by_token(launch_id), client=client, user=user)


def launch_verify(
    launch: LaunchContext | None, *, client: Application, user: AbstractBaseUser
) -> LaunchContext:
    """`launch` (as read for its `launch` value) if this client and user may use it now; else LaunchError."""
    if launch is None:
        raise LaunchError(LaunchErrorCode.UNKNOWN, "The launch is not known.")
    if launch.application_id != client.pk:
        raise LaunchError(LaunchErrorCode.WRONG_CLIENT, "The launch was made for another app.")
    if launch.user_id != user.pk:
        raise LaunchError(LaunchErrorCode.WRONG_USER, "The launch was made by another user.")
    if launch.consumed is not None:
        raise LaunchError(LaunchErrorCode.CONSUMED, "The launch has already been used.")
    if launch.is_expired:
        raise LaunchError(LaunchErrorCode.EXPIRED, "The launch has expired.")
    launch.application = client  # the same row: no second read
    return launch


def launch_consume(*, launch_id: str, client: Application, user: AbstractBaseUser) -> LaunchContext:
    """Check and use up the launch (single use, also under concurrent requests); else LaunchError."""
    return launch_use(launch_check(launch_id=launch_id, client=client, user=user))


def launch_use(launch: LaunchContext) -> LaunchContext:
    """Use up a launch that launch_check accepted; else LaunchError."""
    try:
        Batch(router.db_for_write(LaunchContext), claim=launch_claim(launch)).run()
    except ClaimLost as lost:
        raise launch_unusable(launch) from lost
    launch.consumed = timezone.now()
    return launch


def launch_claim(launch: LaunchContext) -> Claim:
    """The use of a launch, for the batch that issues its code (smart.rows.Claim): single use, so of
    concurrent uses exactly one claims it, and an expired launch is claimed by none."""
    now = prepared(LaunchContext, "consumed", timezone.now(), router.db_for_write(LaunchContext))
    usable = SQL("id = %s AND consumed IS NULL AND expires > %s", (launch.pk, now))
    statement = f"UPDATE {table(LaunchContext)} SET consumed = %s WHERE {usable.text} RETURNING id"
    return Claim(LaunchContext, usable, SQL(statement, (now, *usable.params)))


def launch_unusable(launch: LaunchContext) -> LaunchError:
    """Why a launch could not be claimed: gone, used, or expired."""
    current = LaunchContext.objects.filter(pk=launch.pk).values("consumed").first()
    if current is None:
        return LaunchError(LaunchErrorCode.UNKNOWN, "The launch is not known.")
    if current["consumed"] is not None:
        return LaunchError(LaunchErrorCode.CONSUMED, "The launch has already been used.")
    return LaunchError(LaunchErrorCode.EXPIRED, "The launch has expired.")


def launch_get_by_token(launch_id: str) -> LaunchContext | None:
    """The launch with this opaque `launch` value (one fixed query: /authorize reads it on every launch)."""
    if not launch_id or "\x00" in launch_id:
        return None
    found = _LAUNCH.fetch(_LAUNCH_SQL, [launch_id], router.db_for_read(LaunchContext))
    return found[0] if found else None  # type: ignore[return-value]


def launch_context_fields(launch: LaunchContext) -> dict[str, Any]:
    """The launch's context in token-response form, leaving out what it does not carry."""
    values = {
        "patient": launch.patient_id,
        "encounter": launch.encounter_id,
        "fhirContext": launch.fhir_context,
        "intent": launch.intent,
        "need_patient_banner": launch.need_patient_banner,
        "smart_style_url": launch.smart_style_url,
    }
    return {name: value for name, value in values.items() if value not in ("", None, [])}


# ---------------------------------------------------------------- standalone launch: pickers


@dataclass(frozen=True)
class PatientChoice:
    """A patient as a picker shows it."""

    id: str
    name: str
    birth_date: str = ""
    gender: str = ""
    mrn: str = ""


@dataclass(frozen=True)
class EncounterChoice:
    """An encounter as a picker shows it."""

    id: str
    label: str
    start: str = ""
    status: str = ""


def user_patient_id(user: AbstractBaseUser) -> str | None:
    """The id of the Patient resource that *is* this user (a patient user), else None."""
    return patient_id_of(smart_settings.FHIR_USER_RESOLVER(user))


def patient_id_of(fhir_user: str | None) -> str | None:
    """ "Patient/7" -> "7"; None for any other fhirUser reference."""
    reference = fhir_user or ""
    return reference.split("/", 1)[1] if reference.startswith("Patient/") else None


def user_access(user: AbstractBaseUser, resource_type: str) -> AccessDecision:
    """What the user may see of a type, as fhirapi's policy decides for a `user/<type>.rs` grant."""
    grant = Grant(
        rules=parse_scopes(f"user/{resource_type}.rs").rules(),
        fhir_user=smart_settings.FHIR_USER_RESOLVER(user),
        user_id=user.pk,
    )
    return fhirapi_settings.ACCESS_POLICY_CLASS().decide(grant, resource_type, Interaction.SEARCH_TYPE)


def patient_search(*, user: AbstractBaseUser, query: str) -> list[PatientChoice]:
    """Patients the user may see whose name, MRN (any identifier) or birth date (YYYY[-MM[-DD]]) matches."""
    query = query.strip()
    if not query:
        return []
    if _BIRTH_DATE.fullmatch(query):
        searches = [[("birthdate", query)]]
    else:
        searches = [[("name", query)], [("identifier", query)]]
    access = user_access(user, "Patient")
    found = {p.id: p for params in searches for p in _patients(params, access)}
    return list(found.values())


def _patients(params: list[tuple[str, str]], access: AccessDecision) -> list[PatientChoice]:
    try:
        result = resource_search(
            resource_type="Patient",
            params=params,
            access=access,
            default_count=smart_settings.PICKER_PAGE_SIZE,
        )
    except StoreError:
        return []
    return [_patient_choice(r.fhir_id, r.as_dict()) for r in result.resources]


def patient_choice_get(*, user: AbstractBaseUser, patient_id: str) -> PatientChoice | None:
    """The patient, if it exists and the user may see it."""
    body = _read("Patient", patient_id, user_access(user, "Patient"))
    return _patient_choice(patient_id, body) if body is not None else None


def patients_recent(*, user: AbstractBaseUser) -> list[PatientChoice]:
    """Patients the user recently launched apps for (EHR or standalone), newest first, still visible."""
    launched = LaunchContext.objects.filter(user=user).exclude(patient_id="").order_by("-created")
    tokens = AccessToken.objects.filter(user=user, launch_context__has_key="patient").order_by("-created")
    limit = smart_settings.PICKER_RECENT_COUNT * 3
    ids = [*launched.values_list("patient_id", flat=True)[:limit]]
    ids += [str(v) for v in tokens.values_list("launch_context__patient", flat=True)[:limit]]
    choices = (patient_choice_get(user=user, patient_id=pid) for pid in dict.fromkeys(ids))
    return [c for c in choices if c is not None][: smart_settings.PICKER_RECENT_COUNT]


def encounter_search(*, user: AbstractBaseUser, patient_id: str) -> list[EncounterChoice]:
    """The patient's encounters the user may see, most recent first."""
    try:
        result = resource_search(
            resource_type="Encounter",
            params=[("patient", patient_id)],
            access=user_access(user, "Encounter"),
            default_count=smart_settings.PICKER_PAGE_SIZE,
        )
    except StoreError:
        return []
    choices = [_encounter_choice(r.fhir_id, r.as_dict()) for r in result.resources]
    return sorted(choices, key=lambda c: c.start, reverse=True)


def encounter_choice_get(
    *, user: AbstractBaseUser, patient_id: str, encounter_id: str
) -> EncounterChoice | None:
    """The encounter, if the user may see it and it belongs to the patient."""
    body = _read("Encounter", encounter_id, user_access(user, "Encounter"))
    if body is None or (body.get("subject") or {}).get("reference") != f"Patient/{patient_id}":
        return None
    return _encounter_choice(encounter_id, body)


def _read(resource_type: str, resource_id: str, access: AccessDecision) -> dict[str, Any] | None:
    if not access.allowed or not resource_id:
        return None
    try:
        return resource_read(resource_type=resource_type, resource_id=resource_id, access=access).as_dict()
    except (ResourceNotFound, ResourceGone):
        return None


def _patient_choice(patient_id: str, body: dict[str, Any]) -> PatientChoice:
    return PatientChoice(
        id=patient_id,
        name=_human_name(body.get("name") or []),
        birth_date=body.get("birthDate", ""),
        gender=body.get("gender", ""),
        mrn=_mrn(body.get("identifier") or []),
    )


def _human_name(names: list[dict[str, Any]]) -> str:
    official = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    if official.get("text"):
        return official["text"]
    return " ".join([*official.get("given", []), official.get("family", "")]).strip() or "(no name)"


def _mrn(identifiers: list[dict[str, Any]]) -> str:
    def is_mrn(identifier: dict[str, Any]) -> bool:
        return any(c.get("code") == "MR" for c in (identifier.get("type") or {}).get("coding", []))

    chosen = next((i for i in identifiers if is_mrn(i)), identifiers[0] if identifiers else {})
    return chosen.get("value", "")


def _encounter_choice(encounter_id: str, body: dict[str, Any]) -> EncounterChoice:
    kinds = body.get("type") or []
    label = (kinds[0].get("text") or _first_display(kinds[0])) if kinds else ""
    label = label or (body.get("class") or {}).get("display") or (body.get("class") or {}).get("code", "")
    return EncounterChoice(
        id=encounter_id,
        label=label or "Encounter",
        start=(body.get("period") or {}).get("start", ""),
        status=body.get("status", ""),
    )


def _first_display(concept: dict[str, Any]) -> str:
    return next((c.get("display", "") for c in concept.get("coding", []) if c.get("display")), "")


def launches_recent(*, limit: int = 15) -> QuerySet[LaunchContext]:
    """The most recent EHR launches of every user, newest first (for the developer launcher)."""
    return LaunchContext.objects.select_related("application", "user").order_by("-created")[:limit]


def launch_get(*, launch_pk: int) -> LaunchContext | None:
    return LaunchContext.objects.select_related("application", "user").filter(pk=launch_pk).first()
