"""Provides batch and transaction Bundle processing (FHIR R4 http.html#transaction).

A transaction runs all entries in one database transaction (all or nothing), in the order the spec gives
(DELETE, POST, PUT, GET), and rewrites `urn:uuid:` references to the ids the server assigned. A batch runs
each entry on its own, each with its own outcome. Every entry is authorised on its own through `decide`.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from django.db import transaction

from fhirapi import jsontext, store
from fhirapi.access import AccessDecision, Interaction
from fhirapi.integrity import references_check, referrers_check
from fhirapi.outcomes import error_outcome
from fhirapi.searchparams import is_supported_type

ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
Decide = Callable[[str, Interaction], AccessDecision]


class EntryError(Exception):
    """One entry failed: HTTP status and an OperationOutcome message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class BundleRejected(Exception):
    """The Bundle itself is not a processable batch/transaction (400)."""


@dataclass
class _Entry:
    index: int
    method: str
    url: str
    resource: dict[str, Any] | None
    full_url: str | None
    if_none_exist: str | None
    if_match: str | None


def process_bundle(bundle: Any, *, decide: Decide, base_url: str, search: Callable) -> dict[str, Any]:
    """The batch-response or transaction-response Bundle for a batch/transaction Bundle."""
    kind = _kind(bundle)
    entries = [_parse_entry(i, e) for i, e in enumerate(bundle.get("entry") or [])]
    if kind == "transaction":
        return _transaction(entries, decide, base_url, search)
    return _batch(entries, decide, base_url, search)


def _kind(bundle: Any) -> str:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise BundleRejected("POST to the base URL takes a Bundle of type batch or transaction.")
    if bundle.get("type") not in ("batch", "transaction"):
        raise BundleRejected(f"Bundle.type must be batch or transaction, not {bundle.get('type')!r}.")
    return bundle["type"]


def _parse_entry(index: int, entry: Any) -> _Entry:
    request = entry.get("request") if isinstance(entry, dict) else None
    if not isinstance(request, dict) or not request.get("method") or not request.get("url"):
        raise BundleRejected(f"Bundle.entry[{index}].request needs a method and a url.")
    method = str(request["method"]).upper()
    if method not in ORDER:
        raise BundleRejected(f"Bundle.entry[{index}].request.method {method} is not supported.")
    return _Entry(
        index,
        method,
        request["url"],
        entry.get("resource"),
        entry.get("fullUrl"),
        request.get("ifNoneExist"),
        request.get("ifMatch"),
    )


def _transaction(entries: list[_Entry], decide: Decide, base_url: str, search: Callable) -> dict[str, Any]:
    ids = _assign_ids(entries)
    responses: dict[int, dict[str, Any]] = {}
    try:
        with transaction.atomic():
            for entry in sorted(entries, key=lambda e: ORDER[e.method]):
                if entry.resource is not None:
                    entry.resource = _rewrite(entry.resource, ids)
                responses[entry.index] = _run(entry, decide, base_url, search, ids)
            _check_integrity(entries)  # after all entries: they may reference each other
    except store.StoreError as exc:
        raise EntryError(exc.status, f"Transaction failed and nothing was saved: {exc}") from exc
    except EntryError as exc:
        raise EntryError(exc.status, f"Transaction failed and nothing was saved: {exc}") from exc
    return _response_bundle("transaction-response", [responses[e.index] for e in entries])


def _batch(entries: list[_Entry], decide: Decide, base_url: str, search: Callable) -> dict[str, Any]:
    responses = []
    for entry in entries:
        try:
            with transaction.atomic():
                response = _run(entry, decide, base_url, search, {})
                _check_integrity([entry])
                responses.append(response)
        except (store.StoreError, EntryError) as exc:
            status = exc.status
            responses.append(
                {"response": {"status": str(status), "outcome": error_outcome(status, str(exc))}}
            )
    return _response_bundle("batch-response", responses)


def _check_integrity(entries: list[_Entry]) -> None:
    """Written resources must resolve their references; deleted ones must not be referenced any more."""
    references_check(
        e.resource for e in entries if e.method in ("POST", "PUT") and isinstance(e.resource, dict)
    )
    for entry in entries:
        parts = [p for p in urlsplit(entry.url.partition("?")[0]).path.split("/") if p]
        if entry.method == "DELETE" and len(parts) >= 2:
            referrers_check(parts[0], parts[1])


def _assign_ids(entries: list[_Entry]) -> dict[str, str]:
    """urn:uuid fullUrls of POSTed resources -> the "Type/id" the server will give them."""
    ids = {}
    for entry in entries:
        if (
            entry.method == "POST"
            and entry.full_url
            and entry.full_url.startswith("urn:uuid:")
            and entry.resource
        ):
            ids[entry.full_url] = f"{entry.resource.get('resourceType')}/{uuid.uuid4()}"
    return ids


