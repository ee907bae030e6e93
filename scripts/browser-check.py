"""Headless-browser check of the zoo-tickets email, against a running local server.

Usage: .venv/bin/python scripts/browser-check.py BASE_URL JWT

Creates a zoo payment session, pays it on the sandbox page in headless Chromium (requests to any
other host, such as the return URL, are aborted), finds the `zoo_tickets` email in /dev/outbox,
opens /dev/outbox/{id} and checks that its three QR images load and that the visit date and time
show; saves a screenshot to target/screenshots/email-zoo-tickets.png.
"""

import datetime
import json
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError, sync_playwright

SCREENSHOT = Path(__file__).resolve().parent.parent / "target/screenshots/email-zoo-tickets.png"
DOCS_SCREENSHOT = SCREENSHOT.with_name("api-docs.png")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def fail(message):
    sys.exit(f"browser-check: FAIL: {message}")


def api(base, path, token=None, body=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        fail(f"{req.get_method()} {path} answered {e.code}: {e.read().decode(errors='replace')}")
    except urllib.error.URLError as e:
        fail(f"{req.get_method()} {base}{path}: {e.reason}")


def create_session(base, token, visit):
    item = lambda kind, n, price, at: {"ticket_type": kind, "quantity": n, "visit_date": visit,
                                       "unit_price": {"value": price, "currency": "RUB"}, "visit_time": at}
    body = {
        "session_id": "s-browser",
        "order": {"order_id": "ZT-B", "total_amount": {"value": "2500.00", "currency": "RUB"},
                  "items": [item("adult", 2, "1000.00", "10:00"), item("child", 1, "500.00", "10:30")]},
        "customer": {"email": "visitor@example.com"},
        "confirmation": {"type": "redirect", "return_url": "https://zoo.example/ok",
                         "cancel_url": "https://zoo.example/no"},
    }
    status, answer = api(base, "/v1/payments/sessions", token, body)
    if status != 201:
        fail(f"POST /v1/payments/sessions answered {status}: {answer}")
    return answer["data"]


def zoo_email(base, payment_id, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        _, outbox = api(base, "/dev/outbox")
        found = [m for m in outbox["messages"] if m["template"] == "zoo_tickets" and payment_id in m["text"]]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            fail(f"no zoo_tickets email for {payment_id} in /dev/outbox after {timeout:.0f} s: {outbox}")
        time.sleep(0.2)


def main(base, token):
    base = base.rstrip("/")
    host = urllib.parse.urlsplit(base).netloc
    visit = datetime.date.today() + datetime.timedelta(days=20)
    session = create_session(base, token, visit.isoformat())

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context()
        # Only the local server: the sandbox redirects to the return URL on an unreachable host.
        context.route("**/*", lambda route: route.continue_()
                      if urllib.parse.urlsplit(route.request.url).netloc == host else route.abort())
        page = context.new_page()

        page.goto(session["confirmation_url"])
        with page.expect_response(lambda r: r.url.endswith("/sandbox/callback")) as paid:
            page.click("button[value=succeeded]")
        if paid.value.status != 303:
            fail(f"sandbox callback answered {paid.value.status}, not 303")

        email = zoo_email(base, session["payment_id"])
        if len(email["attachments"]) != 3:
            fail(f"email {email['id']} has {len(email['attachments'])} attachments, not 3")
        # A page of its own: the paying page is still being sent to the return URL (aborted
        # above, so it lands on the browser's error page), which would interrupt a navigation.
        page = context.new_page()
        page.goto(f"{base}/dev/outbox/{urllib.parse.quote(email['id'])}")
        page.wait_for_load_state("load")

        images = page.eval_on_selector_all("img", """imgs => imgs.map(i => (
            {src: i.getAttribute('src').slice(0, 40), complete: i.complete, width: i.naturalWidth}))""")
        if len(images) != 3:
            fail(f"/dev/outbox/{email['id']} has {len(images)} <img>, not 3")
        for n, img in enumerate(images, 1):
            if not img["src"].startswith("data:image/png;base64,"):
                fail(f"image {n} src is not a PNG data URL: {img['src']!r}")
            if not img["complete"] or img["width"] <= 0:
                fail(f"image {n} did not load in the browser: {img}")

        text = page.inner_text("body")
        for wanted in (visit.strftime("%d.%m.%Y"), "10:00"):
            if wanted not in text:
                fail(f"page text lacks {wanted!r}:\n{text}")

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        operations = check_docs(context.new_page(), base)
        browser.close()

    print(f"browser-check: OK: email {email['id']}, 3 QR images loaded, "
          f"visit {visit:%d.%m.%Y} 10:00; screenshot {SCREENSHOT}")
    print(f"browser-check: OK: /docs renders the API document ({operations} operations); screenshot {DOCS_SCREENSHOT}")


def check_docs(page, base):
    """/docs: the vendored Swagger UI renders /openapi.json (title and every operation)."""
    page.goto(f"{base}/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=15000)
    title = page.inner_text(".swagger-ui .info .title")
    if "Tickets" not in title:
        fail(f"/docs title is {title!r}")
    _, document = api(base, "/openapi.json")
    expected = sum(1 for item in document["paths"].values() for m in item if m in ("get", "post", "put", "patch", "delete"))
    page.wait_for_function(f"document.querySelectorAll('.opblock').length >= {expected}", timeout=15000)
    shown = page.eval_on_selector_all(".opblock", "els => els.length")
    if shown != expected:
        fail(f"/docs shows {shown} operations, the document has {expected}")
    page.screenshot(path=str(DOCS_SCREENSHOT))
    return shown


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: browser-check.py BASE_URL JWT")
    try:
        main(sys.argv[1], sys.argv[2])
    except PlaywrightError as e:
        fail(f"browser: {e}")
