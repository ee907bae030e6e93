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

    /// How the API shows this user (the id as a JSON number when it is one).
    pub fn view(&self) -> UserView<'_> {
        UserView {
            id: UserId(&self.id),
            email: self.email.as_deref(),
            phone: self.phone.as_deref(),
            name: self.name.as_deref(),
        }
    }
}

/// A user id as the API shows it: a JSON number when it is one (the seed shows integer user
/// ids), else a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserId<'a>(pub &'a str);

impl Serialize for UserId<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.parse::<i64>() {
            Ok(n) => s.serialize_i64(n),
            Err(_) => s.serialize_str(self.0),
        }
    }
}

/// A user as answers show them: `{"id", "email", "phone", "name"}`, `null` for what is unknown.
/// Borrowed from the profile it shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UserView<'a> {
    pub id: UserId<'a>,
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub name: Option<&'a str>,
}

impl UserView<'_> {
    /// A party whose profile was never recorded (they have not called the API yet).
    pub fn id_only(id: &str) -> UserView<'_> {
        UserView { id: UserId(id), email: None, phone: None, name: None }
    }
}

fn pk(id: &str) -> String {
    ["user#", id].concat()
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
    Ok(Some(WriteOp::Put { item: Item::typed(pk(&fresh.id), "profile", fresh.clone())?, cond: Cond::Always }))
}

/// Records the caller's profile from their claims; writes only when it changed.
pub async fn sync(app: &App, claims: &Claims) -> ApiResult<User> {
    let fresh = User::from_claims(claims);
    if get(app, &fresh.id).await?.as_ref() != Some(&fresh) {
        // Last writer wins: the newest token's claims are the truth for a profile.
        app.store.put(Item::typed(pk(&fresh.id), "profile", fresh.clone())?, Cond::Always).await?;
    }
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_show_as_numbers_when_they_are() {
        let known =
            User {
                id: "21".into(), email: Some("a@b.ru".into()), phone: None, name: Some("Анна".into())
            };
        assert_eq!(
            serde_json::to_string(&known.view()).unwrap(),
            r#"{"id":21,"email":"a@b.ru","phone":null,"name":"Анна"}"#
        );
        assert_eq!(
            serde_json::to_string(&UserView::id_only("auth0|x7")).unwrap(),
            r#"{"id":"auth0|x7","email":null,"phone":null,"name":null}"#
        );
        // Past i64, an id stays a string rather than losing digits.
        assert_eq!(
            serde_json::to_string(&UserId("92233720368547758070")).unwrap(),
            r#""92233720368547758070""#
        );
    }
}
