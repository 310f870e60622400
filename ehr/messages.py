"""Provides Django's MessageMiddleware with the message storage made on first use.

Django's middleware builds the storage on every request: a cookie storage (with its signer) and a session
storage behind it, and at the response it asks them whether there is anything to save. Most requests here
never show or add a message (every token request, FHIR call and authorization redirect): for them that was
10 us of work per request, now 2.5 (docs/benchmarks-smart.md). The storage is now made when a view
or template first touches `request._messages` (messages.add_message, get_messages, the context processor),
and a response whose request never touched it has nothing to save.
"""

from typing import Any

from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty


class LazyMessageMiddleware(MessageMiddleware):
    def process_request(self, request: HttpRequest) -> None:
        request._messages = SimpleLazyObject(lambda: default_storage(request))  # type: ignore[attr-defined]

    def process_response(self, request: HttpRequest, response: HttpResponse) -> Any:
        messages = getattr(request, "_messages", None)
        if isinstance(messages, SimpleLazyObject) and messages._wrapped is empty:
            return response  # never used: nothing was added, nothing was read
        return super().process_response(request, response)