def _rewrite(value: Any, ids: dict[str, str]) -> Any:
    if not ids:
        return value
    if isinstance(value, dict):
        return {
            k: (ids.get(v, v) if k == "reference" and isinstance(v, str) else _rewrite(v, ids))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_rewrite(v, ids) for v in value]
    return value


def _run(
    entry: _Entry, decide: Decide, base_url: str, search: Callable, ids: dict[str, str]
) -> dict[str, Any]:
    path, _, query = entry.url.partition("?")
    parts = [p for p in urlsplit(path).path.split("/") if p]
    if not parts or not is_supported_type(parts[0]):
        raise EntryError(404, f"{entry.url}: unknown resource type.")
    resource_type = parts[0]
    handler = {"GET": _get, "HEAD": _get, "POST": _post, "PUT": _put, "DELETE": _delete}.get(entry.method)
    if handler is None:
        raise EntryError(405, f"{entry.method} is not supported in a Bundle.")
    return handler(entry, resource_type, parts[1:], query, decide, base_url, search, ids)


def _allowed(decide: Decide, resource_type: str, interaction: Interaction) -> AccessDecision:
    decision = decide(resource_type, interaction)
    if not decision.allowed:
        raise EntryError(403, f"The access token's scopes do not allow {interaction} on {resource_type}.")
    return decision


def _get(entry, resource_type, rest, query, decide, base_url, search, ids):  # type: ignore[no-untyped-def]
    if not rest:
        access = _allowed(decide, resource_type, Interaction.SEARCH_TYPE)
        body = search(resource_type, parse_qsl(query, keep_blank_values=True), access)
        return {"resource": jsontext.loads(body), "response": {"status": "200 OK"}}
    access = _allowed(decide, resource_type, Interaction.READ)
    stored = store.resource_read(resource_type=resource_type, resource_id=rest[0], access=access)
    return _stored_entry(stored, "200 OK", base_url, location=False)


def _post(entry, resource_type, rest, query, decide, base_url, search, ids):  # type: ignore[no-untyped-def]
    access = _allowed(decide, resource_type, Interaction.CREATE)
    resource = _body(entry, resource_type)
    assigned = ids.get(entry.full_url or "")
    stored, created = store.resource_create(
        resource={k: v for k, v in resource.items() if k != "id"},
        if_none_exist=entry.if_none_exist,
        access=access,
        resource_id=assigned.split("/", 1)[1] if assigned else None,
    )
    if not created and assigned:
        ids[entry.full_url] = stored.reference  # a conditional create matched: point references at it
    return _stored_entry(stored, "201 Created" if created else "200 OK", base_url, location=True)


def _put(entry, resource_type, rest, query, decide, base_url, search, ids):  # type: ignore[no-untyped-def]
    if not rest:
        raise EntryError(400, "PUT in a Bundle needs [type]/[id].")
    access = _allowed(decide, resource_type, Interaction.UPDATE)
    if_match = int(entry.if_match.removeprefix("W/").strip('"')) if entry.if_match else None
    stored, created = store.resource_update(
        resource_type=resource_type,
        resource_id=rest[0],
        resource=_body(entry, resource_type),
        if_match=if_match,
        access=access,
    )
    return _stored_entry(stored, "201 Created" if created else "200 OK", base_url, location=True)


def _delete(entry, resource_type, rest, query, decide, base_url, search, ids):  # type: ignore[no-untyped-def]
    if not rest:
        raise EntryError(400, "DELETE in a Bundle needs [type]/[id].")
    access = _allowed(decide, resource_type, Interaction.DELETE)
    store.resource_delete(resource_type=resource_type, resource_id=rest[0], access=access)
    return {"response": {"status": "204 No Content"}}


def _body(entry: _Entry, resource_type: str) -> dict[str, Any]:
    if not isinstance(entry.resource, dict) or entry.resource.get("resourceType") != resource_type:
        raise EntryError(400, f"Bundle.entry[{entry.index}].resource must be a {resource_type}.")
    return entry.resource


def _stored_entry(
    stored: store.StoredResource, status: str, base_url: str, *, location: bool
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "status": status,
        "etag": stored.etag,
        "lastModified": stored.last_updated.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    if location:
        response["location"] = f"{stored.reference}/_history/{stored.version_id}"
    return {"fullUrl": f"{base_url}/{stored.reference}", "resource": stored.as_dict(), "response": response}


def _response_bundle(kind: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": kind, "entry": entries}
