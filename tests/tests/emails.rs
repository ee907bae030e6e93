//! What a reader sees in each email, with the data made by the domain itself (over the API)
//! and rendered by the notifier from that same type: the visit date and time, one readable
//! QR image per ticket whose payload is the ticket's code, the deal's new state and who moved
//! it, the escalation's reason, the refund's amount, the old and new terms.

mod tickets_support;

use api_tests::emails::{approve, deal_approved, deal_to_approve, queued, visit_date, zoo_tickets};
use api_tests::{TestServer, decode_qr_png, press, token};
use base64::Engine;
use serde_json::json;
use shared::jobs::{Job, run};
use shared::mail::Notification;

fn read(n: &Notification) -> notifier::Email {
    notifier::Renderer::new().render(n).expect("renders")
}

fn ru_date(iso: &str) -> String {
    chrono::NaiveDate::parse_from_str(iso, "%Y-%m-%d").unwrap().format("%d.%m.%Y").to_string()
}

#[tokio::test]
async fn zoo_tickets_show_the_visit_and_one_qr_per_ticket() {
    let srv = TestServer::memory().await;
    let (n, session) = zoo_tickets(&srv).await;
    let email = read(&n);
    let day = ru_date(&visit_date());
    assert_eq!(email.subject, format!("Ваши билеты в зоопарк на {day} в 10:00"));
    assert!(email.text.contains(&format!("{day} 10:30")), "the child's visit: {}", email.text);
    assert!(email.text.contains("2500.00 ₽"), "{}", email.text);
    assert_eq!(email.to, "visitor@example.com");
    // One image per ticket, each the QR code of that ticket's signed payload.
    let issued: Vec<String> = session["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let b64 = t["qr_code"].as_str().unwrap().trim_start_matches("data:image/png;base64,");
            decode_qr_png(&base64::engine::general_purpose::STANDARD.decode(b64).unwrap())
        })
        .collect();
    let shown: Vec<String> = email.inline.iter().map(|i| decode_qr_png(&i.bytes)).collect();
    assert_eq!(shown, issued, "in ticket order");
    for (i, payload) in shown.iter().enumerate() {
        assert!(payload.starts_with(&format!(
            "ZOOTICKET;{}-{};",
            n.data()["payment_id"].as_str().unwrap(),
            i + 1
        )));
        assert!(email.html.contains(&format!("cid:qr-{}@tickets", i + 1)));
    }
}

#[tokio::test]
async fn e_tickets_carry_a_qr_of_each_bar_code_and_the_event_time() {
    let srv = TestServer::memory().await;
    tickets_support::create_event(&srv, "mail").await;
    let (order, page) =
        tickets_support::online_order(&srv, "mail", &["s-1-1", "s-2-2"], "email_online").await;
    let (status, _) = press(&srv, &page, "succeeded").await;
    assert_eq!(status, 303);
    let o = shared::tickets::orders::get(&srv.app, &order).await.unwrap().order;
    let codes: Vec<String> = o.tickets.iter().map(|t| t.bar_code.clone()).collect();

    let email = read(&queued(&srv, "e_tickets"));
    // The test event starts 2030-05-01T19:00:00+03:00.
    assert_eq!(email.subject, "Электронные билеты: «Test event mail», 01.05.2030 19:00");
    let shown: Vec<String> = email.inline.iter().map(|i| decode_qr_png(&i.bytes)).collect();
    assert_eq!(shown, codes);
    for code in &codes {
        assert!(email.text.contains(code));
    }
    let buyer = read(&queued(&srv, "ticket_order_buyer"));
    assert!(buyer.subject.ends_with("оплачен"), "{}", buyer.subject);
    assert!(
        buyer.text.contains(&format!("Итого: {} ₽", shared::money::format(o.totals.total))),
        "{}",
        buyer.text
    );
    let admin = read(&queued(&srv, "ticket_order_admin"));
    assert!(admin.text.contains("Анна") && admin.text.contains(&codes[0]), "{}", admin.text);
}

