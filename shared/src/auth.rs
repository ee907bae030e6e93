//! Bearer JWT auth: HS256 only, `exp` required. Anything else is 401.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use crate::App;
use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, epoch seconds (required).
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

impl Claims {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

pub fn issue(secret: &str, claims: &Claims) -> String {
    encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes()))
        .expect("HS256 signing with an in-memory key cannot fail")
}

pub fn verify(secret: &str, token: &str) -> Result<Claims, ApiError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 5;
    validation.set_required_spec_claims(&["exp", "sub"]);
    decode::<Claims>(token, &DecodingKey::from_secret(secret.as_bytes()), &validation)
        .map(|d| d.claims)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            let why = match e.kind() {
                ErrorKind::ExpiredSignature => "token expired",
                ErrorKind::InvalidSignature => "token signature is invalid",
                ErrorKind::InvalidAlgorithm => "token algorithm must be HS256",
                ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim (sub, exp)",
                _ => "token is malformed",
            };
            ApiError::Unauthorized(why.into())
        })
}

/// The authenticated caller. Extracting it rejects the request with 401 unless a valid
/// `Authorization: Bearer <JWT>` header is present.
#[derive(Debug, Clone)]
pub struct AuthUser(pub Claims);

impl<S> FromRequestParts<S> for AuthUser
where
    App: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = App::from_ref(state);
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer token".into()))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::Unauthorized("Authorization must be `Bearer <token>`".into()))?;
        verify(&app.config.jwt_secret, token).map(AuthUser)
    }
}

/// A caller with the `admin` role (403 otherwise).
#[derive(Debug, Clone)]
pub struct AdminUser(pub Claims);

impl<S> FromRequestParts<S> for AdminUser
where
    App: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let AuthUser(claims) = AuthUser::from_request_parts(parts, state).await?;
        if !claims.has_role("admin") {
            return Err(ApiError::Forbidden("the admin role is required".into()));
        }
        Ok(AdminUser(claims))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "21".into(),
            exp,
            email: Some("test7@test.com".into()),
            phone: None,
            name: None,
            roles: vec![],
        }
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn round_trips_a_valid_token() {
        let c = claims(now() + 60);
        assert_eq!(verify("k", &issue("k", &c)).unwrap(), c);
    }

    #[test]
    fn rejects_expired_wrong_key_none_and_garbage() {
        let expired = issue("k", &claims(now() - 3600));
        assert_eq!(verify("k", &expired).unwrap_err(), ApiError::Unauthorized("token expired".into()));
        let wrong = issue("other", &claims(now() + 60));
        assert!(matches!(verify("k", &wrong), Err(ApiError::Unauthorized(_))));
        let header = B64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = B64.encode(serde_json::to_vec(&claims(now() + 60)).unwrap());
        assert!(matches!(verify("k", &format!("{header}.{body}.")), Err(ApiError::Unauthorized(_))));
        assert!(matches!(verify("k", "not-a-jwt"), Err(ApiError::Unauthorized(_))));
        let no_exp = encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "1"}),
            &EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert!(matches!(verify("k", &no_exp), Err(ApiError::Unauthorized(_))));
    }
}
