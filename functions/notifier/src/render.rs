//! Rendering: one notification → one email (subject, plain text, HTML, inline QR images).
//!
//! A [`Notification`] is typed (`shared::mail`): its template is its variant, its data the
//! variant's struct, serialized for the template. Templates are minijinja files embedded at
//! compile time (`templates/`): for each name a `.subject`, a `.txt` and an `.html` (HTML is
//! auto-escaped, text is not). Undefined fields are errors (a template naming a field its type
//! lacks fails its test), optional fields are `null`. For e-tickets and zoo tickets each
//! ticket's `code` becomes a QR code (PNG) attached inline as `qr-<n>@tickets` (`n` from 1, in
//! ticket order) and referenced from the HTML as `cid:`. Filters: `date` (`2030-06-01` →
//! `01.06.2030`), `datetime` (an RFC 3339 time → `01.05.2030 19:00`, in its own offset).

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;
use shared::mail::{Message, Notification};

/// Every template a notification may name.
pub const TEMPLATES: [&str; 12] = Message::TEMPLATES;

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
    "ticket_order_cancelled",
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
    #[error("invalid recipient {0:?}")]
    BadRecipient(String),
    #[error("template {template}: {message}")]
    Template { template: String, message: String },
}

/// `2030-06-01` → `01.06.2030`.
fn date(s: String) -> String {
    chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d").map(|d| d.format("%d.%m.%Y").to_string()).unwrap_or(s)
}

/// An RFC 3339 time → `01.05.2030 19:00` (in its own offset).
fn datetime(s: String) -> String {
    chrono::DateTime::parse_from_rfc3339(&s).map(|d| d.format("%d.%m.%Y %H:%M").to_string()).unwrap_or(s)
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
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_filter("date", date);
        env.add_filter("datetime", datetime);
        // Each template is parsed when it is first rendered, then kept: a notifier's first email
        // parses its own three parts and the base, not all 37 (every one is parsed by a test).
        env.set_loader(|name| Ok(source(name).map(str::to_owned)));
        Renderer { env }
    }

    /// Parses the base that most HTML emails extend (kept, as every parsed template).
    pub fn prepare(&self) {
        let _ = self.env.get_template(BASE.0);
    }

    pub fn render(&self, n: &Notification) -> Result<Email, RenderError> {
        let template = n.template();
        if !plausible_email(&n.to) {
            return Err(RenderError::BadRecipient(n.to.clone()));
        }
        let failed = |message: String| RenderError::Template { template: template.into(), message };
        let data = match serde_json::to_value(&n.message).map_err(|e| failed(e.to_string()))? {
            Value::Object(mut m) => m.remove("data").unwrap_or_default(),
            _ => Value::Null,
        };
        let inline = n
            .message
            .qr_codes()
            .iter()
            .enumerate()
            .map(|(i, code)| {
                Ok(Inline {
                    cid: format!("qr-{}@tickets", i + 1),
                    content_type: "image/png",
                    bytes: qr_png(code)?,
                })
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(failed)?;
        let render = |suffix: &str| -> Result<String, RenderError> {
            let name = format!("{template}.{suffix}");
            let tmpl = self
                .env
                .get_template(&name)
                .map_err(|e| RenderError::Template { template: name.clone(), message: e.to_string() })?;
            tmpl.render(&data)
                .map_err(|e| RenderError::Template { template: name, message: format!("{e:#}") })
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

/// The embedded source of a template.
fn source(name: &str) -> Option<&'static str> {
    SOURCES.iter().chain([&BASE]).find(|(n, _)| *n == name).map(|(_, s)| *s)
}

fn plausible_email(to: &str) -> bool {
    let Some((local, domain)) = to.split_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !to.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | '"'))
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
    use rust_decimal::Decimal;
    use shared::mail::{RefundMail, Rub};

    use super::*;

    fn refund(reason: &str) -> Notification {
        let mail = RefundMail {
            subject: "Заказ №7".into(),
            customer_name: Some("Анна".into()),
            amount: Rub(Decimal::new(1000, 2)),
            reason: reason.into(),
            refunded: Rub(Decimal::new(1000, 2)),
            total: Rub(Decimal::new(5000, 2)),
        };
        Notification::new("t-1", "buyer@example.com", Message::Refund(mail))
    }

    #[test]
    fn every_embedded_template_parses() {
        let r = Renderer::new();
        for (name, _) in SOURCES.iter().chain([&BASE]) {
            r.env.get_template(name).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
        assert!(r.env.get_template("nonexistent.txt").is_err());
        assert_eq!(SOURCES.len(), TEMPLATES.len() * 3);
    }

    #[test]
    fn a_prepared_renderer_renders_the_same_email() {
        let prepared = Renderer::new();
        prepared.prepare();
        let email = prepared.render(&refund("x")).unwrap();
        assert!(email.html.contains("</html>"), "the base's end: {}", email.html);
        assert_eq!(email, Renderer::new().render(&refund("x")).unwrap());
    }

    #[test]
    fn html_is_escaped_text_is_not() {
        let email = Renderer::new().render(&refund("<b>x</b> & y")).unwrap();
        assert!(email.html.contains("&lt;b&gt;x&lt;&#x2f;b&gt; &amp; y"), "{}", email.html);
        assert!(email.text.contains("<b>x</b> & y"));
        assert!(email.subject.contains("10.00"), "{}", email.subject);
    }

    #[test]
    fn a_bad_recipient_is_refused() {
        let mut bad = refund("x");
        bad.to = "not an address".into();
        assert!(matches!(Renderer::new().render(&bad), Err(RenderError::BadRecipient(_))));
    }

    #[test]
    fn filters_show_dates_as_a_reader_reads_them() {
        assert_eq!(date("2030-06-01".into()), "01.06.2030");
        assert_eq!(datetime("2030-05-01T19:00:00+03:00".into()), "01.05.2030 19:00");
    }
}
