"""A fault-injecting upstream on loopback, for fault tests and the benchmark.

It runs as its own process (``python -m tests.upstream --port N [--target URL |
--canned]``), so a test or a benchmark in another process drives it over HTTP,
and its CPU time is not the measured service's. Two modes:

* **proxy** (``--target URL``): forwards every request (method, path, query, body,
  headers, cookies) to a real server, e.g. the Buildbot master of
  ``tests/support/buildbot/server.py``, and streams the answer back.
* **canned** (default): answers the Buildbot REST reads the Buildbot provider makes
  for ``get_build_status`` and ``list_builds`` with JSON shaped like a Buildbot 4.3
  master's (copied from a real one), and serves ``GET /openapi.json`` describing
  them, so FastMCP's OpenAPI proxy can be built over the same upstream.

Faults, in both modes, through the control endpoints (never faulted or counted):

* ``POST /__faults`` adds one fault, e.g. ``{"kind": "status", "status": 503,
  "retry_after": "1", "count": 3, "path": "^/api/v2/builds"}``. Kinds: ``status``
  (any code from 200 to 599, optional ``retry_after`` header and ``body``; with
  ``echo`` the body is ``{"error": ...}`` repeating the request's ``Authorization`` and
  ``Cookie`` headers, as a misconfigured proxy does), ``hang`` (wait
  ``seconds``, at most ``MAX_HANG_S``, then answer normally), ``drop`` (close the
  connection without sending a byte). ``count`` is how many matching requests it
  applies to (omitted: until cleared); ``path`` is a regular expression searched in
  the request path, ``method`` an HTTP method. Faults apply in the order they were
  added; the first one matching takes the request.
* ``DELETE /__faults`` clears them; ``GET /__stats`` counts the requests seen (total,
  per path, how many were faulted, and how many carried ``Authorization`` or a
  ``Cookie``); ``DELETE /__stats`` zeroes the counts.

Canned mode also answers ``GET /auth/login`` like a master with a login: with basic
credentials it sets the session cookie ``TWISTED_SESSION=session-of-<username>``.

``run_upstream()`` starts the process on a free port, waits (bounded) until it
answers, and stops it by its PID on exit.

Modules, one job each: ``faults`` (what a fault is and how it is applied),
``control`` (the control endpoints), ``proxy`` and ``canned`` (the two modes),
``asgi`` (body and JSON helpers), ``app`` (the ASGI app), ``server`` (the process),
``runner`` (the handle a test holds).
"""

from tests.upstream.faults import MAX_HANG_S, FaultKind
from tests.upstream.runner import Upstream, UpstreamStats, run_upstream
from tests.upstream.server import HOST, listening_socket

__all__ = [
    "HOST",
    "MAX_HANG_S",
    "FaultKind",
    "Upstream",
    "UpstreamStats",
    "listening_socket",
    "run_upstream",
]
