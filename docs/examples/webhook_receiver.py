"""A receiver of coursemesh webhooks: verifies each delivery's signature with the
``standardwebhooks`` library and does each webhook id's work once.

    pip install standardwebhooks
    python webhook_receiver.py --secret whsec_... --port 9000

Register ``http(s)://<this host>:9000/`` as a webhook endpoint of your organization (the
``secret`` in that answer is the one to pass here). Every verified delivery is printed as one
JSON line, a repeated webhook id marked ``duplicate``. Answer 2xx quickly and do the work
later: coursemesh waits 15 s at most, then retries.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

#: Delivery is at least once: a retried or replayed delivery carries the same ``webhook-id``.
#: A real receiver keeps these ids in its database, with the effect of the event.
seen_ids: set[str] = set()
seen_lock = threading.Lock()


def make_handler(webhook: Webhook) -> type[BaseHTTPRequestHandler]:
    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                # Checks the HMAC over "<webhook-id>.<webhook-timestamp>.<body>" against every
                # signature in the header (two during a secret rotation) and refuses a
                # timestamp more than 5 minutes away, so an old capture cannot be replayed.
                event = webhook.verify(body, dict(self.headers))
            except WebhookVerificationError:
                self.send_response(400)
                self.end_headers()
                return
            webhook_id = self.headers["webhook-id"]
            with seen_lock:
                first_time = webhook_id not in seen_ids
                seen_ids.add(webhook_id)
            # A repeat is acknowledged like the first delivery, and its work is not done twice.
            line = {"webhookId": webhook_id, "duplicate": not first_time, **event}
            print(json.dumps(line), flush=True)
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass  # the printed events are this program's output

    return Receiver


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secret", required=True, help="the endpoint's whsec_… secret")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(Webhook(args.secret)))
    print(json.dumps({"listening": server.server_address[1]}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
