//! A source's Secret: several keys of one Secret (`username` and `privateKey` or
//! `password`; `token`, or `clientId` and `clientSecret`), under the same opt-in rule
//! as every credential roster reads (`crate::credentials`).

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use roster_api::tenant::SecretKeyRef;

use crate::credentials::{self, CredentialsError};

/// A Secret that opted in.
pub struct SourceSecret {
    name: String,
    secret: Secret,
}

/// Reads the Secret; refuses one without the opt-in label.
pub async fn read(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<SourceSecret, CredentialsError> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|source| CredentialsError::Api {
            name: name.to_string(),
            source,
        })?
        .ok_or_else(|| CredentialsError::Missing {
            name: name.to_string(),
        })?;
    if !credentials::opted_in(&secret) {
        return Err(CredentialsError::NotOptedIn {
            name: name.to_string(),
        });
    }
    Ok(SourceSecret {
        name: name.to_string(),
        secret,
    })
}

impl SourceSecret {
    /// A key's value as text. Line breaks at the end (from `--from-file`) are dropped,
    /// except from a private key, whose PEM-style armour ends with one.
    pub fn string(&self, key: &str) -> Result<String, CredentialsError> {
        let bytes = credentials::key_of(
            &self.secret,
            &SecretKeyRef {
                name: self.name.clone(),
                key: key.into(),
            },
        )?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Ok(if key == "privateKey" {
            text
        } else {
            text.trim_end_matches(['\r', '\n']).to_string()
        })
    }

    /// A key's value, if the Secret has it.
    pub fn optional(&self, key: &str) -> Option<String> {
        self.string(key).ok()
    }
}
