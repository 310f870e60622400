"""Provides the access decorators of the EHR's pages: clinicians, patients (portal) and staff (developers)."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from ehr.selectors import user_is_patient

View = Callable[..., HttpResponse]


def clinician_required(view: View) -> View:
    """Signed-in users who are not patients; a patient user is sent to the portal instead."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:  # type: ignore[no-untyped-def]
        if user_is_patient(request.user):
            return redirect("ehr:portal")
        return view(request, *args, **kwargs)

    return login_required(wrapped)


def staff_required(view: View) -> View:
    """Signed-in staff; other signed-in users get 403 (anonymous users go to the login page)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:  # type: ignore[no-untyped-def]
        if not request.user.is_staff:
            raise PermissionDenied("The developer launcher is for staff.")
        return view(request, *args, **kwargs)

    return login_required(wrapped)
