#!/usr/bin/env python3
"""The console in headless Chromium, over WebDriver, with Python's standard library only.

Started by run.sh, which runs the server, the simulator and chromedriver. This script runs the
callback receiver itself (so it can make it fail), drives the browser through the user's path,
and saves a screenshot of each main page. Every wait is bounded; a failure saves the page.
"""

import argparse
import base64
import http.server
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ELEMENT = "element-6066-11e4-a52f-4a5b6e1f8af8"


class Receiver(http.server.BaseHTTPRequestHandler):
    """The callback URL: records every POST; answers 200, or 500 while `failing` is set."""

    received = []
    failing = False

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Receiver.received.append(body)
        answer = b"receiver is down for maintenance" if Receiver.failing else b"ok"
        self.send_response(500 if Receiver.failing else 200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


class Browser:
    def __init__(self, driver, chromium):
        self.driver = driver
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                     "--disable-background-networking", "--disable-dev-shm-usage",
                     "--window-size=1280,1400"]}}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.driver + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read())["value"]
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"WebDriver {method} {path}: {e.read().decode()[:500]}") from None

    def s(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def go(self, url):
        self.s("POST", "/url", {"url": url})

    def find_all(self, css):
        found = self.s("POST", "/elements", {"using": "css selector", "value": css})
        return [e.get(ELEMENT) or e.get("ELEMENT") or next(iter(e.values())) for e in found]

    def find(self, css):
        found = self.find_all(css)
        if not found:
            raise AssertionError(f"no element matches {css!r}")
        return found[0]

    def text(self, css):
        return self.s("GET", f"/element/{self.find(css)}/text")

    def type(self, css, text, clear=True):
        el = self.find(css)
        if clear:
            self.s("POST", f"/element/{el}/clear", {})
        self.s("POST", f"/element/{el}/value", {"text": text})

    def click(self, css):
        el = self.find(css)
        self.s("POST", "/execute/sync", {"script": "arguments[0].scrollIntoView({block:'center'});",
                                         "args": [{ELEMENT: el, "ELEMENT": el}]})
        self.s("POST", f"/element/{el}/click", {})

    def script(self, js, *args):
        return self.s("POST", "/execute/sync", {"script": js, "args": list(args)})

    def wait(self, what, check, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                result = check()
                if result:
                    return result
            except (AssertionError, RuntimeError):
                pass
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}")

    def title(self):
        return self.s("GET", "/title")

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.s("GET", "/screenshot")))

    def cookies(self):
        return self.s("GET", "/cookie")

    def quit(self):
        try:
            self.s("DELETE", "")
        except Exception:
            pass


def sim_patch_contact(sim, title):
    auth = "Basic " + base64.b64encode(b"demo+demo-public:demo-private").decode()
    headers = {"Authorization": auth, "Content-Type": "application/json", "clientId": "console-test"}
    req = urllib.request.Request(f"{sim}/company/contacts?pageSize=1&orderBy=id%20asc", headers=headers)
    with urllib.request.urlopen(req, timeout=10) as r:
        contact = json.loads(r.read())[0]["id"]
    body = json.dumps([{"op": "replace", "path": "title", "value": title}]).encode()
    req = urllib.request.Request(f"{sim}/company/contacts/{contact}", data=body, method="PATCH", headers=headers)
    urllib.request.urlopen(req, timeout=10).read()
    return str(contact)


def fill_instance_form(b, args, receiver_url, name):
    b.type("#f-name", name)
    b.type("#f-baseUrl", args.sim)
    b.type("#f-company", "demo")
    b.type("#f-public-key", "demo-public")
    b.type("#f-private-key", "demo-private")
    b.type("#f-event-notification-callback-url", receiver_url)
    b.type("#f-event-poller-refresh_interval", "0.05")


