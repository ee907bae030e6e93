//! A zoo session as a payment owner: it expects its amount due (the tariff total, or a
//! manager's amount); a payment that delivers it issues the tickets (QR codes,
//! `metadata.qr_codes_issued = true`) and writes the tickets email in the settling
//! transaction; one that does not gives the slot places back in that transaction.

use async_trait::async_trait;
use chrono::NaiveDate;
use serde_json::Value;

use super::{OWNER_KIND, SK_SESSION, Session, Ticket, qr, slots};
use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::mail::{Message, Notification, ZooTicket, ZooTicketsMail};
use crate::payments::{self, Payment, PaymentOwner, Settlement};
use crate::store::{Cond, WriteOp};

pub struct SessionPayments;

async fn load(app: &App, payment_id: &str) -> ApiResult<Option<Session>> {
    Ok(match app.store.get(&payments::pk(payment_id), SK_SESSION).await? {
        Some(item) => {
            let mut s: Session = item.decode()?;
            s.version = item.version;
            Some(s)
        }
        None => None,
    })
}

/// One ticket per visitor, each with its signed QR payload and image.
fn issue(app: &App, p: &Payment, s: &Session) -> ApiResult<Vec<Ticket>> {
    let key = crate::ticket_keys::of(&app.config)?;
    let mut tickets = Vec::new();
    for l in &s.items {
        for _ in 0..l.quantity {
            let ticket_id = format!("{}-{}", p.id, tickets.len() + 1);
            let payload =
                qr::payload(&key, &[&ticket_id, &p.id, &l.visit_date, &l.visit_time, &l.ticket_type]);
            let png = qr::png(&payload)?;
            tickets.push(Ticket {
                ticket_id,
                ticket_type: l.ticket_type.clone(),
                visit_date: l.visit_date.clone(),
                visit_time: l.visit_time.clone(),
                qr_code: qr::data_url(&png),
                qr_payload: payload,
            });
        }
    }
    Ok(tickets)
}

#[async_trait]
impl PaymentOwner for SessionPayments {
    fn kind(&self) -> &'static str {
        OWNER_KIND
    }

    async fn settlement(&self, app: &App, p: &Payment, delivered: bool) -> ApiResult<Settlement> {
        let Some(s) = load(app, &p.id).await? else { return Ok(Settlement::default()) };
        let expects = Some(s.amount_due());
        let ops = if delivered {
            let mut next = Session { version: s.version + 1, ..s.clone() };
            next.tickets = issue(app, p, &s)?;
            next.metadata.insert("qr_codes_issued".into(), Value::Bool(true));
            vec![
                WriteOp::Put { item: next.to_item()?, cond: Cond::Version(s.version) },
                crate::outbox::op(&tickets_email(p, &next)?, app.clock.now())?,
            ]
        } else {
            slots::release_ops(&s.reservations)
        };
        Ok(Settlement { expects, ops })
    }
}

fn date(d: &str) -> ApiResult<NaiveDate> {
    NaiveDate::parse_from_str(d, "%Y-%m-%d")
        .map_err(|e| ApiError::Internal(format!("stored visit date {d:?}: {e}")))
}

/// The email with the session's tickets (one id per payment): one QR image per ticket, its
/// code the ticket's signed payload.
pub fn tickets_email(p: &Payment, s: &Session) -> ApiResult<Notification> {
    let first = s.items.first().ok_or_else(|| ApiError::Internal("a session without items".into()))?;
    let tickets = s
        .tickets
        .iter()
        .map(|t| {
            Ok(ZooTicket {
                ticket_id: t.ticket_id.clone(),
                ticket_type: t.ticket_type.clone(),
                visit_date: date(&t.visit_date)?,
                visit_time: t.visit_time.clone(),
                code: t.qr_payload.clone(),
            })
        })
        .collect::<ApiResult<_>>()?;
    let mail = ZooTicketsMail {
        payment_id: p.id.clone(),
        order_id: s.order_id.clone(),
        amount: p.amount.into(),
        visit_date: date(&first.visit_date)?,
        visit_time: first.visit_time.clone(),
        tickets,
    };
    Ok(Notification::new(
        format!("zoo-{}-tickets", p.id),
        s.customer.email.clone(),
        Message::ZooTickets(mail),
    ))
}
