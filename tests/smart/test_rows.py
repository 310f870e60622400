"""smart.rows, the fixed SQL under the hot paths: rows read back as the ORM builds them, INSERTs that fill
defaults, and batches whose writes depend on a claimed row (single use under concurrent requests)."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from smart.models import Application, LaunchContext, LaunchEvent, UserFhirIdentity
from smart.rows import SQL, Batch, Claim, ClaimLost, Columns, Insert, fetch_one, relate, table

User = get_user_model()

LAUNCH_COLUMNS = Columns([("l", LaunchContext), ("a", Application), ("u", User), ("i", UserFhirIdentity)])
LAUNCH_SQL = (
    f"SELECT {LAUNCH_COLUMNS.sql} FROM {table(LaunchContext)} l "
    f"JOIN {table(Application)} a ON a.id = l.application_id JOIN {table(User)} u ON u.id = l.user_id "
    f"LEFT JOIN {table(UserFhirIdentity)} i ON i.user_id = u.id WHERE l.launch = %s"
)


@pytest.fixture
def launch(db):
    user = User.objects.create_user("rows-user")
    app = Application.objects.create(
        name="Rows app", client_type="public", authorization_grant_type="authorization-code",
        redirect_uris="https://app.example/cb", client_jwks={"keys": []},
    )  # fmt: skip
    return LaunchContext.objects.create(
        application=app, user=user, patient_id="p1", fhir_context=[{"reference": "Observation/o1"}],
        expires=timezone.now() + timedelta(minutes=5),
    )  # fmt: skip


def _claim(launch: LaunchContext) -> Claim:
    usable = SQL("id = %s AND consumed IS NULL", (launch.pk,))
    now = LaunchContext._meta.get_field("consumed").get_db_prep_save(timezone.now(), connection)
    statement = f"UPDATE {table(LaunchContext)} SET consumed = %s WHERE {usable.text} RETURNING id"
    return Claim(LaunchContext, usable, SQL(statement, (now, *usable.params)))


def test_rows_read_back_as_the_orm_builds_them(launch):
    # when a launch is read with its app and user through fixed SQL
    row = fetch_one(LAUNCH_SQL, [launch.launch], "default")
    found, app, user, identity = LAUNCH_COLUMNS.read(row, "default")

    # then every field converts as the ORM would (datetimes, JSON), and the missing identity is None
    expected = LaunchContext.objects.get(pk=launch.pk)
    assert {f.attname: getattr(found, f.attname) for f in LaunchContext._meta.concrete_fields} == {
        f.attname: getattr(expected, f.attname) for f in LaunchContext._meta.concrete_fields
    }
    assert found._state.adding is False and found._state.db == "default"
    assert (app.client_jwks, app.name, user.username, identity) == (
        {"keys": []},
        "Rows app",
        "rows-user",
        None,
    )


def test_related_rows_are_cached_as_select_related_does(launch):
    # given rows read together
    found, app, user, _identity = LAUNCH_COLUMNS.read(
        fetch_one(LAUNCH_SQL, [launch.launch], "default"), "default"
    )

    # when they are related to each other
    relate(found, "application", app)
    relate(found, "user", user)
    relate(user, "fhir_identity", None)

    # then following the relations runs no query, and the missing identity raises as the ORM's does
    with CaptureQueriesContext(connection) as queries:
        assert found.application.name == "Rows app" and found.user.username == "rows-user"
        with pytest.raises(UserFhirIdentity.DoesNotExist):
            _ = found.user.fhir_identity
    assert len(queries) == 0


def test_insert_fills_defaults_and_refuses_unknown_columns(launch):
    # when an event is inserted with only the columns the caller knows
    batch = Batch("default")
    batch.insert(Insert(LaunchEvent), {"launch_id": launch.pk, "kind": "fhir-call", "detail": {"n": 1.5}})
    batch.run()

    # then the row has its auto_now_add time and its JSON as given
    event = LaunchEvent.objects.get(launch=launch)
    assert event.detail == {"n": 1.5} and abs(timezone.now() - event.created) < timedelta(seconds=5)
    with pytest.raises(TypeError, match="no column"):
        Insert(LaunchEvent).statement({"launch_id": launch.pk, "colour": "red"}, "default")


def test_insert_prepares_values_as_the_orm_does(launch):
    # given values of every kind a launch row holds: text, a foreign key as an id and as an instance, aware
    # and naive datetimes, a date as a string, JSON, booleans and None
    soon = timezone.now() + timedelta(minutes=5)
    values = {
        "launch": "opaque-launch", "application": launch.application, "user_id": launch.user_id,
        "patient_id": "p1", "encounter_id": None, "fhir_context": [{"reference": "Observation/o1"}],
        "need_patient_banner": False, "expires": soon, "consumed": "2026-01-02 03:04:05+00:00",
    }  # fmt: skip

    # when the INSERT is built
    insert = Insert(LaunchContext)
    _sql, params = insert.statement(values, "default")

    # then each parameter is what the field's own preparation for the database gives (JSON wrapped for
    # psycopg compares by identity, so its content is compared)
    given = {**values, "application": launch.application_id}
    fields = [(i, f) for i, f in enumerate(insert.fields) if f.name in given or f.attname in given]
    expected = [f.get_db_prep_save(given.get(f.name, given.get(f.attname)), connection) for _i, f in fields]
    assert [_plain(params[i]) for i, _f in fields] == [_plain(p) for p in expected]


def _plain(value):
    return getattr(value, "obj", value)  # psycopg's Jsonb holds its value in .obj


@pytest.mark.django_db(transaction=True)
def test_a_batch_is_all_or_nothing():
    # given a batch whose last write breaks a unique constraint
    user = User.objects.create_user(f"rows-{uuid.uuid4().hex[:8]}")
    app = Application.objects.create(
        name="Atomic", client_type="public", authorization_grant_type="authorization-code"
    )
    taken = LaunchContext.objects.create(application=app, user=user, expires=timezone.now())
    batch = Batch("default")
    batch.insert(Insert(LaunchEvent), {"launch_id": taken.pk, "kind": "first", "detail": {}})
    values = {"application_id": app.pk, "user_id": user.pk, "launch": taken.launch, "expires": timezone.now()}
    batch.insert(Insert(LaunchContext), values)

    # when it runs, it fails
    with pytest.raises(IntegrityError):
        batch.run()

    # then none of its writes stayed, and the connection is usable (not left in a broken transaction)
    assert not LaunchEvent.objects.filter(launch=taken).exists()
    assert LaunchContext.objects.count() == 1


def test_claimed_row_lets_the_dependent_writes_happen(launch):
    # when a batch claims the unused launch and writes an event that depends on it
    batch = Batch("default", claim=_claim(launch))
    batch.insert(
        Insert(LaunchEvent), {"launch_id": launch.pk, "kind": "used", "detail": {}}, where=batch.gate
    )
    batch.run()

    # then the launch is used and the event written
    launch.refresh_from_db()
    assert launch.consumed is not None
    assert list(LaunchEvent.objects.values_list("kind", flat=True)) == ["used"]


def test_a_lost_claim_writes_nothing_that_depended_on_it(launch):
    # given a launch another request used already
    LaunchContext.objects.filter(pk=launch.pk).update(consumed=timezone.now())

    # when a batch tries to claim it, with one dependent and one independent write
    batch = Batch("default", claim=_claim(launch))
    batch.insert(
        Insert(LaunchEvent), {"launch_id": launch.pk, "kind": "used", "detail": {}}, where=batch.gate
    )
    batch.insert(Insert(LaunchEvent), {"launch_id": launch.pk, "kind": "tried", "detail": {}})

    # then it raises ClaimLost, and only the independent write happened
    with pytest.raises(ClaimLost):
        batch.run()
    assert list(LaunchEvent.objects.values_list("kind", flat=True)) == ["tried"]


@pytest.mark.django_db(transaction=True)
def test_of_concurrent_claims_exactly_one_wins():
    # given one unused launch and eight requests that each try to use it at the same moment
    user = User.objects.create_user(f"rows-{uuid.uuid4().hex[:8]}")
    app = Application.objects.create(
        name="Race", client_type="public", authorization_grant_type="authorization-code"
    )
    launch = LaunchContext.objects.create(
        application=app, user=user, patient_id="p1", expires=timezone.now() + timedelta(minutes=5)
    )
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def attempt(n: int) -> None:
        try:
            batch = Batch("default", claim=_claim(launch))
            batch.insert(Insert(LaunchEvent), {"launch_id": launch.pk, "kind": f"won-{n}", "detail": {}},
                         where=batch.gate)  # fmt: skip
            start.wait()
            batch.run()
            outcomes.append("won")
        except ClaimLost:
            outcomes.append("lost")
        finally:
            connections.close_all()

    # when they run
    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then exactly one used it and wrote its event; the others wrote nothing
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]
    assert LaunchEvent.objects.filter(launch=launch).count() == 1
