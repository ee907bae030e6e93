//! Rendering: one notification → one email (subject, plain text, HTML, inline QR images).
//!
//! Templates are minijinja files embedded at compile time (`templates/`): for each name a
//! `.subject`, a `.txt` and an `.html` (HTML is auto-escaped, text is not). Undefined data
//! fields render empty, so a producer may omit optional fields. For `e_tickets` and
//! `zoo_tickets` every ticket with a `code` gets a QR code (PNG) attached inline and
//! referenced from the HTML as `cid:` (`qr_cid` is added to the ticket data).

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;
use shared::outbox::Notification;

/// Every template a notification may name.
pub const TEMPLATES: [&str; 11] = [
    "ticket_order_buyer",
    "ticket_order_admin",
    "e_tickets",
    "zoo_tickets",
    "deal_state_changed",
    "deal_escalated",
    "deal_terms_changed",
    "refund",
    "payment_returned",
    "payment_mismatch",
    "refund_manual",
];

macro_rules! embedded {
    ($($name:literal),* $(,)?) => {
        &[$(
            (concat!($name, ".subject"), include_str!(concat!("../templates/", $name, ".subject"))),
            (concat!($name, ".txt"), include_str!(concat!("../templates/", $name, ".txt"))),
            (concat!($name, ".html"), include_str!(concat!("../templates/", $name, ".html"))),
        )*]
    };
}

const SOURCES: &[(&str, &str)] = embedded!(
    "ticket_order_buyer",
    "ticket_order_admin",
    "e_tickets",
    "zoo_tickets",
    "deal_state_changed",
    "deal_escalated",
    "deal_terms_changed",
    "refund",
    "payment_returned",
    "payment_mismatch",
    "refund_manual",
);

const BASE: (&str, &str) = ("_base.html", include_str!("../templates/_base.html"));

/// An inline image.
#[derive(Debug, Clone, PartialEq)]
pub struct Inline {
    pub cid: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// A rendered email.
#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    /// The notification id (the de-duplication key), also used for the Message-ID.
    pub id: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub inline: Vec<Inline>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("unknown template {0:?}")]
    UnknownTemplate(String),
    #[error("invalid recipient {0:?}")]
    BadRecipient(String),
    #[error("template {template}: {message}")]
    Template { template: String, message: String },
}

/// Russian names of the deal states.
pub fn deal_state(state: &str) -> String {
    match state {
        "pending" => "создана, ожидает подтверждения",
        "approved" => "подтверждена продавцом",
        "payment_verification" => "проверка оплаты",
        "paid" => "оплачена",
        "shipping" => "передача товара или услуги",
        "received" => "получено покупателем",
        "rejected" => "претензия покупателя",
        "escalation" => "передана на рассмотрение арбитру",
        "await_returning" => "ожидает возврата",
        "returned" => "возвращено",
        "payout_initiated" => "выплата продавцу начата",
        "done" => "завершена",
        "cancelled" => "отменена",
        other => other,
    }
    .to_owned()
}

/// The template environment (built once per process).
pub struct Renderer {
    env: Environment<'static>,
}

impl Default for Renderer {
    fn default() -> Self {
        Renderer::new()
    }
}

impl Renderer {
    pub fn new() -> Renderer {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.add_filter("deal_state", |s: String| deal_state(&s));
        for (name, source) in SOURCES.iter().chain([&BASE]) {
            env.add_template(name, source).expect("embedded templates are valid (checked by a test)");
        }
        Renderer { env }
    }

    pub fn render(&self, n: &Notification) -> Result<Email, RenderError> {
        if !TEMPLATES.contains(&n.template.as_str()) {
            return Err(RenderError::UnknownTemplate(n.template.clone()));
        }
        if !plausible_email(&n.to) {
            return Err(RenderError::BadRecipient(n.to.clone()));
        }
        let mut data = match &n.data {
            Value::Object(_) => n.data.clone(),
            Value::Null => Value::Object(Default::default()),
            _ => {
                return Err(RenderError::Template {
                    template: n.template.clone(),
                    message: "data must be an object".into(),
                });
            }
        };
        let inline = if matches!(n.template.as_str(), "e_tickets" | "zoo_tickets") {
            attach_qr_codes(&mut data)
                .map_err(|message| RenderError::Template { template: n.template.clone(), message })?
        } else {
            Vec::new()
        };
        let render = |suffix: &str| -> Result<String, RenderError> {
            let name = format!("{}.{suffix}", n.template);
            let tmpl = self
                .env
                .get_template(&name)
                .map_err(|e| RenderError::Template { template: name.clone(), message: e.to_string() })?;
            tmpl.render(&data).map_err(|e| RenderError::Template { template: name, message: e.to_string() })
        };
        let subject = render("subject")?.split_whitespace().collect::<Vec<_>>().join(" ");
        Ok(Email {
            id: n.id.clone(),
            to: n.to.clone(),
            subject,
            text: render("txt")?,
            html: render("html")?,
            inline,
        })
    }
}

