"""A Jenkins controller stand-in: the remote access API as Jenkins documents it. Tests only.

No Jenkins can be installed here (no registry ships its war), so this process answers
the part of the API the provider uses, following:

* "Remote Access API" (jenkins.io/doc/book/using/remote-access-api/): ``…/api/json``
  with ``tree=`` (honoured loosely: the top-level fields named are kept and a
  ``builds[…]{m,n}`` range is applied; what is nested is not trimmed), builds started by
  ``POST /job/<name>/build`` or ``/buildWithParameters?NAME=value`` answering
  ``201 Created`` with ``Location: <root>/queue/item/<id>/``, the queue item at
  ``/queue/item/<id>/api/json`` (``Queue$WaitingItem`` with ``why``, then
  ``Queue$LeftItem`` with ``executable`` or ``cancelled``), ``/queue/cancelItem?id=``,
  and folders as ``/job/team/job/app/``;
* "Authenticating scripted clients" (jenkins.io/doc/book/system-administration/
  authenticating-scripted-clients/): HTTP Basic with a user name and API token,
  401 for a wrong one, 403 for anonymous requests;
* "CSRF Protection" (jenkins.io/doc/book/security/csrf-protection/):
  ``/crumbIssuer/api/json`` → ``{crumb, crumbRequestField: "Jenkins-Crumb"}``, and a
  POST without the crumb header is 403 "No valid crumb was included in the request"
  (when ``crumbs`` is on; real controllers since 2.176.2 exempt API-token requests,
  which ``crumbs: false`` imitates by having no crumb issuer at all: 404);
* the console: ``/consoleText``, and ``/logText/progressiveText?start=N`` with
  ``X-Text-Size`` (where the text sent ends) and ``X-More-Data: true`` while the build
  runs (hudson.console.AnnotatedLargeText); ``/stop`` (302 to the build); archived
  files at ``/<n>/artifact/<path>``;
* the Notification plugin's README (plugins.jenkins.io/notification): JSON POSTed to
  an endpoint URL at QUEUED, STARTED, COMPLETED and FINALIZED with ``name``, ``url``,
  ``build.{full_url, number, queue_id, phase, status, url, timestamp, duration,
  parameters, scm}``.

Builds run for real: each job's shell steps run as ``bash -xe`` subprocesses in a
scratch workspace, printing Jenkins' own step marker (``[app] $ /bin/bash -xe
/tmp/jenkins….sh``), so logs and failures are genuine. See ``README.md``.
"""
