"""A stdlib-only stand-in service (starts in milliseconds): 200 on every GET, optional crash.

``python light_standin.py --name NAME --port P [--crash-after S] [--tag T]``
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--crash-after", type=float)
    parser.add_argument("--tag")
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"service": args.name, "path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *a: object) -> None:
            pass

    if args.crash_after is not None:

        def crash() -> None:
            time.sleep(args.crash_after)
            print(f"light standin {args.name}: simulated crash", flush=True)
            os._exit(3)

        threading.Thread(target=crash, daemon=True).start()
    print(f"light standin {args.name} on {args.port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
