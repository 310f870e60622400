"""Provides the SMART management endpoint: the connected-apps page, where a user sees and revokes apps."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe
from oauth2_provider.models import get_application_model

from smart.clients import client_list_connected, client_revoke_for_user

Application = get_application_model()


@never_cache
@login_required
@require_safe
def connected_apps_view(request: HttpRequest) -> HttpResponse:
    """GET /smart/connected-apps/: the apps the user authorized, what they may access, when they last did."""
    return render(request, "smart/connected_apps.html", {"apps": client_list_connected(user=request.user)})


@login_required
@require_POST
def connected_app_revoke_view(request: HttpRequest, client_id: str) -> HttpResponseRedirect:
    """POST: end all of the user's access for one app at once (tokens, pending codes and consent)."""
    client = get_object_or_404(Application, client_id=client_id)
    client_revoke_for_user(client=client, user=request.user)
    messages.success(request, f"{client.name or client.client_id} can no longer access your data.")
    return HttpResponseRedirect(reverse("smart:connected-apps"))
