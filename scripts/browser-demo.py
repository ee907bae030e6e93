"""Headless-browser check of the demo front end served from a second origin.

Usage: .venv/bin/python scripts/browser-demo.py API_BASE DEMO_ORIGIN JWT

API_BASE is the local server (started with CORS_ORIGINS=DEMO_ORIGIN and TICKETS_SUCCESS_URL
pointing at DEMO_ORIGIN/order.html); DEMO_ORIGIN serves the repository's demo/ folder (a plain
static server). In headless Chromium a buyer opens the event list with ?api=API_BASE, picks the
demo concert, holds two seats on the drawn seat map, meets a second buyer who clicks one of them
on a stale map and is told it is taken, fills the buyer's form (a bad phone number is explained
next to its field), checks out, pays on the sandbox
page and lands on the order page where the two QR images load; a third browser context then sees
both seats sold on the seat map. Last, the zoo page (signed in with JWT) buys two timed tickets
through /v1/payments and shows their two QR images back from the sandbox page. Screenshots:
target/screenshots/demo-*.png.
"""

import sys
import urllib.parse
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "target/screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EVENT = "demo-concert"
SEATS = ["parterre-3-10", "parterre-3-11"]


def fail(message):
    sys.exit(f"browser-demo: FAIL: {message}")


def shot(page, name, full_page=True):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"demo-{name}.png"), full_page=full_page)


def seat(page, seat_id):
    return page.locator(f'#seatmap .seat[data-seat-id="{seat_id}"]')


def open_event(context, demo, api):
    """The event page of the demo concert, its seat map drawn."""
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{demo}/event.html?event={EVENT}&api={urllib.parse.quote(api, safe='')}")
    page.wait_for_selector(f'#seatmap .seat[data-seat-id="{SEATS[0]}"]', timeout=15000)
    if errors:
        fail(f"script errors on the event page: {errors}")
    return page


def event_list(context, demo, api):
    page = context.new_page()
    page.goto(f"{demo}/index.html?api={urllib.parse.quote(api, safe='')}")
    card = page.locator(f'.event[data-event-id="{EVENT}"]')
    card.wait_for(timeout=15000)
    shot(page, "1-events")
    card.locator("a.button").click()
    page.wait_for_selector(f'#seatmap .seat[data-seat-id="{SEATS[0]}"]', timeout=15000)
    if not page.url.startswith(demo):
        fail(f"the event page left the demo's origin: {page.url}")
    return page


def hold_two(page):
    for seat_id in SEATS:
        if seat(page, seat_id).get_attribute("data-state") != "free":
            fail(f"{seat_id} is not free at the start")
        seat(page, seat_id).click()
        page.wait_for_selector(f'#seatmap .seat.mine[data-seat-id="{seat_id}"]', timeout=10000)
        if seat(page, seat_id).get_attribute("data-state") != "held":
            fail(f"{seat_id} is not drawn held after the click")
    rows = page.locator("#cart tr").count()
    if rows != 2:
        fail(f"the cart shows {rows} seats, not 2")
    timer = page.inner_text("#timer")
    if "Места за вами ещё" not in timer:
        fail(f"no hold timer: {timer!r}")
    shot(page, "2-seats-held")


def rival_is_told(rival):
    """The second buyer's map still shows the seat free; the click meets the server's 409."""
    stale = seat(rival, SEATS[0])
    if stale.get_attribute("data-state") != "free":
        fail("the rival's map was expected to be stale")
    stale.click()
    rival.wait_for_selector("#message .notice.error", timeout=10000)
    text = rival.inner_text("#message")
    if "уже занял другой покупатель" not in text:
        fail(f"the rival was told {text!r}")
    rival.wait_for_function(
        f"document.querySelector('#seatmap .seat[data-seat-id=\"{SEATS[0]}\"]').dataset.state === 'held'")
    shot(rival, "3-seat-taken")


