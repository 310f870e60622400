"""Provides oauthlib requests built from parameters Django has already parsed, and the check that no
parameter was given twice.

oauthlib's `Request` takes its parameters as a URL or a body string: handing it a parsed query means encoding
it again for oauthlib to decode, and oauthlib parses the query anew each time it checks for repeated
parameters (five times in one authorization request's validation). Together that was about a tenth of the
authorization endpoint's CPU time (docs/benchmarks-smart.md).
"""

from collections.abc import Sequence
from typing import Any

from django.http import QueryDict
from oauthlib.common import Request


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

    @property
    def uri_query_params(self) -> list[tuple[str, str]]:
        return self._query_pairs


def repeated_params(params: QueryDict, *, may_repeat: frozenset[str] = frozenset()) -> list[str]:
    """The parameters given more than once: RFC 6749 §3.1 and §3.2 allow each at most once in an authorization
    or token request (RFC 8707 lets `resource` repeat, named in `may_repeat`)."""
    return sorted(name for name, values in params.lists() if len(values) > 1 and name not in may_repeat)
