"""Provides the per-user state the EHR keeps in the session: recent patients, current encounters, open app.

The session (not a table) is enough: it is per user and per browser, and none of it is clinical data.
"""

from dataclasses import asdict, dataclass

from django.contrib.sessions.backends.base import SessionBase

RECENT_KEY = "ehr.recent_patients"
ENCOUNTER_KEY = "ehr.current_encounters"
OPEN_APP_KEY = "ehr.open_app"
RECENT_COUNT = 8


def recent_patient_ids(session: SessionBase) -> list[str]:
    return list(session.get(RECENT_KEY, []))


def recent_patient_add(session: SessionBase, patient_id: str) -> None:
    """Put the patient first in the user's recently opened patients (at most RECENT_COUNT kept)."""
    ids = [patient_id, *(i for i in recent_patient_ids(session) if i != patient_id)]
    session[RECENT_KEY] = ids[:RECENT_COUNT]


def current_encounter(session: SessionBase, patient_id: str) -> str | None:
    return session.get(ENCOUNTER_KEY, {}).get(patient_id)


def current_encounter_set(session: SessionBase, patient_id: str, encounter_id: str | None) -> None:
    chosen = dict(session.get(ENCOUNTER_KEY, {}))
    if encounter_id:
        chosen[patient_id] = encounter_id
    else:
        chosen.pop(patient_id, None)
    session[ENCOUNTER_KEY] = chosen


@dataclass(frozen=True)
class OpenApp:
    """An embedded app launch waiting to be shown once in the chart's (or portal's, or developer's) panel."""

    owner: str  # the page that shows it: a patient id, "portal", or "dev:<launch pk>"
    url: str
    name: str
    client_id: str
    logo_uri: str = ""


def open_app_set(session: SessionBase, app: OpenApp) -> None:
    session[OPEN_APP_KEY] = asdict(app)


def open_app_pop(session: SessionBase, owner: str) -> OpenApp | None:
    """The app to show on `owner`'s page, used up: a reload or another patient closes it, because a launch id
    is single-use and reopening the same URL could only fail."""
    stored = session.pop(OPEN_APP_KEY, None)
    if not stored or stored.get("owner") != owner:
        return None
    return OpenApp(**stored)