fn plausible_email(to: &str) -> bool {
    let Some((local, domain)) = to.split_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !to.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | '"'))
}

/// Adds `qr_cid` to every ticket with a `code` and returns the PNG images.
fn attach_qr_codes(data: &mut Value) -> Result<Vec<Inline>, String> {
    let Some(tickets) = data.get_mut("tickets").and_then(Value::as_array_mut) else {
        return Ok(Vec::new());
    };
    let mut images = Vec::new();
    for (i, ticket) in tickets.iter_mut().enumerate() {
        let Some(code) = ticket.get("code").and_then(|c| match c {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }) else {
            continue;
        };
        let cid = format!("qr-{}@tickets", i + 1);
        images.push(Inline { cid: cid.clone(), content_type: "image/png", bytes: qr_png(&code)? });
        if let Value::Object(t) = ticket {
            t.insert("qr_cid".into(), Value::String(cid));
        }
    }
    Ok(images)
}

/// A QR code as a grayscale PNG: 6 pixels per module, a 4-module quiet zone.
pub fn qr_png(text: &str) -> Result<Vec<u8>, String> {
    const SCALE: usize = 6;
    const QUIET: usize = 4;
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| format!("QR code for {text:?}: {e}"))?;
    let width = code.width();
    let colors = code.to_colors();
    let side = (width + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for y in 0..width {
        for x in 0..width {
            if colors[y * width + x] == qrcode::Color::Dark {
                for dy in 0..SCALE {
                    let row = ((y + QUIET) * SCALE + dy) * side;
                    let start = row + (x + QUIET) * SCALE;
                    pixels[start..start + SCALE].fill(0);
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, side as u32, side as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&pixels).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn n(template: &str, data: Value) -> Notification {
        Notification { id: "t-1".into(), template: template.into(), to: "buyer@example.com".into(), data }
    }

    #[test]
    fn every_template_renders_in_russian() {
        let r = Renderer::new();
        for t in TEMPLATES {
            let email = r.render(&n(t, json!({}))).unwrap_or_else(|e| panic!("{t}: {e}"));
            assert!(!email.subject.is_empty(), "{t}");
            assert!(
                email.text.chars().filter(|c| ('а'..='я').contains(c)).count() > 20,
                "{t}: {}",
                email.text
            );
            assert!(email.html.contains("<html lang=\"ru\">"), "{t}");
        }
    }

    #[test]
    fn deal_state_change_names_the_states() {
        let email = Renderer::new()
            .render(&n(
                "deal_state_changed",
                json!({"deal_id": 17, "from_state": "paid", "to_state": "shipping", "cost": "2500.00"}),
            ))
            .unwrap();
        assert_eq!(email.subject, "Сделка №17: передача товара или услуги");
        assert!(email.text.contains("«оплачена» → «передача товара или услуги»"), "{}", email.text);
        assert!(email.text.contains("2500.00 ₽"));
    }

    #[test]
    fn html_is_escaped_text_is_not() {
        let email = Renderer::new()
            .render(&n("refund", json!({"amount": "10.00", "reason": "<b>x</b> & y"})))
            .unwrap();
        assert!(email.html.contains("&lt;b&gt;x&lt;&#x2f;b&gt; &amp; y"), "{}", email.html);
        assert!(email.text.contains("<b>x</b> & y"));
    }

    #[test]
    fn tickets_get_inline_qr_codes() {
        let email = Renderer::new()
            .render(&n(
                "zoo_tickets",
                json!({"payment_id": "pay_1", "visit_date": "2026-12-01",
                       "tickets": [{"code": "ZOO-1", "ticket_type": "adult"}, {"code": "ZOO-2", "ticket_type": "child"}]}),
            ))
            .unwrap();
        assert_eq!(email.inline.len(), 2);
        assert!(email.html.contains("cid:qr-1@tickets") && email.html.contains("cid:qr-2@tickets"));
        assert_eq!(&email.inline[0].bytes[1..4], b"PNG");
        assert_ne!(email.inline[0].bytes, email.inline[1].bytes);
    }

    #[test]
    fn unknown_template_and_bad_recipient_are_refused() {
        let r = Renderer::new();
        assert_eq!(r.render(&n("nope", json!({}))), Err(RenderError::UnknownTemplate("nope".into())));
        let mut bad = n("refund", json!({}));
        bad.to = "not an address".into();
        assert!(matches!(r.render(&bad), Err(RenderError::BadRecipient(_))));
        assert!(matches!(r.render(&n("refund", json!([1]))), Err(RenderError::Template { .. })));
    }
}
