//! Users: identified by the JWT `sub`; their profile (email, phone, name) is kept up to
//! date from the token's claims, so deals can show the other party.

use serde::{Deserialize, Serialize};

use crate::App;
use crate::auth::Claims;
use crate::error::ApiResult;
use crate::store::{Cond, Item, WriteOp};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub name: Option<String>,
}

impl User {
    pub fn from_claims(c: &Claims) -> User {
        User { id: c.sub.clone(), email: c.email.clone(), phone: c.phone.clone(), name: c.name.clone() }
    }

    /// The id as a JSON number when it is one (the seed shows integer user ids).
    pub fn id_json(id: &str) -> serde_json::Value {
        id.parse::<i64>().map(Into::into).unwrap_or_else(|_| id.into())
    }

    /// A party whose profile was never recorded (they have not called the API yet).
    pub fn id_only(id: &str) -> serde_json::Value {
        serde_json::json!({ "id": User::id_json(id), "email": null, "phone": null, "name": null })
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": User::id_json(&self.id),
            "email": self.email,
            "phone": self.phone,
            "name": self.name,
        })
    }
}

fn pk(id: &str) -> String {
    format!("user#{id}")
}

pub async fn get(app: &App, id: &str) -> ApiResult<Option<User>> {
    Ok(match app.store.get(&pk(id), "profile").await? {
        Some(item) => Some(item.decode()?),
        None => None,
    })
}

/// The write that records `fresh` as its user's profile (last writer wins: the newest
/// token's claims are the truth), or `None` when `known` says it is stored already.
pub fn record_op(fresh: &User, known: Option<&User>) -> ApiResult<Option<WriteOp>> {
    if known == Some(fresh) {
        return Ok(None);
    }
    Ok(Some(WriteOp::Put { item: Item::from_value(pk(&fresh.id), "profile", fresh)?, cond: Cond::Always }))
}

/// Records the caller's profile from their claims; writes only when it changed.
pub async fn sync(app: &App, claims: &Claims) -> ApiResult<User> {
    let fresh = User::from_claims(claims);
    if get(app, &fresh.id).await?.as_ref() != Some(&fresh) {
        // Last writer wins: the newest token's claims are the truth for a profile.
        app.store.put(Item::from_value(pk(&fresh.id), "profile", &fresh)?, Cond::Always).await?;
    }
    Ok(fresh)
}
