"""A CodeBuild stand-in: moto's server (CodeBuild, CloudWatch Logs, S3, IAM auth) in a
process of its own, with a build runner where moto has none.

moto answers every API call itself, following the services' models; it does not run
builds (its builds are SUCCEEDED the first time they are read, and cannot fail or be
stopped) nor implement ``RetryBuild``. ``runner.py`` fills that in, inside the same
process, after the CodeBuild user guide's "Build phase transitions" and the API
reference's ``StartBuild``, ``StopBuild``, ``RetryBuild`` and
``ListBuildsForProject`` pages: a build runs its project's buildspec commands for
real (``bash``), phase by phase, with ``environmentVariablesOverride`` in its
environment; its log goes to CloudWatch Logs (``/aws/codebuild/<project>``, stream
``<uuid>``) and its ``artifacts.files`` to S3, both through moto's own backends.
"""
