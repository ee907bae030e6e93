//! Bearer JWT auth: HS256 only, `exp` and `sub` required, `nbf` honoured, `iss` and `aud`
//! checked when `JWT_ISSUER` / `JWT_AUDIENCE` are set, and no token lives longer than
//! `JWT_MAX_AGE` (default 24 h: from its `iat`, or from now when it has none). During a key
//! rotation a token signed with `JWT_SECRET_PREVIOUS` is accepted too. Anything else is 401.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::request::Parts;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use crate::App;
use crate::error::{ApiError, ApiResult};

/// Seconds of clock skew allowed on `exp`, `nbf` and `iat`.
const LEEWAY: u64 = 5;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, epoch seconds (required).
    pub exp: i64,
    /// Issued at, epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
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
    /// Claims for `sub` valid for `ttl` from now.
    pub fn new(sub: impl Into<String>, ttl: chrono::Duration) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: sub.into(),
            exp: now + ttl.num_seconds(),
            iat: Some(now),
            email: None,
            phone: None,
            name: None,
            roles: vec![],
        }
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// How tokens are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtRules {
    /// `JWT_SECRET`: signs new tokens, verifies them.
    pub secret: String,
    /// `JWT_SECRET_PREVIOUS`: still verifies, during a rotation.
    pub previous: Option<String>,
    /// `JWT_ISSUER`: the `iss` every token must carry.
    pub issuer: Option<String>,
    /// `JWT_AUDIENCE`: an `aud` every token must carry.
    pub audience: Option<String>,
    /// `JWT_MAX_AGE`: the longest a token may live.
    pub max_age: Duration,
}

impl JwtRules {
    pub fn new(secret: impl Into<String>) -> JwtRules {
        JwtRules {
            secret: secret.into(),
            previous: None,
            issuer: None,
            audience: None,
            max_age: Duration::from_secs(24 * 3600),
        }
    }
}

/// The cryptography behind `jsonwebtoken`: HMAC-SHA256 and nothing else. Its stock providers
/// bring RSA, ECDSA and EdDSA along (a few hundred KiB in every binary that checks a token);
/// a token under any other algorithm is refused before any key is touched.
mod hs256 {
    use hmac::{Hmac, Mac};
    use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
    use jsonwebtoken::errors::{ErrorKind, Result};
    use jsonwebtoken::signature::{Error, Signer, Verifier};
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
    use sha2::Sha256;

    struct Hs256(Hmac<Sha256>);

    impl Hs256 {
        fn new(alg: &Algorithm, key: &[u8]) -> Result<Hs256> {
            if *alg != Algorithm::HS256 {
                return Err(ErrorKind::InvalidAlgorithm.into());
            }
            Ok(Hs256(Hmac::new_from_slice(key).map_err(|_| ErrorKind::InvalidKeyFormat)?))
        }
    }

    impl Signer<Vec<u8>> for Hs256 {
        fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, Error> {
            let mut mac = self.0.clone();
            mac.update(msg);
            Ok(mac.finalize().into_bytes().to_vec())
        }
    }

    impl Verifier<Vec<u8>> for Hs256 {
        fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), Error> {
            let mut mac = self.0.clone();
            mac.update(msg);
            mac.verify_slice(signature).map_err(Error::from_source)
        }
    }

    impl JwtSigner for Hs256 {
        fn algorithm(&self) -> Algorithm {
            Algorithm::HS256
        }
    }

    impl JwtVerifier for Hs256 {
        fn algorithm(&self) -> Algorithm {
            Algorithm::HS256
        }
    }

    fn signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
        Ok(Box::new(Hs256::new(alg, key.as_bytes())?))
    }

    fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
        Ok(Box::new(Hs256::new(alg, key.try_get_as_bytes()?)?))
    }

    pub(super) static PROVIDER: CryptoProvider = CryptoProvider {
        signer_factory: signer,
        verifier_factory: verifier,
        key_utils: KeyUtils::new_unimplemented(),
    };
}

