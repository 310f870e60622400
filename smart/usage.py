"""Provides what a FHIR call made with a SMART token records once its response has been sent
(fhirapi.after_response): the token's and its app's last use (the Connected apps page) and, for a launch's
token, the call on the launch timeline.

Both go in one batch (smart.rows.Batch), and a last use is written at most once per
SMART["LAST_USED_RESOLUTION_SECONDS"] per process, so most calls write nothing but their timeline event.
Plugged into fhirapi through FHIRAPI["RESPONSE_OBSERVERS"].
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import router
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from smart.events import launch_event_add
from smart.models import Application, LaunchEvent
from smart.rows import Batch, prepared, table
from smart.settings import smart_settings
from smart.tokens import sha256_hex

AccessToken = get_access_token_model()


@dataclass
class Usage:
    """When a token and its app were last recorded as used (as this process knows it)."""

    token_checksum: str
    app_id: int | None
    token_last_used: datetime | None
    app_last_used: datetime | None

    @classmethod
    def of(cls, token: Any, raw: str) -> "Usage":
        app = token.application
        return cls(
            sha256_hex(raw), token.application_id, token.last_used, app.last_used if app is not None else None
        )

    def record(self, batch: Batch) -> None:
        """Add the last-use writes that are due to the batch."""
        now = timezone.now()
        resolution = timedelta(seconds=smart_settings.LAST_USED_RESOLUTION_SECONDS)
        stamp = prepared(AccessToken, "last_used", now, batch.using)
        if self.token_last_used is None or now - self.token_last_used >= resolution:
            batch.add(f"UPDATE {table(AccessToken)} SET last_used = %s WHERE token_checksum = %s",
                      [stamp, self.token_checksum])  # fmt: skip
            self.token_last_used = now
        if self.app_id is not None and (self.app_last_used is None or now - self.app_last_used >= resolution):
            batch.add(f"UPDATE {table(Application)} SET last_used = %s WHERE id = %s", [stamp, self.app_id])
            self.app_last_used = now


def fhir_call_observer(request, response, grant) -> None:  # type: ignore[no-untyped-def]
    """FHIRAPI response observer: the token's last use, and the call (method, path, status, reason) on its
    launch's timeline."""
    extra = (grant.extra or {}) if grant is not None else {}
    batch = Batch(router.db_for_write(LaunchEvent))
    usage = extra.get("usage")
    if usage is not None:
        usage.record(batch)
    launch_id = extra.get("launch_id")
    if launch_id:
        launch_event_add(
            batch, launch_id=launch_id, kind=LaunchEvent.Kind.FHIR_CALL, detail=_call(request, response)
        )
    batch.run()


def _call(request, response) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    detail: dict[str, Any] = {
        "method": request.method,
        "path": request.get_full_path(),
        "status": response.status_code,
    }
    if response.status_code >= 400 and isinstance(getattr(response, "data", None), dict):
        issues = response.data.get("issue") or [{}]
        detail["reason"] = issues[0].get("diagnostics", "")
    return detail
