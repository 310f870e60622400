"""Provides sign-in and sign-out (Django's auth views with the EHR's templates)."""

from django.contrib.auth import views as auth_views
from django.utils.decorators import method_decorator
from django.views.decorators.clickjacking import xframe_options_sameorigin


# An embedded app's /authorize runs inside the chart's iframe; when the session has expired it redirects
# to this page, which must then render inside that same-origin frame (and still nowhere else).
@method_decorator(xframe_options_sameorigin, name="dispatch")
class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """POST only (Django 5): a GET link could log users out from any page that embeds it."""
