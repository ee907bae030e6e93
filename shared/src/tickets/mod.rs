//! Seated-event ticket ordering (SPEC part B, seed 000).
//!
//! The system owns the seat inventory ([`inventory`]: events, sectors, rows, seats, price
//! categories, loaded from a JSON seat map). A buyer's cart is a preliminary reservation
//! ([`reservations`], "PR"): bound to one event, identified by an id and a secret token, it
//! holds up to [`MAX_SEATS`] seats. Every seat hold is its own item ([`holds`]), so a flash
//! sale spreads its writes over one key per seat; checkout ([`orders`]) turns the holds into
//! sold seats and creates the order in one transaction.
//!
//! ## Keys (one table, see the README for the access patterns)
//!
//! | item | pk | sk | gsi1pk / gsi1sk | ttl |
//! |---|---|---|---|---|
//! | event | `event#<event>` | `meta` | `events` / `<starts_at>#<event>` | — |
//! | seat | `event#<event>` | `seat#<seat>` | — | — |
//! | hold / sold seat | `hold#<event>#<seat>` | `hold` | `holds#<event>#<shard>` / `held#<seat>`, `sold#<seat>` | expiry + 60 s while held |
//! | reservation | `pr#<id>` | `pr` | — | last change + 1 day |
//! | cart pointer | `cart#<owner>` | `cart` | — | last change + 1 day |
//! | order | `ticket_order#<id>` | `order` | `cash_due` / `<pay_by>#<id>` while a cash order waits for its money | — |
//! | bar code | `barcode#<code>` | `barcode` | — | — |
//!
//! ## Decisions where the spec is silent
//!
//! - **Who owns a PR.** An authenticated buyer (JWT) owns it by `sub`; an anonymous buyer by
//!   the secret token answered at creation and sent back as `X-Reservation-Token` (stored only
//!   as a SHA-256 hash). The token names the buyer's cart, not one PR: switching to another
//!   event keeps the token and replaces the PR. A PR or order of someone else is 404. A token
//!   cart is not merged into a user's cart when the buyer later signs in.
//! - **Expiry.** Each hold expires `SEAT_TIMEOUT` after it was taken (holding more seats does
//!   not extend the older ones). Reads treat an expired hold as free at once, and a new hold
//!   replaces it with a version check; the `reservations` job deletes expired holds (again on
//!   the version, so a re-held seat is never deleted), and the item `ttl` is a backstop.
//!   Sold seats carry no expiry and are never swept.
//! - **Hold copies on the PR.** Each hold the PR writes is also copied into the PR (seat and
//!   expiry, `held`), in the same transaction. A hold item whose expiry is still ahead can only
//!   change through this PR (release, checkout, switching events) — others may take over or
//!   sweep a hold only once it has expired — so the copies decide which holds are live for the
//!   seat limit and the PR's view, and a hold costs the same 4 reads whatever the PR holds.
//!   Checkout still reads every hold item (it needs their versions).
//! - **Seat index shards.** The holds of one event are spread over [`holds::INDEX_SHARDS`]
//!   index partitions (by a hash of the seat id), so a flash sale does not funnel every index
//!   write into one partition either; the seat list reads all shards.
//! - **Checkout of cash orders** answers 201 even if queueing an email fails after the order
//!   was committed (the failure is logged; an admin can resend). A cash order is `approved`
//!   but unpaid until the box office marks it paid ([`orders::mark_paid`]) before its deadline
//!   (`pay_by`: `CASH_PAYMENT_HOURS` after checkout, never past the event's start); the
//!   reservations job cancels it after that ([`orders::cancel_unpaid`]). Bar codes and QR codes
//!   of any order are shown, emailed and admitted only while it is approved and paid.
//! - **Online orders** ([`orders::online_checkout`]): checkout creates the order as `ordered`
//!   with its seats sold to it (the hold sweep never frees them) and, in the same
//!   transaction, a payment (`TO_<invoice>`, gateway `TICKETS_PAYMENT_GATEWAY`, default the
//!   sandbox) whose page is answered as `payment_url`. The payment's settlement (callback,
//!   browser return or the payments reconciliation job, whichever wins) moves the order once:
//!   paid → `approved` + emails (e-tickets for `email_online`); declined, cancelled or expired
//!   (`PAYMENT_TIMEOUT`) → `cancelled`, seats free. A payment that was settled but whose order
//!   was not moved (a crash in between) is finished by the next callback or browser return.
//! - **Payment return** `GET /api/v1/ticket_orders/:id/payment_return` (no credentials: it
//!   only redirects) asks the gateway, settles a final answer, then 302s to
//!   `TICKETS_SUCCESS_URL` when the order is approved (or refunded) and to
//!   `TICKETS_ERROR_URL` otherwise, including a payment still open; `{order_id}` in either is
//!   replaced, and both default to the order's own `GET /api/v1/ticket_orders/:id`.
//! - **Refunds** ([`orders::refund`]): only online orders that are `approved` (or already
//!   partly `refunded`). The refund is reserved on the order by a write on its version (the
//!   sum of refunds can never pass the paid total, even with concurrent admins) in the same
//!   transaction that writes it on the payment as `sending`; then the gateway refunds, and
//!   the refund is marked `completed` and a `refund` email queued; a gateway refusal takes
//!   the reservation back; an answer lost leaves it pending for the reconciliation job. The
//!   order is `refunded` from its first refund; when the refunds reach the paid total its
//!   seats are freed. Refunds the gateway reports on its own (SNGB's `sngb_tran`) are added
//!   the same way. The amount is a JSON number or string read from its text, positive, at
//!   most two decimals.
//! - **Totals.** Seat prices come from the price category; online order types add
//!   `ONLINE_COMMISSION` percent (default 3) of the tickets, `courier_cash` adds
//!   `COURIER_PRICE` (default 300.00). Every amount is rounded half-up to kopecks.
//! - **Bar codes** are EAN-13 numbers in the in-store range (first digit `2`), 11 random
//!   digits and a check digit, unique through a `barcode#<code>` item created with the order.

