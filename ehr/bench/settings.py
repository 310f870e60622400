"""Settings of the bench server only: the project's settings with the baseline routes mounted.

`manage.py bench` starts its server with DJANGO_SETTINGS_MODULE=ehr.bench.settings and EHR_BENCH_ROUTES=1.
Everything else (middleware, database options, persistent connections) is the project's, so the baselines and
the FHIR cases are served under the same settings.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from ehr.settings import *  # noqa: F403

if os.environ.get("EHR_BENCH_ROUTES") != "1":
    raise ImproperlyConfigured(
        "ehr.bench.settings is for the `manage.py bench` server only (EHR_BENCH_ROUTES=1)."
    )

ROOT_URLCONF = "ehr.bench.urls"
