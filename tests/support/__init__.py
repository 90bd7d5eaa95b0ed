"""What many tests share, one job per module.

* ``backends``: PostgreSQL and Redis servers started for the session, ``free_port``,
  ``fresh_postgres_database``.
* ``canary``: the suite-wide secret canary (``CANARY``, ``watch``); a pytest plugin.
* ``app``: the application in process (``settings``, ``app``, ``services``, ``client``
  over SQLite and PostgreSQL); a pytest plugin.
* ``live``: the service on a real loopback port and an official-SDK MCP client for it.
* ``buildbot``: a real Buildbot master and worker.
* ``fixtures``: the servers tests borrow per module (``buildbot``, ``live``,
  ``canned_upstream`` and its per-test clean view ``upstream``); a pytest plugin.
* ``http``: request helpers (``bearer``, ``service_like_client``).
* ``polling``: bounded waits until a build or pipeline run settles.
* ``standin``: a test double in its own process (serving it, starting and stopping it).

The fault-injecting upstream is ``tests.upstream`` and the GitLab stand-in
``tests.standins.gitlab``, each a process of its own; the provider contract suite is
``tests.contract``.
"""
