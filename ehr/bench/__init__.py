"""Provides the `manage.py bench` machinery: baseline views and URLs, the bench server (gunicorn or granian),
wrk runners, the report.

Only the bench server loads `ehr.bench.settings`, which mounts the two baseline routes next to the real
URLconf; nothing here is reachable from the normal project settings.
"""