pub mod back_office;
pub mod barcode;
pub mod holds;
pub mod inventory;
pub mod limits;
pub mod notices;
pub mod orders;
pub mod payment_owner;
pub mod reservations;
pub mod seatmap;
pub mod totals;

use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use crate::App;
use crate::auth::{AuthUser, Claims};
use crate::error::{ApiError, ApiResult};

/// The most seats one preliminary reservation may hold.
pub const MAX_SEATS: usize = 7;

/// The header an anonymous buyer sends their reservation token in.
pub const TOKEN_HEADER: &str = "x-reservation-token";

/// [`TOKEN_HEADER`] as a header name made once (looked up on every buyer call).
const TOKEN_HEADER_NAME: axum::http::HeaderName = axum::http::HeaderName::from_static(TOKEN_HEADER);

/// The caller of a buyer route: an optional user (a bearer JWT, which must be valid when
/// sent) and an optional reservation token.
#[derive(Debug, Clone, Default)]
pub struct Buyer {
    pub user: Option<std::sync::Arc<Claims>>,
    pub token: Option<String>,
    /// The client address (see [`crate::http::client_address`]), for the caps.
    pub client: Option<String>,
}

impl Buyer {
    /// Every owner key the caller can prove.
    pub fn owner_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        if let Some(u) = &self.user {
            keys.push(user_owner(&u.sub));
        }
        if let Some(t) = &self.token {
            keys.push(token_owner(t));
        }
        keys
    }

    /// Whether `owner` is one of [`Buyer::owner_keys`] (compared in place: a seat hold asks
    /// on every call).
    pub fn owns(&self, owner: &str) -> bool {
        let user = self.user.as_ref().is_some_and(|u| owner.strip_prefix("user:") == Some(u.sub.as_str()));
        user || self.token.as_ref().is_some_and(|t| owner.starts_with("token:") && token_owner(t) == owner)
    }
}

/// The owner key of an authenticated user.
pub fn user_owner(sub: &str) -> String {
    ["user:", sub].concat()
}

/// The owner key of a reservation token (its hash: the token itself is never stored).
pub fn token_owner(token: &str) -> String {
    format!("token:{}", hex::encode(Sha256::digest(token.as_bytes())))
}

impl Buyer {
    pub async fn from_parts(parts: &Parts, app: &App) -> ApiResult<Self> {
        let user = if parts.headers.contains_key(axum::http::header::AUTHORIZATION) {
            Some(AuthUser::from_parts(parts, app).await?.0)
        } else {
            None
        };
        let token = match parts.headers.get(&TOKEN_HEADER_NAME) {
            None => None,
            Some(v) => {
                let t = v.to_str().map(str::trim).unwrap_or("");
                let ok = (16..=128).contains(&t.len())
                    && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !ok {
                    return Err(ApiError::bad_request("X-Reservation-Token", "malformed reservation token"));
                }
                Some(t.to_owned())
            }
        };
        Ok(Buyer { user, token, client: crate::http::client_address(parts) })
    }
}

crate::extract_from_parts!(Buyer);

/// Ids that become part of keys: 1 to 64 of `A-Z a-z 0-9 _ -`.
pub fn check_id(field: &str, v: &str) -> ApiResult<()> {
    let ok =
        (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(field, "must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -"))
    }
}

/// A new random opaque id.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `owns` compares in place what `owner_keys` lists: the same answer for every key.
    #[test]
    fn owns_exactly_the_owner_keys() {
        let claims = |sub: &str| Claims::new(sub, chrono::Duration::minutes(5));
        let buyers = [
            Buyer::default(),
            Buyer { user: Some(claims("12").into()), ..Default::default() },
            Buyer { token: Some("t0k".into()), ..Default::default() },
            Buyer { user: Some(claims("1").into()), token: Some("t0k".into()), client: None },
        ];
        let owners = [
            "user:12".to_owned(),
            "user:1".into(),
            "user:".into(),
            "user:123".into(),
            "user:21".into(),
            "user:x12".into(),
            "user12".into(),
            token_owner("t0k"),
            token_owner("t0kx"),
            token_owner("t0k").replace("token:", "user:"),
            "token:t0k".into(),
        ];
        for b in &buyers {
            for o in &owners {
                assert_eq!(b.owns(o), b.owner_keys().contains(o), "{b:?} {o}");
            }
        }
        assert!(
            buyers[1].owns("user:12") && !buyers[1].owns("user:1") && buyers[2].owns(&token_owner("t0k"))
        );
    }
}
