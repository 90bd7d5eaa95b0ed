"""Run the CodeBuild stand-in: ``python -m tests.standins.codebuild --port N`` (0: any port).

moto's server app (every service it has, on one endpoint, as ``moto_server`` serves
it) with the build runner installed. It prints ``listening on http://127.0.0.1:PORT``
once bound, serves until SIGTERM, and exits by itself if its parent dies.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from tests.standins.codebuild.runner import install
from tests.support.standin import HOST, listening_socket


def _orphaned(server: object) -> None:
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.standins.codebuild", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 (default): any free port")
    port = parser.parse_args(argv).port
    install()
    sock = listening_socket(port)
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(HOST, sock.getsockname()[1], app, threaded=True, fd=sock.fileno())
    print(f"listening on http://{HOST}:{sock.getsockname()[1]}", flush=True)
    threading.Thread(target=_orphaned, args=(server,), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
