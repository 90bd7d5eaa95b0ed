"""The provider contract suite: one set of scenarios every CI provider passes.

Each scenario runs once per provider target, against that provider's real test
server (Buildbot: a real master and worker) or its documented-API stand-in, through
the adapter protocol and, where the behaviour is what a user sees, through the
service's MCP face (``{instance}_{operation}`` tools) and REST face
(``/api/v1/tools/{tool}/operations/{operation}``).

How a provider plugs in (three steps):

1. Write ``tests/contract/<provider>.py`` with a ``ProviderTarget``
   (``tests/contract/target.py``): the provider's entry-point name, its tool
   ``config``, a ``serve`` async context manager that starts its test server in a
   scratch directory, seeds it, and yields a ``Server`` (the base URL, and working
   credentials or ``None`` when the server is open), and the facts the scenarios need:

   * ``succeeds``: a ``BuildRequest`` that finishes ``succeeded`` within seconds;
   * ``fails`` and ``error_line``: one that finishes ``failed``, with ``error_line``
     (literal text) in its logs;
   * ``runs_long``: one that stays ``running`` long enough to be cancelled;
   * ``unknown_project`` and ``unknown_build_ids``: well-formed names the server has
     never heard of;
   * ``bad_credentials``: credentials the server refuses;
   * ``pipeline`` and ``unknown_pipeline`` (if it offers pipelines): a
     ``PipelineRequest`` that runs to ``succeeded``, and an id of no pipeline;
   * ``unknown_artifact_id`` (if it offers artifacts): an id of no artifact; a
     ``succeeds`` build must leave a downloadable artifact smaller than 1 MiB.
   * ``reads`` and ``triggers`` (optional): how the fault proxy tells a read from the
     request that starts a build (default: GET and POST; AWS's JSON protocols POST
     everything and name the operation in ``X-Amz-Target``), and
     ``proxy_keeps_host`` for a client that signs the Host header (AWS SigV4).

   ``tests/contract/buildbot.py`` (a real master) and ``tests/contract/gitlab.py``
   (the GitLab stand-in) are the examples.

2. Add it to ``TARGETS`` in ``tests/contract/targets.py``.

3. Run ``pytest tests/contract``. Test ids name the provider
   (``test_a_build_goes_from_trigger_to_succeeded[buildbot]``). A scenario for a
   feature the provider does not offer (pipelines, artifacts) is not generated for
   it, rather than skipped: CI fails on any skip.

The server is started once for the package and shared by every module, so the
scenarios never assume a server of their own: lists are checked for what a test
made, not for their whole content, and a build left running is always cancelled.
Faults (5xx, 429 with ``Retry-After``, hangs, dropped connections) come from the
fault-injecting proxy ``tests.upstream`` put in front of the server, which works for
any HTTP provider.
"""
