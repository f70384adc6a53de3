"""Fidelity check: pyconnectwise (PyPI), used unmodified, against the simulator.

The only adaptation is the URL scheme: pyconnectwise hard-codes https:// and
the simulator serves plain HTTP, so a subclass overrides the two methods that
build URLs. Every record goes through pyconnectwise's own pydantic models.

Environment: CW_HOST (host:port), CW_COMPANY, CW_PUBLIC, CW_PRIVATE, CW_CLIENT_ID.
"""

import os
import sys
import datetime
import time

from pyconnectwise import ConnectWiseManageAPIClient
from pyconnectwise.exceptions import (
    AuthenticationFailedException,
    MalformedRequestException,
    NotFoundException,
    ObjectExistsError,
)

HOST = os.environ.get("CW_HOST", "127.0.0.1:8081")
COMPANY = os.environ.get("CW_COMPANY", "demo")
PUBLIC = os.environ.get("CW_PUBLIC", "demo-public")
PRIVATE = os.environ.get("CW_PRIVATE", "demo-private")
CLIENT_ID = os.environ.get("CW_CLIENT_ID", "00000000-0000-0000-0000-000000000000")
# Unique per run so the script can run twice against one simulator.
IDENT = f"PyFidelity{int(time.time())}"

failures = []
checks = 0


def check(name, condition, detail=""):
    global checks
    checks += 1
    if not condition:
        failures.append(f"{name}: {detail}")
        print(f"FAIL {name} {detail}")


class SimClient(ConnectWiseManageAPIClient):
    """pyconnectwise with http:// instead of https:// (nothing else changed)."""

    def _get_url(self):
        return f"http://{self.manage_url}/{self.codebase.strip('/')}/apis/3.0"

    def _try_get_codebase_from_api(self, manage_url, company_name, headers):
        url = f"http://{manage_url}/login/companyinfo/{company_name}"
        return self._make_request("GET", url, headers=headers).json().get("Codebase")


def crud(name, endpoint, create_body, patch_ops, check_patched, soft_delete=False):
    """List with paging and conditions, get, create, patch and delete through one endpoint."""
    total = endpoint.count.get().count
    check(f"{name}: count", total > 0, total)
    seen = [r.id for r in endpoint.paginated(1, 7).all()]
    check(f"{name}: paging visits every record once", len(seen) == total and len(set(seen)) == total, (len(seen), total))
    check(f"{name}: default order is id ascending", seen == sorted(seen))
    some = endpoint.get(params={"pageSize": 5})
    check(f"{name}: pageSize", len(some) == 5, len(some))
    low, high = seen[3], seen[10]
    ranged = endpoint.get(params={"conditions": f"id >= {low} and id < {high}", "pageSize": 1000})
    check(f"{name}: conditions", [r.id for r in ranged] == [i for i in seen if low <= i < high])
    one = endpoint.id(seen[0]).get()
    check(f"{name}: get by id", one.id == seen[0])

    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) - datetime.timedelta(seconds=1)
    created = endpoint.post(data=create_body)
    check(f"{name}: create", created.id is not None and created.id not in seen, created.id)
    patched = endpoint.id(created.id).patch(data=patch_ops)
    check(f"{name}: patch", check_patched(patched), patched)
    stamp = before.strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = endpoint.get(params={"conditions": f"lastUpdated > [{stamp}]", "pageSize": 1000})
    check(f"{name}: lastUpdated condition finds the write", created.id in [r.id for r in recent], stamp)
    check(f"{name}: count grew", endpoint.count.get().count == total + 1)

    endpoint.id(created.id).delete()
    if soft_delete:
        gone = endpoint.id(created.id).get()
        check(f"{name}: soft delete", gone.deleted_flag is True and gone.date_deleted is not None, gone)
    else:
        try:
            endpoint.id(created.id).get()
            check(f"{name}: delete", False, "record still readable")
        except NotFoundException:
            check(f"{name}: delete then 404", True)
    return seen


def main():
    client = SimClient(COMPANY, HOST, CLIENT_ID, PUBLIC, PRIVATE)
    check("codebase from companyinfo", client.codebase == "v4_6_release/", client.codebase)
    info = client.system.info.get()
    check("system/info", info.version is not None and info.is_cloud is False, info)

    companies = crud(
        "companies",
        client.company.companies,
        {"identifier": IDENT, "name": "Py Fidelity Inc", "types": [{"id": 1}], "site": {"name": "Main"}},
        [{"op": "replace", "path": "name", "value": "Py Fidelity Renamed"}],
        lambda c: c.name == "Py Fidelity Renamed" and c.identifier == IDENT,
        soft_delete=True,
    )
    crud(
        "contacts",
        client.company.contacts,
        {"firstName": "Grace", "lastName": "Hopper", "company": {"id": companies[0]},
         "communicationItems": [{"type": {"id": 1}, "value": "grace@example.com", "communicationType": "Email"}]},
        [{"op": "replace", "path": "title", "value": "Rear Admiral"}],
        lambda c: c.title == "Rear Admiral" and c.company.id == companies[0],
    )
    tickets = crud(
        "tickets",
        client.service.tickets,
        {"summary": "pyconnectwise fidelity", "company": {"id": companies[1]}, "board": {"id": 1}},
        [{"op": "replace", "path": "closedFlag", "value": True}],
        lambda t: t.closed_flag is True and t.closed_date is not None,
    )

    notes = client.service.tickets.id(tickets[0]).notes
    note = notes.post(data={"text": "from pyconnectwise", "detailDescriptionFlag": True})
    check("ticket note create", note.ticket_id == tickets[0] and note.text == "from pyconnectwise", note)
    check("ticket notes list", note.id in [n.id for n in notes.get(params={"pageSize": 1000})])

    # Every seeded record of every resource parses into pyconnectwise's typed models.
    for name, endpoint in [
        ("companies", client.company.companies),
        ("contacts", client.company.contacts),
        ("tickets", client.service.tickets),
        ("opportunities", client.sales.opportunities),
        ("activities", client.sales.activities),
        ("time entries", client.time.entries),
        ("projects", client.project.projects),
        ("members", client.system.members),
    ]:
        records = list(endpoint.paginated(1, 1000).all())
        check(f"{name}: all records parse", len(records) == endpoint.count.get().count, len(records))

    try:
        client.company.contacts.get(params={"conditions": "inactiveFlag = 1"})
        check("malformed conditions", False, "no error")
    except MalformedRequestException as e:
        body = e.response.json()
        check("malformed conditions -> 400", "Expected a boolean value" in body.get("message", ""), body)
    try:
        client.company.companies.post(data={"identifier": IDENT, "name": "Again"})
        check("duplicate company", False, "no error")
    except ObjectExistsError:
        check("duplicate company -> ObjectExistsError", True)
    try:
        # (pyconnectwise ignores a codebase passed in, so it is discovered again.)
        SimClient(COMPANY, HOST, CLIENT_ID, PUBLIC, "wrong").company.contacts.get()
        check("wrong key", False, "no error")
    except AuthenticationFailedException:
        check("wrong key -> 401", True)

    print(f"pyconnectwise: {checks - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
