"""A subscriber in a process of its own: verifies Standard Webhooks signatures and records.

``python -m tests.notifications.receiver <secret file> <record file> <mode>`` listens
on a free loopback port and prints it. For each POST it reads the secret from the
secret file (the test writes it once the subscription exists), verifies the message
with the ``standardwebhooks`` verifier and appends one JSON line to the record file:
``{"id", "verified", "type", "tenant_seen"}``. ``mode`` ``ok`` answers 204, ``fail``
answers 500 after recording.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main() -> None:
    secret_file, record_file, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {key.lower(): value for key, value in self.headers.items()}
            entry: dict[str, object] = {"id": headers.get("webhook-id")}
            try:
                secret = secret_file.read_text().strip()
                message = Webhook(secret).verify(body, headers)
                entry.update(verified=True, type=message["type"], data=message["data"])
            except (OSError, WebhookVerificationError, ValueError) as exc:
                entry.update(verified=False, error=type(exc).__name__)
            with record_file.open("a") as out:
                out.write(json.dumps(entry) + "\n")
            self.send_response(204 if mode == "ok" else 500)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
