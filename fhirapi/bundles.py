"""Provides Bundle builders for search results and history (FHIR R4 bundle.html, search.html#paging).

Entries embed each resource's stored JSON text as is, so a page of results is joined, not re-serialised.
Only `_elements` and `_summary` (which must change the resources) parse and rewrite them.
"""

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from fhirapi import jsontext
from fhirapi.elements import project
from fhirapi.outcomes import issue, operation_outcome


def searchset_bundle(
    *,
    base_url: str,
    path: str,
    params: Sequence[tuple[str, str]],
    matches: Sequence[Any],
    included: Sequence[Any],
    total: int | None,
    count: int,
    offset: int,
    summary: str | None = None,
    elements: Sequence[str] = (),
    ignored: Sequence[str] = (),
) -> bytes:
    """A searchset Bundle; `matches`/`included` are StoredResource-like (resource_type, fhir_id, content)."""
    links = _paging_links(f"{base_url}/{path}", params, total, count, offset, len(matches))
    head: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        head["total"] = total
    head["link"] = links
    entries = [_entry(base_url, r, "match", summary, elements) for r in matches]
    entries += [_entry(base_url, r, "include", summary, elements) for r in included]
    if ignored:
        outcome = operation_outcome(
            *(
                issue(
                    f"Parameter {p!r} is not supported and was ignored.",
                    code="not-supported",
                    severity="warning",
                )
                for p in ignored
            )
        )
        entries.append(f'{{"resource":{jsontext.dumps(outcome)},"search":{{"mode":"outcome"}}}}')
    if summary == "count":
        entries = []
    return _assemble(head, entries)


def history_bundle(
    *,
    base_url: str,
    path: str,
    params: Sequence[tuple[str, str]],
    entries: Sequence[Any],
    total: int,
    count: int,
    offset: int,
) -> bytes:
    """A history Bundle, newest version first; deletions have a request but no resource."""
    head = {
        "resourceType": "Bundle",
        "type": "history",
        "total": total,
        "link": _paging_links(f"{base_url}/{path}", params, total, count, offset, len(entries)),
    }
    return _assemble(head, [_history_entry(base_url, e) for e in entries])


def _assemble(head: dict[str, Any], entries: list[str]) -> bytes:
    text = jsontext.dumps(head)
    return (text[:-1] + ',"entry":[' + ",".join(entries) + "]}").encode() if entries else text.encode()


def _entry(base_url: str, stored: Any, mode: str, summary: str | None, elements: Sequence[str]) -> str:
    content = stored.content
    if elements or summary in ("true", "text", "data"):
        content = jsontext.dumps(project(jsontext.loads(content), summary=summary, elements=elements))
    full_url = jsontext.dumps(f"{base_url}/{stored.resource_type}/{stored.fhir_id}")
    return f'{{"fullUrl":{full_url},"resource":{content},"search":{{"mode":"{mode}"}}}}'


def _history_entry(base_url: str, entry: Any) -> str:
    reference = f"{entry.resource_type}/{entry.fhir_id}"
    method = entry.method
    request = {"method": method, "url": entry.resource_type if method == "POST" else reference}
    status = "204 No Content" if method == "DELETE" else "201 Created" if entry.version_id == 1 else "200 OK"
    response = {
        "status": status,
        "etag": f'W/"{entry.version_id}"',
        "lastModified": entry.last_updated.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    parts = [f'"fullUrl":{jsontext.dumps(f"{base_url}/{reference}")}']
    if entry.content:
        parts.append(f'"resource":{entry.content}')
    parts.append(f'"request":{jsontext.dumps(request)}')
    parts.append(f'"response":{jsontext.dumps(response)}')
    return "{" + ",".join(parts) + "}"


def _paging_links(
    url: str, params: Sequence[tuple[str, str]], total: int | None, count: int, offset: int, returned: int
) -> list[dict[str, str]]:
    kept = [(k, v) for k, v in params if k not in ("_count", "_offset", "_format")]

    def link(relation: str, page_offset: int) -> dict[str, str]:
        query = urlencode([*kept, ("_count", str(count)), ("_offset", str(page_offset))])
        return {"relation": relation, "url": f"{url}?{query}"}

    links = [link("self", offset)]
    has_more = offset + count < total if total is not None else returned >= count > 0
    if count and has_more:
        links.append(link("next", offset + count))
    if offset > 0 and count:
        links.append(link("previous", max(0, offset - count)))
    return links