def main():
    p = argparse.ArgumentParser()
    for a in ("--base", "--driver", "--sim", "--chromium", "--shots"):
        p.add_argument(a, required=True)
    args = p.parse_args()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver_url = f"http://127.0.0.1:{server.server_address[1]}/webhook"

    b = Browser(args.driver, args.chromium)
    shot = lambda name: b.screenshot(os.path.join(args.shots, f"{name}.png"))
    try:
        # Signed out, the console sends you to the sign-in page.
        b.go(args.base + "/")
        b.wait("the sign-in page", lambda: "Sign in" in b.title())
        shot("01-sign-in")
        b.type("#email", "first@example.test")
        b.type("#password", "first-org-password")
        b.click("form[action='/signin'] button[type=submit]")
        b.wait("the instances page", lambda: b.title().startswith("Instances"))

        # An invalid callback URL is refused next to its field, with the API's message.
        b.go(args.base + "/instances/new")
        fill_instance_form(b, args, "ftp://not-http.example/hook", "Refused")
        b.click("#save")
        error = b.wait("the callback URL error", lambda: b.text("#f-event-notification-callback-url-error"))
        assert "event.notification.callback.url" in error, error
        shot("02-form-error")

        # Create an instance through the form with two resources: contacts (ticked by default)
        # and organizations; test the connection first.
        b.go(args.base + "/instances/new")
        fill_instance_form(b, args, receiver_url, "Console test")
        b.click("#test-connection")
        b.wait("the connection answer", lambda: "Connected" in b.text("#connection-result"))
        # The typed secrets are not put back into the page: type them again.
        b.type("#f-public-key", "demo-public")
        b.type("#f-private-key", "demo-private")
        b.click("#resource-organizations")
        raw = b.script("return document.getElementById('f-event-poller-configuration').value;")
        assert '"organizations"' in raw and '"contacts"' in raw, raw
        shot("03-form")
        b.click("#save")
        b.wait("the instance page", lambda: b.title().startswith("Console test"))
        instance_url = b.script("return location.pathname;")

        # Health turns ok for both resources on the list, refreshed live (no reload).
        b.go(args.base + "/")
        b.wait("both pollers ok", lambda: len(b.find_all("li[data-status=ok]")) == 2, timeout=60)
        shot("04-instances")
        # At a phone's width the tables become one column per row.
        b.s("POST", "/window/rect", {"width": 390, "height": 1200})
        b.go(args.base + "/")
        b.wait("the list at phone width", lambda: len(b.find_all("li[data-status=ok]")) == 2)
        shot("04-instances-phone")
        b.s("POST", "/window/rect", {"width": 1280, "height": 1400})

        # A change in "ConnectWise" becomes an event, delivered to the receiver.
        contact = sim_patch_contact(args.sim, "Chief Console Officer")
        b.go(args.base + instance_url + "/events")
        def delivered():
            b.go(args.base + instance_url + f"/events?object={contact}&resource=contacts")
            return "NOTIFIED" in b.text("table.events")
        b.wait("the event, delivered", delivered, timeout=60)
        assert Receiver.received, "the receiver got nothing"
        shot("05-events")
        b.click("table.events tbody tr a")
        b.wait("the event page", lambda: b.title().startswith("Event"))
        assert "200" in b.text("table.attempts"), b.text("table.attempts")
        assert "Chief Console Officer" in b.text("pre.payload")
        shot("06-event")

        # The receiver fails: the next change shows failed attempts with the status.
        Receiver.failing = True
        contact = sim_patch_contact(args.sim, "Chief Failure Officer")
        def failing():
            b.go(args.base + instance_url + f"/events?object={contact}")
            rows = b.find_all("table.events tbody tr a")
            if not rows:
                return False
            b.s("POST", f"/element/{rows[0]}/click", {})
            attempts = b.text("table.attempts")
            # The status and the receiver's own words (the response excerpt).
            return "500" in attempts and "down for maintenance" in attempts
        b.wait("a failed attempt", failing, timeout=60)
        shot("07-failed-event")
        event_url = b.script("return location.pathname;")

        # The receiver is back: "Resend" delivers it. The form's answer is a redirect to this
        # same page, so a mark on the window tells the new page from the old one; navigating
        # away before it arrives could cancel the form's POST (seen once in CI, 2026-12-06).
        Receiver.failing = False
        b.script("window.beforeResend = true;")
        b.click("#resend")
        b.wait("the resend's answer", lambda: b.script(
            "return window.beforeResend === undefined && document.readyState === 'complete';"))
        def notified():
            b.go(args.base + event_url)
            return "NOTIFIED" in b.text("#event-status")
        b.wait("the resent event, delivered", notified, timeout=60)
        shot("07b-resent-event")

        # The instance page: pollers, deliveries, charts.
        b.go(args.base + instance_url)
        b.wait("the charts", lambda: len(b.find_all("figure.chart svg")) == 2)
        shot("08-instance")

        # Another organization's user gets 404 on this instance's page.
        b.click("header form[action='/signout'] button")
        b.wait("the sign-in page", lambda: "Sign in" in b.title())
        b.type("#email", "other@example.test")
        b.type("#password", "other-org-password")
        b.click("form[action='/signin'] button[type=submit]")
        b.wait("the other organization's instances", lambda: b.title().startswith("Instances"))
        assert "Console test" not in b.text("main")
        b.go(args.base + instance_url)
        b.wait("the 404 page", lambda: b.title().startswith("Not found"))
        shot("09-other-org-404")
        cookie = "; ".join(f"{c['name']}={c['value']}" for c in b.cookies())
        req = urllib.request.Request(args.base + instance_url, headers={"Cookie": cookie})
        try:
            urllib.request.urlopen(req, timeout=10)
            raise AssertionError("another organization's user could open the instance page")
        except urllib.error.HTTPError as e:
            assert e.code == 404, e.code

        # The session ends elsewhere (signed out from another tab) while the instances page
        # refreshes itself: the page goes to the sign-in, rather than showing the sign-in
        # page inside its table.
        b.go(args.base + "/")
        b.wait("the instances page", lambda: b.title().startswith("Instances"))
        csrf = b.script(
            "return document.querySelector(\"header form[action='/signout'] input[name=csrf]\").value;"
        )
        signout = urllib.request.Request(
            args.base + "/signout",
            data=urllib.parse.urlencode({"csrf": csrf}).encode(),
            headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None
        try:
            urllib.request.build_opener(NoRedirect).open(signout, timeout=10)
        except urllib.error.HTTPError as e:
            assert e.code in (302, 303), e.code
        b.wait("the sign-in page after the session ended", lambda: "Sign in" in b.title(), timeout=20)
        shot("10-session-ended")
        print("console test: every step passed")
    except Exception:
        try:
            shot("failure")
            with open(os.path.join(args.shots, "failure.html"), "w") as f:
                f.write(b.script("return document.documentElement.outerHTML;"))
        except Exception:
            pass
        raise
    finally:
        b.quit()
        server.shutdown()


if __name__ == "__main__":
    main()
