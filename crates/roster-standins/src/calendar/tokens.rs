//! What the stand-ins' token endpoints share: RSA keys issued the way the real
//! services issue them (a PKCS#8 private key for the customer, the public half kept
//! to check signatures), JWT verification with `jsonwebtoken`, and a table of issued
//! opaque tokens that expire by the stand-in's clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde::de::DeserializeOwned;

use super::{lock, random_id};

/// Lifetime of an issued token unless a test changes it (what both services issue).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3599);

/// An RSA key pair: the private key as the customer receives it (PKCS#8 PEM), the
/// public key as the service keeps it (SPKI PEM).
#[derive(Clone)]
pub struct IssuedKey {
    pub private_pem: String,
    pub public_pem: String,
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IssuedKey(<redacted>)")
    }
}

/// A fresh 2048-bit RSA key pair (the size Google issues for service accounts).
pub fn rsa_key() -> IssuedKey {
    let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).expect("RSA key generation");
    IssuedKey {
        private_pem: key
            .to_pkcs8_pem(LineEnding::LF)
            .expect("PKCS#8 encoding")
            .to_string(),
        public_pem: key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("SPKI encoding"),
    }
}

/// Checks `jwt`'s signature with `public_pem` for one of `algorithms` and decodes its
/// claims. Times, audience and the rest are the caller's to check (against the
/// stand-in's clock, not the wall clock).
pub fn verified_claims<T: DeserializeOwned>(
    jwt: &str,
    public_pem: &str,
    algorithms: &[Algorithm],
) -> Option<T> {
    let key = DecodingKey::from_rsa_pem(public_pem.as_bytes()).ok()?;
    let header = jsonwebtoken::decode_header(jwt).ok()?;
    if !algorithms.contains(&header.alg) {
        return None;
    }
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<T>(jwt, &key, &validation)
        .ok()
        .map(|data| data.claims)
}

/// Tokens a stand-in issued, each with what it grants, until it expires.
#[derive(Debug)]
pub(crate) struct Issued<G> {
    tokens: Mutex<HashMap<String, (G, DateTime<Utc>)>>,
    lifetime: Mutex<Duration>,
}

impl<G> Default for Issued<G> {
    fn default() -> Self {
        Issued {
            tokens: Mutex::default(),
            lifetime: Mutex::new(DEFAULT_TOKEN_LIFETIME),
        }
    }
}

impl<G: Clone> Issued<G> {
    /// Issues a token for `grant` at `now`; returns it and its lifetime.
    pub(crate) fn issue(&self, prefix: &str, grant: G, now: DateTime<Utc>) -> (String, Duration) {
        let lifetime = *lock(&self.lifetime);
        let token = format!(
            "{prefix}{}",
            random_id(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                96
            )
        );
        let expires = now + TimeDelta::from_std(lifetime).unwrap_or_default();
        lock(&self.tokens).insert(token.clone(), (grant, expires));
        (token, lifetime)
    }

    /// What `token` grants, if the stand-in issued it and it has not expired at `now`.
    pub(crate) fn grant(&self, token: &str, now: DateTime<Utc>) -> Option<G> {
        lock(&self.tokens)
            .get(token)
            .filter(|(_, expires)| now < *expires)
            .map(|(grant, _)| grant.clone())
    }

    pub(crate) fn set_lifetime(&self, lifetime: Duration) {
        *lock(&self.lifetime) = lifetime;
    }

    /// Revokes every token (as deleting a key or a secret eventually does).
    pub(crate) fn revoke_all(&self) {
        lock(&self.tokens).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_expire_by_the_given_clock() {
        let issued: Issued<&'static str> = Issued::default();
        issued.set_lifetime(Duration::from_secs(60));
        let now = Utc::now();
        let (token, lifetime) = issued.issue("t.", "grant", now);
        assert_eq!(lifetime, Duration::from_secs(60));
        assert_eq!(issued.grant(&token, now), Some("grant"));
        assert_eq!(issued.grant(&token, now + TimeDelta::seconds(60)), None);
        assert_eq!(issued.grant("t.other", now), None);
        issued.revoke_all();
        assert_eq!(issued.grant(&token, now), None);
    }

    #[test]
    fn signatures_are_checked_with_the_public_key() {
        let key = rsa_key();
        let other = rsa_key();
        let encoding = jsonwebtoken::EncodingKey::from_rsa_pem(key.private_pem.as_bytes()).unwrap();
        let jwt = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::RS256),
            &serde_json::json!({"iss": "a"}),
            &encoding,
        )
        .unwrap();
        let claims: Option<serde_json::Value> =
            verified_claims(&jwt, &key.public_pem, &[Algorithm::RS256]);
        assert_eq!(claims.unwrap()["iss"], "a");
        assert!(
            verified_claims::<serde_json::Value>(&jwt, &other.public_pem, &[Algorithm::RS256])
                .is_none()
        );
        assert!(
            verified_claims::<serde_json::Value>(&jwt, &key.public_pem, &[Algorithm::PS256])
                .is_none()
        );
        assert!(!format!("{key:?}").contains("PRIVATE"));
    }
}
