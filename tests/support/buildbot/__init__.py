"""A real Buildbot master and worker on loopback (``server.py``), configured by ``master.cfg``."""

from tests.support.buildbot.server import MASTER_CFG, WORKER_NAME, BuildbotServer, run_buildbot

__all__ = ["MASTER_CFG", "WORKER_NAME", "BuildbotServer", "run_buildbot"]
