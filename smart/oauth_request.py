"""Provides oauthlib requests built from parameters Django has already parsed, the token endpoint's
response for such a request, and the check that no parameter was given twice.

oauthlib's `Request` takes its parameters as a URL or a body string: handing it a parsed query means encoding
it again for oauthlib to decode, and oauthlib parses the query anew each time it checks for repeated
parameters (five times in one authorization request's validation). Together that was about a tenth of the
authorization endpoint's CPU time (docs/benchmarks-smart.md). At the token endpoint DOT re-encodes the form
Django parsed, with a copy of every header converted again, for oauthlib to parse once more.
"""

from collections.abc import Sequence
from functools import cache
from typing import Any

from django.http import HttpRequest, QueryDict
from oauthlib.common import Request
from oauthlib.oauth2.rfc6749.endpoints.base import catch_errors_and_unavailability
from oauthlib.oauth2.rfc6749.utils import scope_to_list


class ParsedRequest(Request):
    """An oauthlib request whose query parameters arrive as (name, value) pairs, repeats kept.

    To oauthlib it is the request `uri?query`: the parameters are its query parameters (`uri_query_params`,
    which the repeated-parameter check reads) and its attributes (`request.client_id`, ...)."""

    def __init__(
        self, uri: str, http_method: str, pairs: Sequence[tuple[str, str]], headers: dict[str, Any]
    ) -> None:
        # Django hands over str everywhere, so oauthlib's re-encoding (encoding=None skips it) is not needed.
        super().__init__(uri, http_method=http_method, headers=headers, encoding=None)
        self._query_pairs = list(pairs)
        self._params.update(dict(self._query_pairs))
        params_as_attributes(self)

    @property
    def uri_query_params(self) -> list[tuple[str, str]]:
        return self._query_pairs


@catch_errors_and_unavailability  # oauthlib's own guard: a 503 when the endpoint is switched off
def token_response(
    endpoint: Any, uri: str, form: Sequence[tuple[str, str]], headers: dict[str, Any], credentials: Any = None
) -> tuple[dict[str, str], str, int]:
    """oauthlib's TokenEndpoint.create_token_response for a form Django has parsed: (headers, body, status).

    oauthlib's builds its request from a body string; here the (name, value) pairs are the body, so repeats
    (`resource`, RFC 8707) stay as they came and nothing is encoded or parsed again."""
    request = Request(uri, http_method="POST", body=list(form), headers=headers, encoding=None)
    params_as_attributes(request)
    endpoint.validate_token_request(request)  # POST only, no query parameters
    request.scopes = scope_to_list(request.scope)
    request.extra_credentials = credentials
    handler = endpoint.grant_types.get(request.grant_type, endpoint.default_grant_type_handler)
    return handler.create_token_response(request, endpoint.default_token_type)


def params_as_attributes(request: Request) -> None:
    """Make the request's parameters plain attributes, as oauthlib reads them (`request.code`).

    oauthlib's Request serves them from its `__getattr__`, which Python calls only after the normal lookup
    has failed and built an AttributeError: one per read, some 150 per EHR launch. Set once, they are found
    directly. A parameter never shadows what the request itself defines (`uri`, `headers`, a property);
    parameters are only set in Request.__init__, so the copies cannot go stale."""
    attributes, defined = request.__dict__, _class_attributes(type(request))
    for name, value in request._params.items():
        if name not in attributes and not name.startswith("_") and name not in defined:
            attributes[name] = value


@cache
def _class_attributes(cls: type) -> frozenset[str]:
    """What a request class defines (methods, properties): asked once per class, not once per parameter
    (a missed class lookup builds an AttributeError too)."""
    return frozenset(dir(cls))


def form_pairs(request: HttpRequest) -> list[tuple[str, str]]:
    """The form's (name, value) pairs in order, repeats kept."""
    return [(name, value) for name, values in request.POST.lists() for value in values]


def repeated_params(params: QueryDict, *, may_repeat: frozenset[str] = frozenset()) -> list[str]:
    """The parameters given more than once: RFC 6749 §3.1 and §3.2 allow each at most once in an authorization
    or token request (RFC 8707 lets `resource` repeat, named in `may_repeat`)."""
    return sorted(name for name, values in params.lists() if len(values) > 1 and name not in may_repeat)
