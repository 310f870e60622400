"""Provides the logout hook: an EHR logout ends the user's `online_access` grants.

SMART App Launch 2.x scopes-and-launch-context.html#online_access: an online refresh token works only
while the user is logged in to the EHR. Connected when this module is imported (SmartConfig.ready should
import it).
"""

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from smart.tokens import tokens_revoke_online


@receiver(user_logged_out, dispatch_uid="smart.revoke_online_access_on_logout")
def revoke_online_access_on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        tokens_revoke_online(user)
