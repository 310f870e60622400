"""`manage.py seed_demo`: load the demo population, demo users and sample app registrations (idempotent)."""

import time
from datetime import date

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from ehr.demo.apps import demo_apps_register
from ehr.demo.population import cohort_groups, patient_resources, practitioners_and_organization
from ehr.services import user_ensure
from fhirapi.store import resource_ids_existing, resources_load, statistics_refresh

DEFAULT_PASSWORD = "smart-demo-2026"

DEMO_USERS = [
    {
        "username": "clinician",
        "fhir_user": "Practitioner/pract-1",
        "first_name": "Grace",
        "last_name": "Hopper",
    },
    {
        "username": "clinician2",
        "fhir_user": "Practitioner/pract-2",
        "first_name": "Alan",
        "last_name": "Turing",
    },
    {"username": "patient", "fhir_user": "Patient/pat-0", "first_name": "", "last_name": ""},
    {"username": "admin", "is_superuser": True, "first_name": "Ada", "last_name": "Admin"},
]


class Command(BaseCommand):
    help = "Load demo patients, clinical data, practitioners and users. Safe to run again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--patients", type=int, default=25, help="How many patients (default 25).")
        parser.add_argument("--password", default=DEFAULT_PASSWORD, help="Password of the demo users.")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument(
            "--base-url",
            default=None,
            help="The EHR's public root URL for the sample app registrations (default: from FHIR_BASE_URL).",
        )
        parser.add_argument(
            "--app-base-url",
            default=None,
            help="Where the sample app is opened from, e.g. http://localhost:8000 to make its calls "
            "cross-origin (default: the EHR's own root URL).",
        )
        parser.add_argument(
            "--trust",
            action="store_true",
            help="Skip FHIR validation of the generated resources "
            "(the generator's output is validated in tests).",
        )

    def handle(
        self,
        *args,
        patients: int,
        password: str,
        batch_size: int,
        trust: bool,
        base_url: str | None,
        app_base_url: str | None,
        **options,
    ) -> None:
        started = time.perf_counter()
        today = date.today()
        written = resources_load(practitioners_and_organization(), validate=not trust)
        existing = resource_ids_existing("Patient", [f"pat-{i}" for i in range(patients)])
        todo = [i for i in range(patients) if f"pat-{i}" not in existing]
        with tqdm(total=len(todo), unit="patient", disable=not todo, file=self.stderr) as bar:
            for chunk in _chunks(todo, max(1, batch_size // 200)):
                resources = [r for i in chunk for r in patient_resources(i, today=today)]
                written += resources_load(resources, batch_size=batch_size, validate=not trust)
                bar.update(len(chunk))
        written += resources_load(cohort_groups(patients), validate=not trust)
        self._users(password)
        if todo:
            statistics_refresh()  # the planner must know the index tables grew, or it picks full scans
        apps = demo_apps_register(base_url or settings.PUBLIC_ROOT_URL, app_base_url)
        elapsed = time.perf_counter() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"{patients} patients ready ({len(todo)} new); {written} resources written in {elapsed:.1f}s "
                f"({written / elapsed:.0f}/s). Demo users: clinician, clinician2, patient, admin. "
                f"Sample app registrations: {', '.join(a.client_id for a in apps)}."
            )
        )

    def _users(self, password: str) -> None:
        for spec in DEMO_USERS:
            user_ensure(password=password, **spec)


def _chunks(items: list[int], size: int):  # type: ignore[no-untyped-def]
    for start in range(0, len(items), size):
        yield items[start : start + size]
