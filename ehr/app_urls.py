"""URLs of the clinician EHR, patient portal, developer launcher and sample app (namespace `ehr`)."""

from django.templatetags.static import static
from django.urls import path, re_path
from django.views.generic import RedirectView

from ehr.views import auth, chart, developer, launcher, patients, sampleapp

app_name = "ehr"

site_urlpatterns = [
    # Pages without <link rel="icon"> (DOT's and smart's templates, error pages) make browsers ask for this.
    path("favicon.ico", RedirectView.as_view(url=static("ehr/favicon.svg"), permanent=True), name="favicon"),
]

auth_urlpatterns = [
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", auth.LogoutView.as_view(), name="logout"),
]

clinician_urlpatterns = [
    path("", patients.home_view, name="home"),
    path("patients/", patients.patient_list_view, name="patient-list"),
    path("patients/<str:patient_id>/", chart.chart_view, name="chart"),
    path("patients/<str:patient_id>/encounter/", chart.encounter_select_view, name="encounter-select"),
    path("patients/<str:patient_id>/vitals/", chart.vitals_view, name="vitals"),
    path(
        "patients/<str:patient_id>/launch/<str:client_id>/", launcher.chart_launch_view, name="chart-launch"
    ),
]

portal_urlpatterns = [
    path("portal/", launcher.portal_view, name="portal"),
    path("portal/launch/<str:client_id>/", launcher.portal_launch_view, name="portal-launch"),
]

developer_urlpatterns = [
    path("dev/launcher/", developer.developer_launcher_view, name="dev-launcher"),
    path("dev/launcher/<int:launch_pk>/", developer.developer_launch_view, name="dev-launch"),
    path("dev/launcher/<int:launch_pk>/timeline/", developer.developer_timeline_view, name="dev-timeline"),
]

sample_app_urlpatterns = [
    path("sample-app/", sampleapp.sample_app_view, name="sample-app-home"),
    re_path(r"^sample-app/(?P<path>[A-Za-z0-9_\-./]+)$", sampleapp.sample_app_view, name="sample-app"),
]

urlpatterns = [
    *site_urlpatterns,
    *auth_urlpatterns,
    *clinician_urlpatterns,
    *portal_urlpatterns,
    *developer_urlpatterns,
    *sample_app_urlpatterns,
]