/// Installs the HS256-only provider as `jsonwebtoken`'s (once per process; later calls do
/// nothing). Everything here that signs or verifies calls it first.
pub fn install_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = hs256::PROVIDER.install_default();
    });
}

pub fn issue(secret: &str, claims: &Claims) -> String {
    install_crypto();
    encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes()))
        .expect("HS256 signing with an in-memory key cannot fail")
}

fn unauthorized(e: &jsonwebtoken::errors::Error) -> ApiError {
    let why = match e.kind() {
        ErrorKind::ExpiredSignature => "token expired",
        ErrorKind::ImmatureSignature => "token not valid yet (nbf)",
        ErrorKind::InvalidSignature => "token signature is invalid",
        ErrorKind::InvalidAlgorithm => "token algorithm must be HS256",
        ErrorKind::InvalidIssuer => "token issuer is not accepted",
        ErrorKind::InvalidAudience => "token audience is not accepted",
        ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim",
        _ => "token is malformed",
    };
    ApiError::Unauthorized(why.into())
}

/// Tokens this thread verified recently, by token: a client sends the same token with every
/// call for hours, and a signature check with its parsing is the larger part of a small call's
/// work. A hit is the exact token under the exact rules, and it is checked again for expiry and
/// maximum age; anything else is verified in full. One cache per thread of the runtime, so that
/// no lock is shared by them (the one lock it had was taken twice a call by both threads, and
/// its cache line moved between their cores). Bounded: emptied when full. Hashed with foldhash
/// (seeded per process) instead of SipHash, a tenth of the work on a 200-byte token: only tokens
/// whose signature verified are kept, so no caller can choose keys that collide.
type Verified = HashMap<String, (JwtRules, Arc<Claims>), foldhash::fast::RandomState>;
thread_local! {
    static VERIFIED: std::cell::RefCell<Verified> = std::cell::RefCell::new(Verified::default());
}
const VERIFIED_MAX: usize = 4096;

/// Verifies a token under `rules`: the current key, then the previous one. The claims are
/// shared with the cache, not copied for each request.
pub fn verify(rules: &JwtRules, token: &str) -> Result<Arc<Claims>, ApiError> {
    let hit = VERIFIED
        .with_borrow(|cache| cache.get(token).filter(|(r, _)| r == rules).map(|(_, c)| Arc::clone(c)));
    let now = now_secs();
    if let Some(claims) = hit.filter(|c| c.exp >= now - LEEWAY as i64) {
        within_max_age(&claims, rules.max_age, now)?;
        return Ok(claims);
    }
    let claims = Arc::new(verify_signed(rules, token)?);
    VERIFIED.with_borrow_mut(|cache| {
        if cache.len() >= VERIFIED_MAX {
            cache.clear();
        }
        cache.insert(token.to_owned(), (rules.clone(), Arc::clone(&claims)));
    });
    Ok(claims)
}

