"""Provides the type- and instance-level FHIR interactions: search, create, read, vread, update, delete, history."""

from urllib.parse import parse_qsl

from rest_framework.response import Response

from fhirapi import store
from fhirapi.access import Interaction
from fhirapi.bundles import history_bundle, searchset_bundle
from fhirapi.exceptions import InvalidRequest
from fhirapi.integrity import referrers_check
from fhirapi.search import SearchError
from fhirapi.settings import fhirapi_settings
from fhirapi.views.base import FHIRView
from fhirapi.views.history import history_params
from fhirapi.views.responses import resource_response


class TypeView(FHIRView):
    """GET [base]/[type] (search-type) and POST [base]/[type] (create, conditional with If-None-Exist)."""

    def get(self, request, resource_type: str) -> Response:
        return search_response(self, resource_type, self.query_pairs())

    def post(self, request, resource_type: str) -> Response:
        self.check_type(resource_type)
        access = self.access(resource_type, Interaction.CREATE)
        body = _resource_body(request.data, resource_type)
        body.pop("id", None)  # the server assigns ids on create (R4 http.html#create)
        stored, created = store.resource_create(
            resource=body,
            if_none_exist=request.META.get("HTTP_IF_NONE_EXIST"),
            access=access,
            check_references=True,
        )
        return resource_response(
            stored,
            status=201 if created else 200,
            base_url=self.base_url,
            location=created,
            prefer_return=self.prefer("return"),
        )


class TypeSearchView(FHIRView):
    """POST [base]/[type]/_search: form-encoded parameters, same results as GET."""

    def post(self, request, resource_type: str) -> Response:
        body = request.body.decode() if request.content_type == "application/x-www-form-urlencoded" else ""
        return search_response(
            self, resource_type, self.query_pairs() + parse_qsl(body, keep_blank_values=True)
        )

    def get_parsers(self):  # type: ignore[no-untyped-def]
        return []  # the form body is read raw above


class InstanceView(FHIRView):
    """GET (read), PUT (update / update-as-create) and DELETE on [base]/[type]/[id]."""

    def get(self, request, resource_type: str, resource_id: str) -> Response:
        self.check_type(resource_type)
        access = self.access(resource_type, Interaction.READ)
        stored = store.resource_read(resource_type=resource_type, resource_id=resource_id, access=access)
        return resource_response(stored)

    def put(self, request, resource_type: str, resource_id: str) -> Response:
        self.check_type(resource_type)
        access = self.access(resource_type, Interaction.UPDATE)
        stored, created = store.resource_update(
            resource_type=resource_type,
            resource_id=resource_id,
            resource=_resource_body(request.data, resource_type),
            if_match=_if_match(request.META.get("HTTP_IF_MATCH")),
            access=access,
            check_references=True,
        )
        return resource_response(
            stored,
            status=201 if created else 200,
            base_url=self.base_url,
            location=True,
            prefer_return=self.prefer("return"),
        )

    def delete(self, request, resource_type: str, resource_id: str) -> Response:
        self.check_type(resource_type)
        access = self.access(resource_type, Interaction.DELETE)
        try:
            store.resource_read(resource_type=resource_type, resource_id=resource_id, access=access)
        except store.ResourceGone:
            return Response(status=204)  # already deleted: deleting again changes nothing
        referrers_check(resource_type, resource_id)
        deleted = store.resource_delete(resource_type=resource_type, resource_id=resource_id, access=access)
        response = Response(status=204)
        if deleted is not None:
            response["ETag"] = deleted.etag
        return response


class VersionView(FHIRView):
    """GET [base]/[type]/[id]/_history/[vid] (vread)."""

    def get(self, request, resource_type: str, resource_id: str, version_id: str) -> Response:
        self.check_type(resource_type)
        access = self.access(resource_type, Interaction.VREAD)
        if not version_id.isdigit():
            raise store.ResourceNotFound(f"{resource_type}/{resource_id} has no version {version_id!r}.")
        stored = store.resource_vread(
            resource_type=resource_type, resource_id=resource_id, version_id=int(version_id), access=access
        )
        return resource_response(stored)


class InstanceHistoryView(FHIRView):
    """GET [base]/[type]/[id]/_history."""

    def get(self, request, resource_type: str, resource_id: str) -> Response:
        self.check_type(resource_type)
        access = self.access(resource_type, Interaction.HISTORY_INSTANCE)
        return _history(self, f"{resource_type}/{resource_id}/_history", access, resource_type, resource_id)


class TypeHistoryView(FHIRView):
    """GET [base]/[type]/_history."""

    def get(self, request, resource_type: str) -> Response:
        self.check_type(resource_type)
        access = self.access(resource_type, Interaction.HISTORY_TYPE)
        return _history(self, f"{resource_type}/_history", access, resource_type, None)


def search_response(view: FHIRView, resource_type: str, params: list[tuple[str, str]]) -> Response:
    view.check_type(resource_type)
    access = view.access(resource_type, Interaction.SEARCH_TYPE)
    try:
        body = search_bundle(view, resource_type, params, access, strict=view.prefer("handling") == "strict")
    except SearchError as exc:
        raise InvalidRequest(str(exc), expression=[exc.param or resource_type]) from exc
    return Response(body)


def search_bundle(view: FHIRView, resource_type: str, params, access, *, strict: bool = False) -> bytes:  # type: ignore[no-untyped-def]
    """Run a search under `access` (includes under the view's grant) and build its searchset Bundle."""
    result = store.resource_search(
        resource_type=resource_type,
        params=params,
        access=access,
        strict=strict,
        access_for=view.access_for(Interaction.SEARCH_TYPE),
        default_count=fhirapi_settings.DEFAULT_PAGE_SIZE,
        max_count=fhirapi_settings.MAX_PAGE_SIZE,
    )
    query = result.query
    return searchset_bundle(
        base_url=view.base_url,
        path=resource_type,
        params=params,
        matches=result.resources,
        included=result.included,
        total=result.total,
        count=query.count,
        offset=query.offset,
        summary=query.summary,
        elements=query.elements,
        ignored=query.ignored,
    )


def _history(view: FHIRView, path: str, access, resource_type, resource_id) -> Response:  # type: ignore[no-untyped-def]
    params = view.query_pairs()
    since, count, offset = history_params(params)
    entries, total = store.resource_history(
        resource_type=resource_type,
        resource_id=resource_id,
        access=access,
        since=since,
        count=count,
        offset=offset,
    )
    return Response(
        history_bundle(
            base_url=view.base_url,
            path=path,
            params=params,
            entries=entries,
            total=total,
            count=count,
            offset=offset,
        )
    )


def _resource_body(data, resource_type: str) -> dict:  # type: ignore[no-untyped-def]
    if not isinstance(data, dict) or data.get("resourceType") != resource_type:
        raise InvalidRequest(f"The body must be a {resource_type} resource.", expression=["resourceType"])
    return data


def _if_match(value: str | None) -> int | None:
    """`W/"3"` or `"3"` -> 3."""
    if not value:
        return None
    digits = value.strip().removeprefix("W/").strip('"')
    if not digits.isdigit():
        raise InvalidRequest(f'If-Match must be an ETag like W/"3", not {value!r}.')
    return int(digits)
