"""Provides work a request leaves for after its response has gone to the client.

A WSGI server writes the whole response and then closes it, and Django's `request_finished` signal fires from
that close (Django's ASGI handler and test client close the same way). Work queued here runs then, in the
request's thread and with its database connection, so bookkeeping the client does not wait for (the SMART
token's last use, the launch timeline's FHIR calls) no longer adds a database write to every API call's
latency. It still runs before the thread serves another request.
"""

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

_pending = threading.local()  # per thread: a request's queue; ASGI runs sync views and close() on one thread


def after_response(work: Callable[[], None]) -> None:
    """Run `work` once the current response has been sent (at request_finished)."""
    queue = getattr(_pending, "queue", None)
    if queue is None:
        queue = _pending.queue = []
    queue.append(work)


def run_pending(**_kwargs: object) -> None:
    """request_finished receiver: run the queued work in order; a failure is logged, the rest still runs."""
    queue = getattr(_pending, "queue", None)
    if not queue:
        return
    _pending.queue = []
    for work in queue:
        try:
            work()
        except Exception:
            logger.exception("Work left for after the response failed")
