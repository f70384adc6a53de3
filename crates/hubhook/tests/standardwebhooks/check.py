"""Drives a running `hubhook serve`: creates an instance whose callback is receiver.py,
changes a contact in the simulator, and checks that the Standard Webhooks library verified
the delivery with the `webhookSecret` shown at creation; then rotates the secret and checks
that the next delivery verifies under both the new and the old secret (the overlap).

Environment: HUBHOOK_URL, SIM_URL, RECEIVER_URL, ORG (the output of `hubhook org create`),
SECRETS_FILE, LOG_FILE.
"""

import base64
import json
import os
import sys
import time
import urllib.request

HUBHOOK, SIM, RECEIVER = os.environ["HUBHOOK_URL"], os.environ["SIM_URL"], os.environ["RECEIVER_URL"]
SECRETS_FILE, LOG_FILE = os.environ["SECRETS_FILE"], os.environ["LOG_FILE"]
ORG = json.loads(os.environ["ORG"])
AUTH = f"User {ORG['userSecret']}, Organization {ORG['organizationSecret']}"
CW_AUTH = "Basic " + base64.b64encode(b"demo+demo-public:demo-private").decode()


def call(method, url, auth, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", auth)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
        return json.loads(text) if text else None


def api(method, path, body=None):
    return call(method, HUBHOOK + "/elements/api-v2" + path, AUTH, body)


def write_secrets(secrets):
    # The file's last line is the secret the receiver must accept.
    with open(SECRETS_FILE, "w") as f:
        f.write("\n".join(secrets) + "\n")


def records():
    try:
        with open(LOG_FILE) as f:
            return [json.loads(line) for line in f]
    except FileNotFoundError:
        return []


def change_and_wait(instance, name):
    """Creates a contact, polls, and returns the first verified record of its delivery."""
    before = len(records())
    company = call("GET", SIM + "/company/companies", CW_AUTH)[0]["id"]
    contact = call("POST", SIM + "/company/contacts", CW_AUTH,
                   {"firstName": name, "lastName": "Std", "company": {"id": company}})
    deadline = time.time() + 60
    while time.time() < deadline:
        api("POST", f"/instances/{instance}/poll")
        time.sleep(1)
        for record in records()[before:]:
            print("received", record["id"], record["results"])
            if all(r is True for r in record["results"].values()):
                return record
    sys.exit(f"no verified delivery for contact {contact['id']}: {records()[before:]}")


body = {
    "element": {"key": "connectwisecrmrest"},
    "configuration": {
        "baseUrl": SIM, "company": "demo", "public.key": "demo-public",
        "private.key": "demo-private", "event.notification.enabled": True,
        "event.notification.callback.url": RECEIVER,
        "event.poller.refresh_interval": "0.05",
        "event.poller.configuration": {"contacts": {
            "url": "/hubs/crm/contacts?where=lastUpdated>'${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}'",
            "idField": "id",
            "datesConfiguration": {
                "updatedDateField": "_info.lastUpdated",
                "updatedDateFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'",
                "updatedDateTimezone": "GMT",
                "createdDateField": "_info.lastUpdated",
                "createdDateFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'",
                "createdDateTimezone": "GMT"}}},
    },
    "name": "standardwebhooks check",
}
created = api("POST", "/instances", body)
first = created["webhookSecret"]
write_secrets([first])
print("instance", created["id"], "created")
change_and_wait(created["id"], "First")

second = api("POST", f"/instances/{created['id']}/webhook-secret")["webhookSecret"]
write_secrets([first, second])
record = change_and_wait(created["id"], "Second")
assert record["results"] == {first: True, second: True}, record
assert len(record["signature"].split(" ")) == 2, record
print("standardwebhooks: every delivery verified, both secrets during the overlap")
