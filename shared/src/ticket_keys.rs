//! The key that signs tickets' QR payloads: Ed25519, derived from `TICKET_SIGNING_KEY` (never
//! the JWT secret). A gate scanner holds only the public key, served as a JSON Web Key Set at
//! [`WELL_KNOWN_PATH`], and checks a ticket offline; whoever holds a scanner can neither mint
//! tickets nor tokens.
//!
//! A signed payload is its fields, the key id and the signature, joined by `;`:
//! `ZOOTICKET;<ticket_id>;<payment_id>;<visit_date>;<visit_time>;<ticket_type>;<kid>;<sig>` for a
//! zoo ticket, `TICKET;<bar_code>;<order_id>;<event_id>;<seat_id>;<kid>;<sig>` for a seat. `sig` is
//! the Ed25519 signature (RFC 8032) of every byte before its `;` (the key id included), in
//! base64url without padding; `kid` is the first 16 hex digits of the SHA-256 of the public key.
//! Ed25519 signatures are deterministic: the same ticket always has the same payload.
//!
//! The signing key's 32-byte seed is the SHA-256 of a fixed label and the configured secret, so
//! any strong secret (the documented `openssl rand -base64 48`) is a key, and the same secret
//! always gives the same public key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Where the public keys are served (every deployment serves them; they are public).
pub const WELL_KNOWN_PATH: &str = "/.well-known/ticket-keys.json";

const SEED_LABEL: &[u8] = b"ticket-signing-key/ed25519/v1\0";

/// The signing key of this deployment.
pub struct TicketKey {
    signing: SigningKey,
    kid: String,
}

impl TicketKey {
    pub fn from_secret(secret: &str) -> TicketKey {
        let seed: [u8; 32] =
            Sha256::new().chain_update(SEED_LABEL).chain_update(secret.as_bytes()).finalize().into();
        let signing = SigningKey::from_bytes(&seed);
        let kid = kid_of(&signing.verifying_key());
        TicketKey { signing, kid }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// `fields` joined by `;`, then the key id and the signature.
    pub fn sign(&self, fields: &[&str]) -> String {
        let signed = format!("{};{}", fields.join(";"), self.kid);
        let sig = self.signing.sign(signed.as_bytes());
        format!("{signed};{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey { key: self.signing.verifying_key(), kid: self.kid.clone() }
    }

    /// The JSON Web Key Set a scanner loads (RFC 8037: `OKP`, `Ed25519`).
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: vec![Jwk {
                kty: "OKP",
                crv: "Ed25519",
                alg: "EdDSA",
                use_: "sig",
                kid: self.kid.clone(),
                x: URL_SAFE_NO_PAD.encode(self.signing.verifying_key().as_bytes()),
            }],
        }
    }
}

/// The key of this deployment, from its configuration. A function deployed without the secret
/// (its `SECRETS` list misses it) must neither sign nor publish a key.
pub fn of(config: &crate::Config) -> Result<TicketKey, crate::ApiError> {
    if config.ticket_key.trim().is_empty() {
        return Err(crate::ApiError::Internal("TICKET_SIGNING_KEY is not available to this function".into()));
    }
    Ok(TicketKey::from_secret(&config.ticket_key))
}

fn kid_of(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

#[derive(Debug, Serialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

#[derive(Debug, Serialize)]
pub struct Jwk {
    pub kty: &'static str,
    pub crv: &'static str,
    pub alg: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub kid: String,
    pub x: String,
}

/// A key a payload is checked with.
pub struct PublicKey {
    key: VerifyingKey,
    kid: String,
}

/// Why a payload is not a genuine ticket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Forged {
    #[error("not a signed ticket payload")]
    Malformed,
    #[error("signed with a key this deployment does not know")]
    UnknownKey,
    #[error("the signature does not match")]
    BadSignature,
}

impl PublicKey {
    /// The payload's fields (without key id and signature) if this key signed it.
    pub fn verify<'a>(&self, payload: &'a str) -> Result<Vec<&'a str>, Forged> {
        let (signed, sig) = payload.rsplit_once(';').ok_or(Forged::Malformed)?;
        let (body, kid) = signed.rsplit_once(';').ok_or(Forged::Malformed)?;
        let sig: [u8; 64] =
            URL_SAFE_NO_PAD.decode(sig).ok().and_then(|b| b.try_into().ok()).ok_or(Forged::Malformed)?;
        if kid != self.kid {
            return Err(Forged::UnknownKey);
        }
        self.key.verify(signed.as_bytes(), &Signature::from_bytes(&sig)).map_err(|_| Forged::BadSignature)?;
        Ok(body.split(';').collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_verifies_with_the_public_key_and_nothing_else() {
        let key = TicketKey::from_secret("a strong secret of this deployment, 48 bytes...");
        let payload = key.sign(&["ZOOTICKET", "P-1-1", "P-1", "2027-01-02", "10:00", "adult"]);
        assert_eq!(
            key.public().verify(&payload).unwrap(),
            vec!["ZOOTICKET", "P-1-1", "P-1", "2027-01-02", "10:00", "adult"]
        );
        // Deterministic: the same ticket, the same payload.
        assert_eq!(payload, key.sign(&["ZOOTICKET", "P-1-1", "P-1", "2027-01-02", "10:00", "adult"]));
        // A changed field, another key, a cut signature.
        let child = payload.replace(";adult;", ";child;");
        assert_eq!(key.public().verify(&child), Err(Forged::BadSignature));
        let other = TicketKey::from_secret("another deployment's secret, just as strong....");
        assert_eq!(other.public().verify(&payload), Err(Forged::UnknownKey));
        assert_eq!(key.public().verify(&payload[..payload.len() - 2]), Err(Forged::Malformed));
        assert_eq!(key.public().verify("ZOOTICKET"), Err(Forged::Malformed));
        // The same secret, the same public key; the kid names it.
        let jwks = key.jwks();
        assert_eq!(
            jwks.keys[0].kid,
            TicketKey::from_secret("a strong secret of this deployment, 48 bytes...").kid
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(&jwks.keys[0].x).unwrap().len(), 32);
    }
}