/// Now in whole seconds since the epoch, as tokens count time (the clock read alone, without
/// a calendar date made of it).
fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// [`verify`] without the cache: the signature, the registered claims, the maximum age.
fn verify_signed(rules: &JwtRules, token: &str) -> Result<Claims, ApiError> {
    install_crypto();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = LEEWAY;
    validation.validate_nbf = true;
    let mut required = vec!["exp", "sub"];
    if let Some(iss) = &rules.issuer {
        validation.set_issuer(&[iss]);
        required.push("iss");
    }
    match &rules.audience {
        Some(aud) => {
            validation.set_audience(&[aud]);
            required.push("aud");
        }
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    let keys = std::iter::once(&rules.secret).chain(rules.previous.as_ref()).filter(|k| !k.is_empty());
    let mut last = ApiError::Unauthorized("token signature is invalid".into());
    for key in keys {
        match decode::<Claims>(token, &DecodingKey::from_secret(key.as_bytes()), &validation) {
            Ok(d) => return within_max_age(&d.claims, rules.max_age, now_secs()).map(|()| d.claims),
            Err(e) if *e.kind() == ErrorKind::InvalidSignature => last = unauthorized(&e),
            Err(e) => return Err(unauthorized(&e)),
        }
    }
    Err(last)
}

/// No token lives longer than `max_age`: from its `iat` (which must not be in the future),
/// or from `now` when it has none.
fn within_max_age(c: &Claims, max_age: Duration, now: i64) -> Result<(), ApiError> {
    let (max, leeway) = (max_age.as_secs() as i64, LEEWAY as i64);
    let start = match c.iat {
        Some(iat) if iat > now.saturating_add(leeway) => {
            return Err(ApiError::Unauthorized("token issued in the future (iat)".into()));
        }
        // Saturating: an `iat` near `i64::MIN` must not wrap round to a young token.
        Some(iat) if now.saturating_sub(iat) > max + leeway => {
            return Err(ApiError::Unauthorized("token is older than JWT_MAX_AGE".into()));
        }
        Some(iat) => iat,
        None => now,
    };
    if c.exp.saturating_sub(start) > max + leeway {
        return Err(ApiError::Unauthorized("token lives longer than JWT_MAX_AGE".into()));
    }
    Ok(())
}

/// The authenticated caller. Extracting it rejects the request with 401 unless a valid
/// `Authorization: Bearer <JWT>` header is present.
#[derive(Debug, Clone)]
pub struct AuthUser(pub Arc<Claims>);

impl AuthUser {
    pub async fn from_parts(parts: &Parts, app: &App) -> ApiResult<Self> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer token".into()))?;
        // The prefix on the raw bytes, then the token as UTF-8 (a JWT is ASCII; anything else
        // fails its check as malformed): `HeaderValue::to_str`'s byte-by-byte scan of a
        // 200-byte token was 1% of a small call's time.
        let raw = header.as_bytes();
        let token = raw
            .strip_prefix(b"Bearer ")
            .or_else(|| raw.strip_prefix(b"bearer "))
            .and_then(|t| std::str::from_utf8(t).ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::Unauthorized("Authorization must be `Bearer <token>`".into()))?;
        verify(&app.config.jwt, token).map(AuthUser)
    }
}

/// A caller with the `admin` role (403 otherwise).
#[derive(Debug, Clone)]
pub struct AdminUser(pub Arc<Claims>);

impl AdminUser {
    pub async fn from_parts(parts: &Parts, app: &App) -> ApiResult<Self> {
        let AuthUser(claims) = AuthUser::from_parts(parts, app).await?;
        if !claims.has_role("admin") {
            return Err(ApiError::Forbidden("the admin role is required".into()));
        }
        Ok(AdminUser(claims))
    }
}

/// Staff at the door: a caller with the `gate` or the `admin` role (403 otherwise).
#[derive(Debug, Clone)]
pub struct GateUser(pub Arc<Claims>);

impl GateUser {
    pub async fn from_parts(parts: &Parts, app: &App) -> ApiResult<Self> {
        let AuthUser(claims) = AuthUser::from_parts(parts, app).await?;
        if !claims.has_role("gate") && !claims.has_role("admin") {
            return Err(ApiError::Forbidden("the gate or admin role is required".into()));
        }
        Ok(GateUser(claims))
    }
}

/// Makes each type an axum extractor through its `from_parts(&Parts, &App)`.
#[macro_export]
macro_rules! extract_from_parts {
    ($($t:ty),+) => {$(
        impl<S> axum::extract::FromRequestParts<S> for $t
        where
            $crate::App: axum::extract::FromRef<S>,
            S: Send + Sync,
        {
            type Rejection = $crate::error::ApiError;

            async fn from_request_parts(
                parts: &mut axum::http::request::Parts,
                state: &S,
            ) -> Result<Self, Self::Rejection> {
                <$t>::from_parts(parts, &<$crate::App as axum::extract::FromRef<S>>::from_ref(state)).await
            }
        }
    )+};
}