def buy(page, api):
    """The buyer's form, checkout, the sandbox page, back on the order page with two QR codes."""
    page.select_option("#order-type", "self_online")
    page.fill("#name", "Анна Иванова")
    page.fill("#email", "anna@example.com")
    page.fill("#phone", "12-34")
    page.click("#save-buyer")
    page.wait_for_selector("#phone.invalid + .field-error", timeout=10000)
    said = page.inner_text("#phone + .field-error")
    if "Телефон" not in said or "цифр" not in said:
        fail(f"a bad phone number was explained as {said!r}")
    page.fill("#phone", "+7 912 345-67-89")
    page.click("#save-buyer")
    page.wait_for_selector("#totals tr.total", timeout=10000)
    page.wait_for_function("!document.getElementById('checkout').disabled")
    shot(page, "4-checkout")
    page.click("#checkout")
    page.wait_for_url(f"{api}/api/v1/gateways/sandbox/pay/**", timeout=15000)
    shot(page, "5-payment")
    page.click("button[value=succeeded]")
    page.wait_for_selector(".ticket img.qr", timeout=20000)
    page.wait_for_function(
        "Array.from(document.querySelectorAll('.ticket img.qr')).every(i => i.complete && i.naturalWidth > 0)",
        timeout=15000)
    images = page.locator(".ticket img.qr").count()
    if images != 2:
        fail(f"the order page shows {images} QR images, not 2")
    status = page.inner_text("#status")
    if status != "оплачен":
        fail(f"the order's status reads {status!r}")
    shot(page, "6-order")
    return page.url


def sold_for_everyone(context, demo, api):
    page = open_event(context, demo, api)
    for seat_id in SEATS:
        state = seat(page, seat_id).get_attribute("data-state")
        if state != "sold":
            fail(f"a new visitor sees {seat_id} as {state!r}, not sold")
    shot(page, "7-sold")


def zoo(context, demo, api, jwt):
    """Two adult tickets for tomorrow 10:00 through /v1/payments, paid, their QR codes shown."""
    page = context.new_page()
    query = urllib.parse.urlencode({"api": api, "token": jwt})
    page.goto(f"{demo}/zoo.html?{query}")
    page.wait_for_selector("#q-adult", timeout=15000)
    page.fill("#q-adult", "2")
    page.fill("#zoo-email", "visitor@example.com")
    page.wait_for_function("document.getElementById('zoo-total').textContent.startsWith('2')")
    total = page.inner_text("#zoo-total")
    if total.replace("\u00a0", " ") != "2 000,00 ₽":
        fail(f"the zoo total reads {total!r}")
    page.click("#zoo button[type=submit]")
    page.wait_for_url(f"{api}/api/v1/gateways/sandbox/pay/**", timeout=15000)
    page.click("button[value=succeeded]")
    page.wait_for_selector("#zoo-tickets img.qr", timeout=20000)
    page.wait_for_function(
        "Array.from(document.querySelectorAll('#zoo-tickets img.qr')).length === 2 && "
        "Array.from(document.querySelectorAll('#zoo-tickets img.qr')).every(i => i.complete && i.naturalWidth > 0)",
        timeout=15000)
    status = page.inner_text("#zoo-status")
    if status != "оплачен":
        fail(f"the zoo payment's status reads {status!r}")
    shot(page, "8-zoo")


def main(api, demo, jwt):
    api, demo = api.rstrip("/"), demo.rstrip("/")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        buyer = browser.new_context(viewport={"width": 1280, "height": 900}, locale="ru-RU")
        rival = open_event(browser.new_context(viewport={"width": 1280, "height": 900}), demo, api)
        page = event_list(buyer, demo, api)
        hold_two(page)
        rival_is_told(rival)
        order_url = buy(page, api)
        if not order_url.startswith(f"{demo}/order.html"):
            fail(f"the payment did not come back to the demo's order page: {order_url}")
        sold_for_everyone(browser.new_context(viewport={"width": 1280, "height": 900}), demo, api)
        zoo(browser.new_context(viewport={"width": 1280, "height": 900}), demo, api, jwt)
        browser.close()
    print(f"browser-demo: OK: the demo on {demo} against {api}: two seats held, a rival told the seat is "
          f"taken, paid on the sandbox page, two QR images on {order_url}, both seats sold for a new "
          f"visitor; two zoo tickets paid with their QR images; screenshots {SHOTS}/demo-*.png")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: browser-demo.py API_BASE DEMO_ORIGIN JWT")
    try:
        main(sys.argv[1], sys.argv[2], sys.argv[3])
    except PlaywrightError as e:
        fail(f"browser error: {e}")
