"""Provides the launch timeline: what happened to one launch, for app developers debugging their app.

Events are recorded by the authorize and token views and, through FHIRAPI["RESPONSE_OBSERVERS"], by the FHIR
API for calls made with a token that came from a launch. Details never hold codes, tokens, secrets or
assertions: record parameter names and non-secret values only.
"""

from typing import Any

from django.db import router
from django.db.models import QuerySet

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


def launch_events(launch: LaunchContext) -> QuerySet[LaunchEvent]:
    return LaunchEvent.objects.filter(launch=launch).order_by("created", "pk")


def authorize_params_shown(params: dict[str, Any]) -> dict[str, Any]:
    """The authorize request's parameters as a timeline may show them."""
    return {name: params[name] for name in SHOWN_AUTHORIZE_PARAMS if params.get(name)}
