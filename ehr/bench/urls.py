"""Root URLconf of the bench server: the project's URLs plus the two baseline routes under /bench/."""

from django.urls import include, path

from ehr.bench import views
from ehr.urls import urlpatterns as project_urlpatterns

app_name = "bench"

baseline_urlpatterns = [
    path("bare/<str:resource_type>/<str:resource_id>", views.BareView.as_view(), name="bare"),
    path("orm/<str:resource_type>/<str:resource_id>", views.OrmView.as_view(), name="orm"),
]

urlpatterns = [
    path("bench/", include((baseline_urlpatterns, app_name))),
    *project_urlpatterns,
]