extract_from_parts!(AuthUser, AdminUser, GateUser);

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use serde_json::json;

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn claims(exp: i64) -> Claims {
        Claims {
            email: Some("test7@test.com".into()),
            ..Claims::new("21", chrono::Duration::seconds(exp - now()))
        }
    }

    fn raw(key: &str, body: serde_json::Value) -> String {
        install_crypto();
        encode(&Header::new(Algorithm::HS256), &body, &EncodingKey::from_secret(key.as_bytes())).unwrap()
    }

    fn rules() -> JwtRules {
        JwtRules::new("k")
    }

    #[test]
    fn the_crypto_provider_knows_hs256_only() {
        install_crypto();
        let key = EncodingKey::from_secret(b"k");
        for alg in [Algorithm::HS384, Algorithm::HS512] {
            let e = encode(&Header::new(alg), &claims(now() + 60), &key).unwrap_err();
            assert_eq!(*e.kind(), ErrorKind::InvalidAlgorithm, "{alg:?}");
        }
        let token = raw("k", json!({"sub": "1", "exp": now() + 60}));
        let parts: Vec<&str> = token.split('.').collect();
        let msg = format!("{}.{}", parts[0], parts[1]);
        assert!(
            jsonwebtoken::crypto::verify(
                parts[2],
                msg.as_bytes(),
                &DecodingKey::from_secret(b"k"),
                Algorithm::HS256
            )
            .unwrap()
        );
        assert!(
            !jsonwebtoken::crypto::verify(
                parts[2],
                msg.as_bytes(),
                &DecodingKey::from_secret(b"x"),
                Algorithm::HS256
            )
            .unwrap()
        );
    }

    #[test]
    fn round_trips_a_valid_token() {
        let c = claims(now() + 60);
        assert_eq!(*verify(&rules(), &issue("k", &c)).unwrap(), c);
    }

    #[test]
    fn rejects_expired_wrong_key_none_and_garbage() {
        let expired = issue("k", &claims(now() - 3600));
        assert_eq!(verify(&rules(), &expired).unwrap_err(), ApiError::Unauthorized("token expired".into()));
        let wrong = issue("other", &claims(now() + 60));
        assert!(matches!(verify(&rules(), &wrong), Err(ApiError::Unauthorized(_))));
        let header = B64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = B64.encode(serde_json::to_vec(&claims(now() + 60)).unwrap());
        assert!(matches!(verify(&rules(), &format!("{header}.{body}.")), Err(ApiError::Unauthorized(_))));
        assert!(matches!(verify(&rules(), "not-a-jwt"), Err(ApiError::Unauthorized(_))));
        let no_exp = raw("k", json!({"sub": "1"}));
        assert!(matches!(verify(&rules(), &no_exp), Err(ApiError::Unauthorized(_))));
    }

    #[test]
    fn a_remembered_token_is_checked_again() {
        // Verified under one key, the same token is refused under other rules.
        let token = issue("k", &claims(now() + 60));
        assert!(verify(&rules(), &token).is_ok());
        assert!(matches!(verify(&JwtRules::new("other"), &token), Err(ApiError::Unauthorized(_))));
        let mut short = rules();
        short.max_age = Duration::from_secs(1);
        let old = Claims { iat: Some(now() - 120), ..claims(now() + 60) };
        let old_token = issue("k", &old);
        assert!(verify(&rules(), &old_token).is_ok());
        assert!(matches!(verify(&short, &old_token), Err(ApiError::Unauthorized(_))));
        // A remembered token past its expiry is refused as any expired token is.
        let lapsed = claims(now() - 3600);
        let token = issue("k", &lapsed);
        VERIFIED.with_borrow_mut(|c| c.insert(token.clone(), (rules(), Arc::new(lapsed))));
        assert_eq!(verify(&rules(), &token).unwrap_err(), ApiError::Unauthorized("token expired".into()));
        // Its maximum age too.
        let aged = Claims { iat: Some(now() - 7200), ..claims(now() + 60) };
        let token = issue("k", &aged);
        let mut hour = rules();
        hour.max_age = Duration::from_secs(3600);
        VERIFIED.with_borrow_mut(|c| c.insert(token.clone(), (hour.clone(), Arc::new(aged))));
        assert!(matches!(verify(&hour, &token), Err(ApiError::Unauthorized(_))));
    }

    #[test]
    fn honours_nbf() {
        let later = raw("k", json!({"sub": "1", "exp": now() + 600, "nbf": now() + 300}));
        assert_eq!(
            verify(&rules(), &later).unwrap_err(),
            ApiError::Unauthorized("token not valid yet (nbf)".into())
        );
        let now_ok = raw("k", json!({"sub": "1", "exp": now() + 600, "nbf": now() - 1}));
        assert!(verify(&rules(), &now_ok).is_ok());
    }

    #[test]
    fn checks_issuer_and_audience_when_set() {
        let r = JwtRules {
            issuer: Some("https://id.example".into()),
            audience: Some("tickets".into()),
            ..rules()
        };
        let good =
            raw("k", json!({"sub": "1", "exp": now() + 60, "iss": "https://id.example", "aud": "tickets"}));
        assert!(verify(&r, &good).is_ok());
        for bad in [
            json!({"sub": "1", "exp": now() + 60, "iss": "https://evil.example", "aud": "tickets"}),
            json!({"sub": "1", "exp": now() + 60, "iss": "https://id.example", "aud": "other"}),
            json!({"sub": "1", "exp": now() + 60, "aud": "tickets"}),
            json!({"sub": "1", "exp": now() + 60, "iss": "https://id.example"}),
        ] {
            assert!(matches!(verify(&r, &raw("k", bad.clone())), Err(ApiError::Unauthorized(_))), "{bad}");
        }
        // Unset: not checked.
        assert!(verify(&rules(), &good).is_ok());
    }

    #[test]
    fn no_token_lives_longer_than_the_maximum() {
        let day = 24 * 3600;
        let long = raw("k", json!({"sub": "1", "exp": now() + 2 * day}));
        assert!(matches!(verify(&rules(), &long), Err(ApiError::Unauthorized(_))), "no iat, 2 days left");
        let old = raw("k", json!({"sub": "1", "iat": now() - 2 * day, "exp": now() + 60}));
        assert!(matches!(verify(&rules(), &old), Err(ApiError::Unauthorized(_))), "issued 2 days ago");
        let future = raw("k", json!({"sub": "1", "iat": now() + 600, "exp": now() + 900}));
        assert!(matches!(verify(&rules(), &future), Err(ApiError::Unauthorized(_))));
        let fine = raw("k", json!({"sub": "1", "iat": now() - 3600, "exp": now() + day - 3600}));
        assert!(verify(&rules(), &fine).is_ok());
        let short = JwtRules { max_age: Duration::from_secs(600), ..rules() };
        assert!(verify(&short, &fine).is_err());
        // Times at the ends of i64 do not wrap round into a short life.
        for (iat, exp) in
            [(i64::MIN, now() + 60), (i64::MIN, i64::MAX), (now(), i64::MAX), (i64::MIN + 1, now() + 60)]
        {
            let odd = raw("k", json!({"sub": "1", "iat": iat, "exp": exp}));
            assert!(matches!(verify(&rules(), &odd), Err(ApiError::Unauthorized(_))), "iat {iat}, exp {exp}");
        }
    }

    #[test]
    fn accepts_the_previous_key_during_a_rotation() {
        let old = issue("old", &claims(now() + 60));
        assert!(verify(&rules(), &old).is_err());
        let rotating = JwtRules { secret: "new".into(), previous: Some("old".into()), ..rules() };
        assert!(verify(&rotating, &old).is_ok());
        assert!(verify(&rotating, &issue("new", &claims(now() + 60))).is_ok());
        assert!(verify(&rotating, &issue("other", &claims(now() + 60))).is_err());
    }
}
