//! Credentials from Secrets, used only when the Secret opts in with the
//! `roster.dev/credentials: "true"` label ([`roster_api::tenant::CREDENTIALS_LABEL`]).
//! The same rule serves the Tenant's `CredentialsFound` condition and the effects, so
//! what the condition promises is what the effects do.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use roster_api::tenant::{CREDENTIALS_LABEL, SecretKeyRef};
use thiserror::Error;

/// Why a Secret's key cannot be used. Messages name the Secret and key (object names,
/// never values) and say how to fix it.
#[derive(Debug, Error)]
pub enum CredentialsError {
    #[error("Secret {name:?} does not exist in this namespace")]
    Missing { name: String },
    #[error(
        "Secret {name:?} is not labelled {CREDENTIALS_LABEL}=true, so roster does not use it; if it is meant for roster: kubectl label secret {name} {CREDENTIALS_LABEL}=true"
    )]
    NotOptedIn { name: String },
    #[error("Secret {name:?} has no key {key:?}")]
    NoKey { name: String, key: String },
    #[error("cannot read Secret {name:?}: {source}")]
    Api { name: String, source: kube::Error },
}

impl CredentialsError {
    /// A stable, CamelCase reason for conditions.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing { .. } | Self::NoKey { .. } => "SecretMissing",
            Self::NotOptedIn { .. } => "SecretNotOptedIn",
            Self::Api { .. } => "SecretUnreadable",
        }
    }
}

/// Whether the Secret carries the opt-in label.
pub fn opted_in(secret: &Secret) -> bool {
    secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(CREDENTIALS_LABEL))
        .is_some_and(|v| v == "true")
}

/// The key's bytes, if the Secret exists, opts in and has the key.
pub fn key_of(secret: &Secret, reference: &SecretKeyRef) -> Result<Vec<u8>, CredentialsError> {
    if !opted_in(secret) {
        return Err(CredentialsError::NotOptedIn {
            name: reference.name.clone(),
        });
    }
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&reference.key))
        .map(|b| b.0.clone())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(&reference.key))
                .map(|s| s.clone().into_bytes())
        });
    value.ok_or_else(|| CredentialsError::NoKey {
        name: reference.name.clone(),
        key: reference.key.clone(),
    })
}

/// Reads the key a Tenant names, under the opt-in rule.
pub async fn read(
    client: &Client,
    namespace: &str,
    reference: &SecretKeyRef,
) -> Result<Vec<u8>, CredentialsError> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(&reference.name)
        .await
        .map_err(|source| CredentialsError::Api {
            name: reference.name.clone(),
            source,
        })?
        .ok_or_else(|| CredentialsError::Missing {
            name: reference.name.clone(),
        })?;
    key_of(&secret, reference)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use kube::api::ObjectMeta;
    use std::collections::BTreeMap;

    fn secret(labelled: bool) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some("db".into()),
                labels: labelled
                    .then(|| BTreeMap::from([(CREDENTIALS_LABEL.to_string(), "true".to_string())])),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(
                "token".to_string(),
                ByteString(b"s3cret".to_vec()),
            )])),
            ..Default::default()
        }
    }

    #[test]
    fn only_secrets_that_opt_in_are_used() {
        let reference = SecretKeyRef {
            name: "db".into(),
            key: "token".into(),
        };
        assert_eq!(key_of(&secret(true), &reference).unwrap(), b"s3cret");
        let refused = key_of(&secret(false), &reference).unwrap_err();
        assert_eq!(refused.reason(), "SecretNotOptedIn");
        let text = refused.to_string();
        assert!(
            text.contains("kubectl label secret db roster.dev/credentials=true"),
            "{text}"
        );
        assert!(!text.contains("s3cret"));
        let other = SecretKeyRef {
            name: "db".into(),
            key: "password".into(),
        };
        assert_eq!(
            key_of(&secret(true), &other).unwrap_err().reason(),
            "SecretMissing"
        );
    }
}
