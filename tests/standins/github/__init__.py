"""A stand-in for GitHub's REST API (Actions part), for testing the GitHub Actions provider.

No GitHub (nor an Actions-compatible server) runs on these machines, so this test
double, in its own process on loopback, answers as GitHub documents its API:
requests and answers are checked against GitHub's published OpenAPI description
(``@octokit/openapi`` 23.0.2, see ``spec``), bodies are that description's examples
with the stand-in's state filled in, and each route names its page under
docs.github.com/en/rest. Modules: ``spec`` (the description and the checker),
``world`` (state, and runs that progress on the wall clock), ``api`` (the routes),
``app`` (checking, authentication, the signed-URL host, controls), ``fixture``
(start/stop the process). ``README.md`` says what it leaves out.
"""

from tests.standins.github.fixture import GitHubStandin, run_github

__all__ = ["GitHubStandin", "run_github"]
