"""Provides the launch timeline: what happened to one launch, for app developers debugging their app.

Events are recorded by the authorize and token views and, through FHIRAPI["RESPONSE_OBSERVERS"], by the FHIR
API for calls made with a token that came from a launch. Details never hold codes, tokens, secrets or
assertions: record parameter names and non-secret values only.
"""

from typing import Any

from django.db import router

from smart.models import LaunchContext, LaunchEvent
from smart.rows import SQL, Batch, Insert

_INSERT = Insert(LaunchEvent)

# Authorize parameters that are safe to show (the PKCE challenge is not a secret, but adds nothing).
SHOWN_AUTHORIZE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "aud",
    "state",
    "launch",
    "code_challenge_method",
    "nonce",
)


def launch_event_record(*, launch: LaunchContext | int | None, kind: str, detail: dict[str, Any]) -> None:
    """Append one event to a launch's timeline (no-op without a launch)."""
    if launch is None:
        return
    batch = Batch(router.db_for_write(LaunchEvent))
    launch_event_add(
        batch, launch_id=launch if isinstance(launch, int) else launch.pk, kind=kind, detail=detail
    )
    batch.run()


def launch_event_add(
    batch: Batch, *, launch_id: int | SQL | None, kind: str, detail: dict[str, Any], where: SQL | None = None
) -> None:
    """Add a launch's timeline event to a batch of writes (nothing without a launch)."""
    if launch_id is not None:
        batch.insert(_INSERT, {"launch_id": launch_id, "kind": kind, "detail": detail}, where=where)


def launch_events(launch: LaunchContext) -> list[LaunchEvent]:
    """The launch's timeline, oldest first: its creation, then the events recorded since.

    The creation is not written as an event: the launch row records it (when, the app, the user, the
    context), and an EHR launch then costs one write. Launches from before that still have a stored
    creation event; the one built from the row replaces it."""
    recorded = LaunchEvent.objects.filter(launch=launch).exclude(kind=LaunchEvent.Kind.LAUNCH_CREATED)
    return [launch_created_event(launch), *recorded.order_by("created", "pk")]


def launch_created_event(launch: LaunchContext) -> LaunchEvent:
    """The timeline's first entry, read from the launch row (not saved)."""
    detail = {
        "app": launch.application.name,
        "user": launch.user.get_username(),
        "patient": launch.patient_id,
        "encounter": launch.encounter_id,
        "need_patient_banner": launch.need_patient_banner,
    }
    return LaunchEvent(
        launch=launch, created=launch.created, kind=LaunchEvent.Kind.LAUNCH_CREATED, detail=detail
    )


def authorize_params_shown(params: dict[str, Any]) -> dict[str, Any]:
    """The authorize request's parameters as a timeline may show them."""
    return {name: params[name] for name in SHOWN_AUTHORIZE_PARAMS if params.get(name)}
