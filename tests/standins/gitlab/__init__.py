"""A stand-in for GitLab's REST API v4 (CI/CD part), for testing a GitLab provider.

GitLab cannot run on these machines, so this test double, in its own process on
loopback, answers as GitLab documents its API. It follows (each route names its page):

* docs.gitlab.com/ee/api/rest/index.html — authentication, status codes, offset
  pagination (``page``/``per_page``, ``X-*`` headers, ``Link``), namespaced paths;
* docs.gitlab.com/ee/api/projects.html#get-a-single-project;
* docs.gitlab.com/ee/api/pipelines.html — list (filters, order), get, create, cancel,
  retry, delete, variables;
* docs.gitlab.com/ee/api/jobs.html — list project/pipeline jobs (``scope``,
  ``include_retried``), get, trace, cancel, retry;
* docs.gitlab.com/ee/api/job_artifacts.html — the archive and single files;
* docs.gitlab.com/ee/api/pipeline_schedules.html — list, get, play;
* docs.gitlab.com/ee/administration/settings/user_and_ip_rate_limits.html and
  docs.gitlab.com/ee/security/rate_limits.html — 429, ``Retry-After``, ``RateLimit-*``;
* GitLab's response JSON schemas (gitlabhq/gitlabhq
  ``spec/fixtures/api/schemas/public_api/v4/job.json``, ``pipeline/detail.json``).

Modules: ``model`` (state, and pipelines that progress with a clock), ``render`` (JSON
entities, traces, zips), ``api`` (the ``/api/v4`` routes), ``control`` (the
``/_standin`` routes tests use to seed, script, fault and move time), ``app`` (the ASGI
app, faults and throttle), ``fixture`` (start/stop the process; pytest fixtures).
It is a test double for GitLab only; ``README.md`` beside this file says how to use
it and what it leaves out.
"""

from tests.standins.gitlab.fixture import GitLabStandin, run_gitlab

__all__ = ["GitLabStandin", "run_gitlab"]
