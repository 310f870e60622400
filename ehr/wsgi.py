"""WSGI entry point of the EHR project."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ehr.settings")
application = get_wsgi_application()

# What is loaded by now (Django, the apps, fhir.resources' models) lives as long as the process. Frozen, the
# cyclic garbage collector no longer walks it in every full collection: a launch costs about 2 % less CPU
# (docs/benchmarks-smart.md). Collected first, so that no garbage of the start-up is frozen with it.
gc.collect()
gc.freeze()