#[tokio::test]
async fn a_deal_move_names_the_new_state_and_who_made_it() {
    let srv = TestServer::memory().await;
    let (n, id) = deal_approved(&srv).await;
    let email = read(&n);
    assert_eq!(email.to, "user14@example.com");
    assert_eq!(email.subject, format!("Сделка №{id}: Подтверждена продавцом"));
    assert!(email.text.contains("«Ожидает подтверждения» → «Подтверждена продавцом»"), "{}", email.text);
    assert!(email.text.contains("Изменение внёс: продавец"), "{}", email.text);
    assert!(email.text.contains("2500.00 ₽"));
}

#[tokio::test]
async fn an_escalation_tells_the_claims_reason() {
    let srv = TestServer::memory().await;
    let (supplier, consumer, manager) = (token("21", &[]), token("14", &[]), token("31", &["manager"]));
    let id = deal_to_approve(&srv).await;
    assert_eq!(approve(&srv, id).await, 204);
    let deal = format!("/api/v1/orders/{id}");
    let pay = json!({"payment": {"name": "Иванов", "payment_method": "invoice"}});
    assert_eq!(srv.post(&format!("{deal}/payment"), Some(&consumer), &pay).await.0, 201);
    let to = |state: &str| json!({"transition": {"to_state": state}});
    assert_eq!(
        srv.post(&format!("{deal}/transitions"), Some(&consumer), &to("payment_verification")).await.0,
        204
    );
    assert_eq!(srv.post(&format!("{deal}/transitions"), Some(&manager), &to("paid")).await.0, 204);
    let ship = json!({"order": {"shipping_info": {"track": "RA1"}}});
    assert_eq!(srv.call(reqwest::Method::PATCH, &deal, Some(&supplier), Some(&ship)).await.0, 200);
    assert_eq!(srv.post(&format!("{deal}/transitions"), Some(&supplier), &to("shipping")).await.0, 204);
    let claim = json!({"reason": "Стол пришёл с трещиной", "description": "Фото приложены"});
    assert_eq!(srv.post(&format!("{deal}/claim"), Some(&consumer), &claim).await.0, 200);
    srv.app.clock.advance(chrono::Duration::days(8));
    run(&srv.app, Job::Deals).await.unwrap();
    let email = read(&queued(&srv, "deal_escalated"));
    assert_eq!(email.subject, format!("Сделка №{id} передана на рассмотрение арбитру"));
    assert!(email.text.contains("Причина претензии: Стол пришёл с трещиной"), "{}", email.text);
    assert!(email.text.contains("Описание: Фото приложены"));
}

#[tokio::test]
async fn a_refund_tells_its_amount() {
    let srv = TestServer::memory().await;
    tickets_support::create_event(&srv, "rf").await;
    let (order, page) = tickets_support::online_order(&srv, "rf", &["s-2-1"], "self_online").await;
    press(&srv, &page, "succeeded").await;
    let path = format!("/api/v1/admin/ticket_orders/{order}/refund");
    let (status, body) = srv
        .post(&path, Some(&tickets_support::admin()), &json!({"amount": "100.25", "reason": "Опоздание"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let email = read(&queued(&srv, "refund"));
    assert_eq!(email.to, "anna@example.com");
    assert!(email.subject.starts_with("Возврат 100.25 ₽: Заказ №"), "{}", email.subject);
    assert!(
        email.text.contains("Причина: Опоздание") && email.text.contains("Всего возвращено 100.25 ₽"),
        "{}",
        email.text
    );
}

#[tokio::test]
async fn a_change_of_terms_shows_the_old_and_the_new() {
    let srv = TestServer::memory().await;
    let id = deal_to_approve(&srv).await;
    let patch = json!({"order": {"cost": "3000"}});
    let (status, body) = srv
        .call(reqwest::Method::PATCH, &format!("/api/v1/orders/{id}"), Some(&token("14", &[])), Some(&patch))
        .await;
    assert_eq!(status, 200, "{body}");
    let n = queued(&srv, "deal_terms_changed");
    assert_eq!(n.to, "user21@example.com", "the other party");
    let email = read(&n);
    assert!(
        email.text.contains("стоимость 2500.00 ₽") && email.text.contains("стоимость 3000.00 ₽"),
        "{}",
        email.text
    );
    assert!(email.text.contains("(покупатель)"), "{}", email.text);
}
