// The reference front end of the ticket API: plain JavaScript, no framework, no build step.
//
// The API's base URL comes from `?api=http://127.0.0.1:3000` (kept for the tab in
// sessionStorage, so links and the way back from the payment page keep it); without it the
// pages call their own origin (the local server's /demo/). Seat buyers are anonymous: the
// reservation token the API hands out is kept in localStorage per API. The zoo page calls
// /v1/payments with a user's JWT (`make token`), as a signed-in shop would.
"use strict";

const Demo = (() => {
  const params = new URLSearchParams(location.search);

  function apiBase() {
    const given = params.get("api");
    if (given) {
      try {
        const url = new URL(given);
        if (url.protocol === "http:" || url.protocol === "https:") {
          const base = url.origin + url.pathname.replace(/\/+$/, "");
          sessionStorage.setItem("demo-api", base);
          return base;
        }
      } catch (_) { /* not a URL: ignored */ }
    }
    return sessionStorage.getItem("demo-api") || "";
  }
  const API = apiBase();

  /** A link to another page of the demo, keeping the API's address. */
  function link(page, query = {}) {
    const q = new URLSearchParams(query);
    if (API) q.set("api", API);
    const s = q.toString();
    return s ? `${page}?${s}` : page;
  }

  /** Where this page of the demo is, for return URLs (absolute, this origin). */
  function pageUrl(page, query = {}) {
    return new URL(link(page, query), location.href).href;
  }

  const tokenKey = () => `demo-token:${API || location.origin}`;
  const token = () => localStorage.getItem(tokenKey());
  const setToken = (t) => localStorage.setItem(tokenKey(), t);

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  class ApiError extends Error {
    constructor(status, data, text) {
      super((data && data.message) || text || `HTTP ${status}`);
      this.status = status;
      this.data = data;
    }
    get code() { return this.data && this.data.error ? this.data.error.code : null; }
    get field() { return this.data && this.data.error ? this.data.error.field : null; }
    get fields() { return (this.data && this.data.errors) || []; }
  }

  /** Calls the API; answers the JSON body or throws an ApiError. */
  async function call(method, path, body, opts = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (opts.reservation && token()) headers["X-Reservation-Token"] = token();
    if (opts.jwt) headers.Authorization = `Bearer ${opts.jwt}`;
    if (opts.key) headers["Idempotency-Key"] = opts.key;
    let res;
    try {
      res = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (_) {
      throw new ApiError(0, null, "network");
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!res.ok) throw new ApiError(res.status, data, text);
    return data;
  }

  const FIELD_NAMES = {
    "customer.name": "Имя", "customer.email": "Электронная почта", "customer.phone": "Телефон",
    "customer.address": "Адрес доставки", order_type: "Способ получения", customer: "Данные покупателя",
    email: "Электронная почта", phone: "Телефон",
  };

  /** What a person should read for an error. */
  function humanError(err) {
    const msg = (err.data && err.data.message) || "";
    if (err.status === 0) return "Сервер не отвечает. Проверьте соединение и попробуйте ещё раз.";
    if (/time ran out|no longer held/.test(msg)) {
      return "Время брони истекло, и место освободилось. Выберите места заново — если они ещё свободны.";
    }
    if (err.status === 409 && /already taken/.test(msg)) {
      return "Это место уже занял другой покупатель. Выберите, пожалуйста, другое.";
    }
    if (err.status === 409 && /changed during checkout/.test(msg)) {
      return "Бронь изменилась во время оформления. Проверьте места и оформите заказ ещё раз.";
    }
    if (err.status === 409) return "Кто-то успел раньше: данные изменились. Обновите страницу и попробуйте снова.";
    if (err.status === 429) return "Слишком много одновременных броней. Подождите несколько минут и попробуйте снова.";
    if (/sold out/.test(msg)) return "На это время билеты закончились. Выберите другое время или день.";
    if (/at most \d+ seats/.test(msg)) return "В одном заказе может быть не больше 7 мест.";
    if (/sales are stopped|not on sale|stopped/.test(msg)) return "Продажа билетов на это мероприятие остановлена.";
    if (err.status === 401) return "Нужно войти: токен не подошёл или устарел.";
    if (err.status === 404) return "Не найдено: возможно, бронь истекла или заказ оформлен в другом браузере.";
    if (err.status === 400 || err.status === 422) {
      const list = err.fields.length ? err.fields : [{ field: err.field, message: msg }];
      const parts = list.map((f) => `${FIELD_NAMES[f.field] || f.field || "запрос"}: ${translate(f.message)}`);
      return `Проверьте данные. ${parts.join("; ")}`;
    }
    if (err.status >= 500) return "Сервис временно недоступен. Попробуйте через минуту.";
    return `Не получилось (${err.status}). ${msg}`;
  }

  function translate(message) {
    const known = [
      [/valid email/, "адрес почты выглядит неверно"],
      [/valid phone/, "номер телефона должен содержать от 10 до 15 цифр"],
      [/name of 1 to 200/, "укажите имя"],
      [/address is required/, "для доставки курьером нужен адрес"],
      [/choose an order type/, "выберите способ получения"],
      [/details are required/, "заполните данные покупателя"],
      [/holds no tickets/, "в брони нет мест"],
    ];
    for (const [re, ru] of known) if (re.test(message || "")) return ru;
    return message || "неверное значение";
  }

  function notice(el, kind, text) {
    el.innerHTML = "";
    if (!text) return;
    const div = document.createElement("div");
    div.className = `notice ${kind}`;
    div.setAttribute("role", kind === "error" ? "alert" : "status");
    div.textContent = text;
    el.appendChild(div);
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  /** Money as the API writes it (a number or string with two decimals), shown in roubles. */
  function rub(v) {
    const [int, frac = "00"] = String(v).split(".");
    return `${int.replace(/\B(?=(\d{3})+(?!\d))/g, "\u00a0")},${frac.padEnd(2, "0").slice(0, 2)}\u00a0₽`;
  }

  /** A money string ("1000.00") in kopecks, and back: totals without floating point. */
  const kopecks = (s) => { const [i, f = "0"] = String(s).split("."); return Number(i) * 100 + Number(f.padEnd(2, "0").slice(0, 2)); };
  const fromKopecks = (k) => `${Math.floor(k / 100)}.${String(k % 100).padStart(2, "0")}`;

  const MONTHS = ["января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября",
    "октября", "ноября", "декабря"];

  /** A start time as the venue's clock reads it (the offset the API gives), not the browser's. */
  function when(iso) {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(iso || "");
    if (!m) return iso || "";
    return `${Number(m[3])} ${MONTHS[Number(m[2]) - 1]} ${m[1]}, ${m[4]}:${m[5]}`;
  }

  const ORDER_STATUS = {
    reserved: "бронь", ordered: "ожидает оплаты", approved: "оплачен", cancelled: "отменён", refunded: "возвращён",
  };
  const ORDER_TYPES = {
    self_online: "Оплата картой, билеты на этой странице",
    email_online: "Оплата картой, билеты на почту",
    self_cash: "Оплата в кассе",
    courier_cash: "Доставка курьером, оплата наличными",
  };

  function header() {
    const top = el("header", { class: "top" },
      el("a", { class: "brand", href: link("index.html") }, "Билеты"),
      el("a", { href: link("index.html") }, "Мероприятия"),
      el("a", { href: link("zoo.html") }, "Зоопарк"));
    document.body.prepend(top);
  }

  return {
    API, link, pageUrl, token, setToken, newKey, call, humanError, notice, el, rub, kopecks, fromKopecks,
    when, ORDER_STATUS, ORDER_TYPES, header, params, ApiError,
  };
})();

// ---------------------------------------------------------------- the event list (index.html)

async function eventsPage() {
  Demo.header();
  document.getElementById("zoo-link").href = Demo.link("zoo.html");
  const list = document.getElementById("events");
  const msg = document.getElementById("message");
  try {
    const { events } = await Demo.call("GET", "/api/v1/events");
    if (!events.length) Demo.notice(msg, "info", "Сейчас нет мероприятий в продаже.");
    for (const e of events) {
      const prices = e.price_categories.map((c) => Number(Demo.kopecks(c.price)));
      const from = Demo.rub(Demo.fromKopecks(Math.min(...prices)));
      list.append(Demo.el("div", { class: "card event", "data-event-id": e.id },
        Demo.el("h2", {}, e.title),
        Demo.el("div", { class: "muted" }, `${Demo.when(e.starts_at)}${e.venue ? " · " + e.venue : ""}`),
        Demo.el("p", {}, e.description || ""),
        Demo.el("p", {}, `Билеты от ${from}`),
        Demo.el("a", { class: "button", href: Demo.link("event.html", { event: e.id }) }, "Выбрать места")));
    }
  } catch (err) {
    Demo.notice(msg, "error", Demo.humanError(err));
  }
}

// ------------------------------------------------------- seats, reservation, checkout (event.html)

const Seats = {
  eventId: Demo.params.get("event"),
  pr: null, // the reservation as the API answers it
  busy: false,
  timer: null,
};

async function eventPage() {
  Demo.header();
  const msg = document.getElementById("message");
  if (!Seats.eventId) return Demo.notice(msg, "error", "Не выбрано мероприятие.");
  try {
    const { events } = await Demo.call("GET", "/api/v1/events");
    const event = events.find((e) => e.id === Seats.eventId);
    if (!event) return Demo.notice(msg, "error", "Мероприятие не найдено или продажа на него закрыта.");
    document.getElementById("title").textContent = event.title;
    document.getElementById("when").textContent = `${Demo.when(event.starts_at)}${event.venue ? " · " + event.venue : ""}`;
    document.title = `${event.title} — выбор мест`;
    if (Demo.token()) await initReservation();
    await refreshMap();
  } catch (err) {
    Demo.notice(msg, "error", Demo.humanError(err));
  }
  document.getElementById("seatmap").addEventListener("click", onSeatClick);
  document.getElementById("seatmap").addEventListener("keydown", onSeatKey);
  document.getElementById("order-type").addEventListener("change", showAddress);
  document.getElementById("buyer").addEventListener("submit", onBuyer);
  document.getElementById("checkout").addEventListener("click", onCheckout);
  Seats.timer = setInterval(tick, 1000);
}

/** Starts (or resumes) this buyer's reservation for the event. */
async function initReservation() {
  const answer = await Demo.call("POST", "/api/v1/reservations", { event_id: Seats.eventId }, { reservation: true });
  if (answer.token) Demo.setToken(answer.token);
  Seats.pr = answer.reservation;
  prefill(Seats.pr);
  renderReservation();
}

/** A resumed reservation's order type and buyer, back in the form. */
function prefill(pr) {
  const form = document.getElementById("buyer");
  if (pr.order_type) form.elements.order_type.value = pr.order_type;
  for (const name of ["name", "email", "phone", "address"]) {
    if (pr.customer && pr.customer[name]) form.elements[name].value = pr.customer[name];
  }
  showAddress();
}

/** Draws the seat map: the API's SVG inlined, the buyer's own seats marked. */
async function refreshMap() {
  const res = await fetch(`${Demo.API}/api/v1/events/${encodeURIComponent(Seats.eventId)}/seatmap.svg`, { cache: "no-store" });
  if (!res.ok) throw new Demo.ApiError(res.status, null, "seat map");
  const doc = new DOMParser().parseFromString(await res.text(), "image/svg+xml");
  const svg = doc.documentElement;
  if (svg.nodeName !== "svg") throw new Demo.ApiError(502, null, "seat map");
  const box = document.getElementById("seatmap");
  box.replaceChildren(document.importNode(svg, true));
  const mine = new Set((Seats.pr ? Seats.pr.tickets : []).map((t) => t.seat_id));
  for (const g of box.querySelectorAll(".seat")) {
    if (mine.has(g.dataset.seatId)) g.classList.add("mine");
    // Seats can be chosen from the keyboard too (Tab, then Enter or Space).
    g.setAttribute("tabindex", "0");
    g.setAttribute("role", "button");
  }
}

function onSeatKey(ev) {
  if ((ev.key === "Enter" || ev.key === " ") && ev.target.closest(".seat")) {
    ev.preventDefault();
    onSeatClick(ev);
  }
}

async function onSeatClick(ev) {
  const g = ev.target.closest(".seat");
  if (!g || Seats.busy) return;
  const msg = document.getElementById("message");
  const id = g.dataset.seatId;
  if (!g.classList.contains("mine") && g.dataset.state !== "free") {
    const what = g.dataset.state === "sold" ? "Это место уже продано." : "Это место сейчас в чужой брони.";
    return Demo.notice(msg, "info", `${what} Выберите свободное место.`);
  }
  Seats.busy = true;
  g.classList.add("busy");
  try {
    if (g.classList.contains("mine")) await release(id);
    else await hold(id);
    Demo.notice(msg, "", "");
  } catch (err) {
    Demo.notice(msg, "error", Demo.humanError(err));
  } finally {
    Seats.busy = false;
    await refreshMap().catch(() => {});
  }
}

async function hold(seatId) {
  if (!Seats.pr) await initReservation();
  const path = () => `/api/v1/reservations/${Seats.pr.id}/tickets`;
  try {
    Seats.pr = (await Demo.call("POST", path(), { seat_id: seatId }, { reservation: true })).reservation;
  } catch (err) {
    if (err.status !== 404) throw err;
    // The reservation ended (expired or replaced): a new one, and the seat again.
    await initReservation();
    Seats.pr = (await Demo.call("POST", path(), { seat_id: seatId }, { reservation: true })).reservation;
  }
  renderReservation();
}

async function release(seatId) {
  const path = `/api/v1/reservations/${Seats.pr.id}/tickets/${encodeURIComponent(seatId)}`;
  Seats.pr = (await Demo.call("DELETE", path, undefined, { reservation: true })).reservation;
  renderReservation();
}

function renderReservation() {
  const pr = Seats.pr;
  const list = document.getElementById("cart");
  list.replaceChildren();
  const tickets = pr ? pr.tickets : [];
  document.getElementById("cart-empty").hidden = tickets.length > 0;
  document.getElementById("order-form").hidden = tickets.length === 0;
  for (const t of tickets) {
    const remove = Demo.el("button", { class: "secondary", type: "button", title: "Убрать место",
      onclick: () => release(t.seat_id).then(refreshMap).catch((e) => Demo.notice(document.getElementById("message"), "error", Demo.humanError(e))) }, "✕");
    list.append(Demo.el("tr", { "data-seat-id": t.seat_id },
      Demo.el("td", {}, `${t.sector_name}, ряд ${t.row}, место ${t.seat}`),
      Demo.el("td", { class: "sum" }, Demo.rub(t.price)), Demo.el("td", {}, remove)));
  }
  renderTotals(pr);
  tick();
}

function renderTotals(pr) {
  const box = document.getElementById("totals");
  box.replaceChildren();
  if (!pr || !pr.tickets.length) return;
  const t = pr.totals;
  const line = (label, v, cls = "") => Demo.el("tr", { class: cls }, Demo.el("td", {}, label), Demo.el("td", { class: "sum" }, Demo.rub(v)));
  box.append(line("Билеты", t.tickets));
  if (Demo.kopecks(t.commission) > 0) box.append(line("Сервисный сбор", t.commission));
  if (Demo.kopecks(t.delivery) > 0) box.append(line("Доставка", t.delivery));
  box.append(line("Итого", t.total, "total"));
  document.getElementById("checkout").disabled = !pr.order_type;
}

/** The hold timer: from the reservation's expiry. */
function tick() {
  const out = document.getElementById("timer");
  const pr = Seats.pr;
  if (!pr || !pr.tickets.length || !pr.expires_at) { out.textContent = ""; return; }
  const left = Math.floor((new Date(pr.expires_at).getTime() - Date.now()) / 1000);
  if (left <= 0) {
    out.textContent = "";
    Seats.pr = { ...pr, tickets: [] };
    renderReservation();
    Demo.notice(document.getElementById("message"), "error",
      "Время брони истекло, и места освободились. Выберите места заново — если они ещё свободны.");
    refreshMap().catch(() => {});
    return;
  }
  const mm = String(Math.floor(left / 60)).padStart(2, "0");
  const ss = String(left % 60).padStart(2, "0");
  out.textContent = `Места за вами ещё ${mm}:${ss}`;
  out.classList.toggle("low", left < 60);
}

function showAddress() {
  document.getElementById("address-row").hidden = document.getElementById("order-type").value !== "courier_cash";
}

function clearFieldErrors(form) {
  for (const n of form.querySelectorAll(".invalid")) n.classList.remove("invalid");
  for (const n of form.querySelectorAll(".field-error")) n.remove();
}

function showFieldErrors(form, err) {
  for (const f of err.fields) {
    const input = form.querySelector(`[data-field="${CSS.escape(f.field)}"]`);
    if (!input) continue;
    input.classList.add("invalid");
    input.after(Demo.el("div", { class: "field-error" }, Demo.humanError(new Demo.ApiError(422, { errors: [f] }))));
  }
}

async function onBuyer(ev) {
  ev.preventDefault();
  const form = ev.target;
  const msg = document.getElementById("message");
  clearFieldErrors(form);
  const v = (name) => form.elements[name].value.trim();
  const customer = { name: v("name"), email: v("email"), phone: v("phone") };
  if (v("order_type") === "courier_cash") customer.address = v("address");
  try {
    const path = `/api/v1/reservations/${Seats.pr.id}/order_type`;
    Seats.pr = (await Demo.call("PUT", path, { order_type: v("order_type"), customer }, { reservation: true })).reservation;
    renderReservation();
    Demo.notice(msg, "ok", "Данные сохранены. Проверьте сумму и оформите заказ.");
  } catch (err) {
    showFieldErrors(form, err);
    Demo.notice(msg, "error", Demo.humanError(err));
  }
}

async function onCheckout() {
  const msg = document.getElementById("message");
  const button = document.getElementById("checkout");
  button.disabled = true;
  try {
    const path = `/api/v1/reservations/${Seats.pr.id}/checkout`;
    const answer = await Demo.call("POST", path, {}, { reservation: true, key: Demo.newKey() });
    const orders = JSON.parse(localStorage.getItem("demo-orders") || "[]");
    localStorage.setItem("demo-orders", JSON.stringify([answer.order.id, ...orders].slice(0, 20)));
    clearInterval(Seats.timer);
    // Online: the payment page, which sends the browser back to the order page.
    location.href = answer.payment_url || Demo.link("order.html", { order: answer.order.id });
  } catch (err) {
    button.disabled = false;
    Demo.notice(msg, "error", Demo.humanError(err));
    if (err.status === 409 || err.status === 404) {
      Seats.pr = null;
      await initReservation().catch(() => {});
      await refreshMap().catch(() => {});
    }
  }
}

// --------------------------------------------------------------- the order summary (order.html)

async function orderPage() {
  Demo.header();
  const msg = document.getElementById("message");
  const id = Demo.params.get("order");
  if (!id) return Demo.notice(msg, "error", "Не указан заказ.");
  try {
    const { order } = await Demo.call("GET", `/api/v1/ticket_orders/${encodeURIComponent(id)}`, undefined, { reservation: true });
    renderOrder(order);
  } catch (err) {
    Demo.notice(msg, "error", err.status === 404
      ? "Заказ не найден. Возможно, он оформлен в другом браузере."
      : Demo.humanError(err));
  }
}

function renderOrder(o) {
  const msg = document.getElementById("message");
  document.getElementById("title").textContent = `Заказ ${o.id}`;
  document.getElementById("event").textContent = `${o.event.title} · ${Demo.when(o.event.starts_at)}${o.event.venue ? " · " + o.event.venue : ""}`;
  const status = document.getElementById("status");
  const unpaid = o.status === "approved" && !o.paid;
  status.textContent = unpaid ? "ждёт оплаты наличными" : Demo.ORDER_STATUS[o.status] || o.status;
  status.className = `status ${unpaid ? "ordered" : o.status}`;
  document.getElementById("order-type").textContent = Demo.ORDER_TYPES[o.order_type] || o.order_type;
  document.getElementById("total").textContent = Demo.rub(o.totals.total);
  if (o.status === "approved" && o.paid) Demo.notice(msg, "ok", "Оплата прошла. Билеты ниже — покажите QR-код на входе.");
  else if (o.status === "approved") {
    const until = o.pay_by ? ` до ${new Date(o.pay_by).toLocaleString("ru-RU", { timeZone: "Europe/Moscow" })} (мск)` : "";
    const how = o.order_type === "courier_cash" ? "Оплатите его курьеру наличными" : "Оплатите его в кассе";
    Demo.notice(msg, "info", `Заказ принят. ${how}${until} — после оплаты здесь появятся билеты.`);
  }
  else if (o.status === "ordered") {
    Demo.notice(msg, "info", "Оплата ещё не завершена.");
    if (o.payment_url) msg.append(Demo.el("a", { class: "button", href: o.payment_url }, "Перейти к оплате"));
  } else if (o.status === "cancelled") {
    Demo.notice(msg, "error", `Заказ отменён${o.payment_error ? ": оплата не прошла" : ""}. Места освобождены — можно выбрать их снова.`);
  }
  const box = document.getElementById("tickets");
  box.replaceChildren();
  for (const t of o.tickets) {
    const card = Demo.el("div", { class: "ticket", "data-seat-id": t.seat_id },
      Demo.el("div", {}, Demo.el("strong", {}, `${t.sector_name}, ряд ${t.row}, место ${t.seat}`)),
      Demo.el("div", { class: "muted" }, Demo.rub(t.price)));
    if (t.qr_url) {
      const src = /^https?:/.test(t.qr_url) ? t.qr_url : Demo.API + t.qr_url;
      card.append(Demo.el("img", { class: "qr", src, alt: `QR-код билета ${t.bar_code}` }),
        Demo.el("div", { class: "code" }, t.bar_code));
    }
    box.append(card);
  }
}

// ------------------------------------------------------------- timed tickets: the zoo (zoo.html)

const ZOO_TYPES = { adult: "Взрослый", child: "Детский", student: "Студенческий", senior: "Пенсионный" };
const ZOO_STATUS = {
  pending: "ожидает оплаты", processing: "оплачивается", succeeded: "оплачен", failed: "не оплачен",
  canceled: "отменён", refunded: "возвращён",
};

function zooJwt() {
  const given = Demo.params.get("token");
  if (given) sessionStorage.setItem("demo-jwt", given);
  return sessionStorage.getItem("demo-jwt") || "";
}

async function zooPage() {
  Demo.header();
  const form = document.getElementById("zoo");
  form.elements.jwt.value = zooJwt();
  const tomorrow = new Date(Date.now() + 86400000);
  form.elements.visit_date.value = tomorrow.toISOString().slice(0, 10);
  const payment = Demo.params.get("payment") || localStorage.getItem(`demo-zoo:${Demo.params.get("order")}`);
  if (Demo.params.get("order") && payment) await showZooPayment(payment);
  try {
    const { data } = await Demo.call("GET", "/v1/tariff");
    renderTariff(form, data);
  } catch (err) {
    Demo.notice(document.getElementById("message"), "error", Demo.humanError(err));
  }
  form.addEventListener("input", () => zooTotal(form));
  form.elements.visit_time.addEventListener("change", () => zooSlot(form));
  form.elements.visit_date.addEventListener("change", () => zooSlot(form));
  form.addEventListener("submit", onZooSubmit);
}

function renderTariff(form, tariff) {
  const box = document.getElementById("zoo-types");
  for (const t of tariff.ticket_types) {
    box.append(Demo.el("div", {},
      Demo.el("label", { for: `q-${t.ticket_type}` }, `${ZOO_TYPES[t.ticket_type] || t.ticket_type} — ${Demo.rub(t.unit_price.value)}`),
      Demo.el("input", { id: `q-${t.ticket_type}`, type: "number", min: "0", max: "50", value: "0",
        "data-type": t.ticket_type, "data-price": t.unit_price.value, class: "quantity" })));
  }
  const select = form.elements.visit_time;
  for (const at of tariff.visit_times) select.append(Demo.el("option", { value: at }, at));
  if (tariff.visit_times.includes("10:00")) select.value = "10:00";
  zooTotal(form);
  zooSlot(form);
}

function zooItems(form) {
  return Array.from(form.querySelectorAll(".quantity"))
    .map((q) => ({ type: q.dataset.type, price: q.dataset.price, n: Number(q.value) }))
    .filter((i) => Number.isInteger(i.n) && i.n > 0);
}

function zooTotal(form) {
  const k = zooItems(form).reduce((sum, i) => sum + Demo.kopecks(i.price) * i.n, 0);
  document.getElementById("zoo-total").textContent = Demo.rub(Demo.fromKopecks(k));
  return Demo.fromKopecks(k);
}

async function zooSlot(form) {
  const out = document.getElementById("zoo-slot");
  const q = new URLSearchParams({ visit_date: form.elements.visit_date.value, visit_time: form.elements.visit_time.value });
  try {
    const { data } = await Demo.call("GET", `/v1/slots?${q}`);
    out.textContent = data.available > 0 ? `Свободно мест на это время: ${data.available}` : "На это время билетов нет.";
  } catch (_) {
    out.textContent = "";
  }
}

async function onZooSubmit(ev) {
  ev.preventDefault();
  const form = ev.target;
  const msg = document.getElementById("message");
  const jwt = form.elements.jwt.value.trim();
  sessionStorage.setItem("demo-jwt", jwt);
  const items = zooItems(form);
  if (!jwt) return Demo.notice(msg, "error", "Нужно войти: вставьте токен (make token) в поле «Токен покупателя».");
  if (!items.length) return Demo.notice(msg, "error", "Выберите хотя бы один билет.");
  const visit_date = form.elements.visit_date.value;
  const visit_time = form.elements.visit_time.value;
  const orderId = `ZOO-${Date.now()}`;
  const body = {
    session_id: Demo.newKey(),
    order: {
      order_id: orderId,
      total_amount: { value: zooTotal(form), currency: "RUB" },
      items: items.map((i) => ({ ticket_type: i.type, quantity: i.n, unit_price: { value: i.price, currency: "RUB" }, visit_date, visit_time })),
    },
    customer: { email: form.elements.email.value.trim() },
    confirmation: { type: "redirect", return_url: Demo.pageUrl("zoo.html", { order: orderId }), cancel_url: Demo.pageUrl("zoo.html", { order: orderId }) },
  };
  try {
    const { data } = await Demo.call("POST", "/v1/payments/sessions", body, { jwt, key: Demo.newKey() });
    localStorage.setItem(`demo-zoo:${orderId}`, data.payment_id);
    location.href = data.confirmation_url;
  } catch (err) {
    Demo.notice(msg, "error", Demo.humanError(err));
  }
}

async function showZooPayment(paymentId) {
  const box = document.getElementById("zoo-result");
  const msg = document.getElementById("message");
  try {
    const { data: p } = await Demo.call("GET", `/v1/payments/${encodeURIComponent(paymentId)}`, undefined, { jwt: zooJwt() });
    box.hidden = false;
    const status = document.getElementById("zoo-status");
    status.textContent = ZOO_STATUS[p.status] || p.status;
    status.className = `status ${p.status}`;
    document.getElementById("zoo-amount").textContent = Demo.rub(p.amount.value);
    if (p.status === "succeeded") Demo.notice(msg, "ok", "Оплата прошла. Билеты ниже и в письме.");
    else if (p.status === "failed" || p.status === "canceled") Demo.notice(msg, "error", "Оплата не прошла. Места на это время освобождены — можно попробовать снова.");
    const list = document.getElementById("zoo-tickets");
    for (const t of p.tickets) {
      list.append(Demo.el("div", { class: "ticket" },
        Demo.el("div", {}, Demo.el("strong", {}, ZOO_TYPES[t.ticket_type] || t.ticket_type)),
        Demo.el("div", { class: "muted" }, `${t.visit_date.split("-").reverse().join(".")} в ${t.visit_time}`),
        Demo.el("img", { class: "qr", src: t.qr_code, alt: `QR-код билета ${t.ticket_id}` })));
    }
  } catch (err) {
    Demo.notice(msg, "error", Demo.humanError(err));
  }
}

// Each page names itself on its script tag: <script src="demo.js" data-page="event">.
{
  const pages = { events: eventsPage, event: eventPage, order: orderPage, zoo: zooPage };
  const page = pages[document.currentScript && document.currentScript.dataset.page];
  if (page) page();
}
