"""The WSGI entry point a server loads (granian, gunicorn)."""

import os
import subprocess
import sys

from django.conf import settings


def test_loading_the_app_freezes_what_start_up_made():
    # the cyclic garbage collector then no longer walks Django, the apps and the models in each full collection
    probe = "import gc, ehr.wsgi; print(callable(ehr.wsgi.application), gc.get_freeze_count())"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=settings.BASE_DIR,
        env={**{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}, "DEBUG": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    is_app, frozen = done.stdout.split()
    assert is_app == "True" and int(frozen) > 10_000
