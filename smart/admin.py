"""Provides the admin for SMART apps (register, edit, rotate secrets) and for launch contexts and consents.

A client secret is generated on save, shown once on a page rendered straight from the POST (never stored in
the session, a message or a log), and persisted only as a hash.
"""

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.cache import add_never_cache_headers
from oauth2_provider.models import get_application_model

from smart.admin_forms import SmartApplicationForm
from smart.clients import client_rotate_secret, secret_set
from smart.models import ConsentRecord, LaunchContext, UserFhirIdentity

Application = get_application_model()
CONFIDENTIAL = Application.SmartClientType.CONFIDENTIAL

DERIVED_FIELDS = ("client_id", "token_endpoint_auth_method", "authorization_grant_type", "secret_rotated")
STATUS_FIELDS = ("last_used", "created", "updated")


class SmartApplicationAdmin(admin.ModelAdmin):
    form = SmartApplicationForm
    list_display = ("name", "client_id", "smart_client_type", "launch_mode", "enabled", "last_used")
    list_filter = ("smart_client_type", "enabled", "audience", "launch_mode")
    search_fields = ("name", "client_id")
    readonly_fields = DERIVED_FIELDS + STATUS_FIELDS
    actions = ("rotate_secret",)
    secret_template = "admin/smart/application/secret_once.html"
    rotate_template = "admin/smart/application/rotate_secret.html"

    def get_fieldsets(self, request: HttpRequest, obj: Application | None = None) -> list:
        def shown(*fields: str) -> list[str]:
            # The derived and status fields mean nothing before the app exists.
            return [f for f in fields if obj is not None or f not in DERIVED_FIELDS + STATUS_FIELDS]

        return [
            ("Identity", {"fields": shown("name", "client_id", "description", "logo_uri")}),
            ("Launch", {"fields": shown("launch_uri", "launch_mode", "audience", "redirect_uris")}),
            (
                "Security",
                {
                    "fields": shown(
                        "smart_client_type",
                        "client_jwks",
                        "client_jwks_uri",
                        "skip_authorization",
                        "token_endpoint_auth_method",
                        "authorization_grant_type",
                        "secret_rotated",
                    )
                },
            ),
            ("Scopes", {"fields": shown("scope_preset", "allowed_scopes")}),
            ("Status", {"fields": shown("enabled", *STATUS_FIELDS)}),
        ]

    def save_model(
        self, request: HttpRequest, obj: Application, form: SmartApplicationForm, change: bool
    ) -> None:
        if not change or "smart_client_type" in form.changed_data:
            # A new app, or one whose type changed, gets a new secret; only a symmetric client is shown it.
            request._smart_new_secret = secret_set(obj, known=obj.smart_client_type == CONFIDENTIAL)
        super().save_model(request, obj, form, change)

    def response_add(self, request: HttpRequest, obj: Application, post_url_continue: str | None = None):
        secret = getattr(request, "_smart_new_secret", None)
        if secret:
            return self.secret_response(request, obj, secret)
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request: HttpRequest, obj: Application):
        secret = getattr(request, "_smart_new_secret", None)
        if secret:
            return self.secret_response(request, obj, secret)
        return super().response_change(request, obj)

    def secret_response(self, request: HttpRequest, obj: Application, secret: str) -> TemplateResponse:
        """The one page that ever shows this secret; marked no-store so no cache keeps it."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": obj,
            "secret": secret,
            "title": f"Client secret for {obj}",
            "change_url": reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk]
            ),
        }
        response = TemplateResponse(request, self.secret_template, context)
        add_never_cache_headers(response)
        return response

    def get_urls(self) -> list:
        info = self.opts.app_label, self.opts.model_name
        rotate = path(
            "<path:object_id>/rotate-secret/",
            self.admin_site.admin_view(self.rotate_secret_view),
            name="{}_{}_rotate_secret".format(*info),
        )
        return [rotate, *super().get_urls()]

    def rotate_secret_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: confirm; POST: rotate and show the new secret once."""
        obj = get_object_or_404(Application, pk=object_id)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        if request.method == "POST":
            return self._rotate(request, obj)
        context = {**self.admin_site.each_context(request), "opts": self.opts, "original": obj}
        context["title"] = f"Rotate the client secret of {obj}?"
        return TemplateResponse(request, self.rotate_template, context)

    @admin.action(description="Rotate the client secret of the selected app")
    def rotate_secret(self, request: HttpRequest, queryset) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one app to rotate its secret.", messages.WARNING)
            return None
        return self._rotate(request, queryset.get())

    def _rotate(self, request: HttpRequest, obj: Application) -> HttpResponse:
        change_url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])
        try:
            secret = client_rotate_secret(client=obj)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(change_url)
        self.log_change(request, obj, [{"changed": {"fields": ["client secret"]}}])
        return self.secret_response(request, obj, secret)


@admin.register(LaunchContext)
class LaunchContextAdmin(admin.ModelAdmin):
    list_display = ("created", "application", "user", "patient_id", "encounter_id", "expires", "consumed")
    list_select_related = ("application", "user")
    list_filter = ("application",)
    exclude = ("launch",)  # the opaque launch id is a short-lived bearer credential

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # launches are created by the EHR launcher, not by hand

    def has_change_permission(self, request: HttpRequest, obj: LaunchContext | None = None) -> bool:
        return False


@admin.register(ConsentRecord)
class ConsentRecordAdmin(admin.ModelAdmin):
    list_display = ("user", "application", "updated")
    list_select_related = ("application", "user")
    search_fields = ("user__username", "application__name")
    readonly_fields = ("user", "application", "scope", "created", "updated")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(UserFhirIdentity)
class UserFhirIdentityAdmin(admin.ModelAdmin):
    list_display = ("user", "fhir_user")
    search_fields = ("user__username", "fhir_user")
    raw_id_fields = ("user",)


def _register_application_admin() -> None:
    """Install SmartApplicationAdmin unless DOT installs it (OAUTH2_PROVIDER["APPLICATION_ADMIN_CLASS"]).

    DOT's admin module registers the swapped Application with that setting's class; when the setting still
    names DOT's default, replace that registration instead of registering a second time.
    """
    ours = f"{__name__}.{SmartApplicationAdmin.__name__}"
    if getattr(settings, "OAUTH2_PROVIDER", {}).get("APPLICATION_ADMIN_CLASS") == ours:
        return
    import oauth2_provider.admin  # noqa: F401  (make sure DOT's registration happened first)

    if admin.site.is_registered(Application):
        admin.site.unregister(Application)
    admin.site.register(Application, SmartApplicationAdmin)


_register_application_admin()
