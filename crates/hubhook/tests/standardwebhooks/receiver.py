"""A webhook receiver written the way the Standard Webhooks library documents it.

Every POST is verified with `standardwebhooks.Webhook(secret).verify(body, headers)` under
each secret listed (one per line) in the file given as the second argument; the result of
each verification is appended as one JSON line to the file given as the third argument.
Answers 204 when the current secret verifies, 400 otherwise.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

PORT = int(sys.argv[1])
SECRETS_FILE = sys.argv[2]
LOG_FILE = sys.argv[3]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            with open(SECRETS_FILE) as f:
                secrets = [line.strip() for line in f if line.strip()]
        except FileNotFoundError:
            secrets = []
        results = {}
        for secret in secrets:
            try:
                Webhook(secret).verify(body, headers)
                results[secret] = True
            except WebhookVerificationError as e:
                results[secret] = str(e)
        record = {
            "id": headers.get("webhook-id"),
            "signature": headers.get("webhook-signature"),
            "results": results,
            "events": [e.get("id") for e in json.loads(body)["message"]["events"]],
        }
        with open(LOG_FILE, "a") as f:
            f.write(json.dumps(record) + "\n")
        ok = bool(secrets) and results.get(secrets[-1]) is True
        self.send_response(204 if ok else 400)
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
