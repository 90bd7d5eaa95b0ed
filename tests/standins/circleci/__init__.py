"""A CircleCI stand-in: API v2 as CircleCI's OpenAPI description has it. Tests only.

No CircleCI server runs outside CircleCI's cloud, so this process answers the part of
the API the CircleCI provider uses, following:

* CircleCI's API v2 OpenAPI description (``openapi-v2.json``, from
  https://circleci.com/api/v2/openapi.json as of January 2023; see ``README.md``):
  every request to ``/api/v2`` and every answer to one is validated against it
  (``spec.py``), and a mismatch is recorded and answered 500, which fails the run;
* CircleCI's API v1.1 reference, "Single Job" (circleci.com/docs/api/v1/#single-job):
  ``GET /api/v1.1/project/:vcs-type/:username/:project/:build_num`` with ``steps[]
  .actions[]`` carrying ``output_url``, which answers the step's output as a JSON array
  of ``{message, time, type}`` (API v2 has no log endpoint);
* CircleCI's "Webhooks" page (circleci.com/docs/webhooks/): ``workflow-completed`` and
  ``job-completed`` deliveries, signed ``circleci-signature: v1=<hex HMAC-SHA256 of the
  body>``, each with an ``id`` of its own.

Jobs run for real: their steps are ``bash -eo pipefail -c`` subprocesses, so output
and failures are genuine. See ``README.md``.
"""
