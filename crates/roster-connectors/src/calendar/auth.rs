//! Calendar credentials and the bearer tokens minted from them.
//!
//! - Google: the JSON key file of a service account with domain-wide delegation
//!   ([`GoogleServiceAccount`]). Every impersonated user gets an access token of their
//!   own: a JWT signed with the account's RSA key (RS256; `iss` the account, `sub` the
//!   user, `scope` calendar, `aud` the key's `token_uri`, one hour at most) is exchanged
//!   at the token endpoint with the RFC 7523 JWT bearer grant
//!   ([`GoogleDelegatedTokens`]).
//! - Microsoft Graph: an Entra application's client-credentials grant
//!   ([`MicrosoftApp`]), authenticated with a client secret or a certificate-signed
//!   client assertion (PS256, `x5t#S256`); one app token serves every mailbox the
//!   application access policy lets it reach ([`GraphAppTokens`]).
//!
//! Tokens are cached until shortly before they expire ([`TokenCache`]); the caller
//! says what time it is, nothing here reads a clock. A token the service refuses (401)
//! is dropped so the next request mints a fresh one, which also picks up a rotated
//! key: the operator rebuilds the token source when the Secret's content changes.
//!
//! Nothing here shows a key, a secret or a token: `Debug` output is redacted and errors
//! carry the token endpoint's machine error codes only (`invalid_grant`,
//! `unauthorized_client`, `AADSTS7000215`…), never its free-text description.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{CalendarError, execute, http_client, stable_digest, status_error};
use crate::http::sanitize_reason;

/// Google's OAuth 2.0 token endpoint (the `token_uri` of every key file it issues).
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// The scope roster asks Google for: read and write every calendar of the user.
pub const GOOGLE_CALENDAR_SCOPE: &str = "https://www.googleapis.com/auth/calendar";

/// RFC 7523's grant type.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// RFC 7523's client assertion type (Microsoft's certificate credential).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The Microsoft identity platform of the global cloud.
pub const MICROSOFT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";

/// The scope of an app-only Graph token: the application permissions granted to the app.
pub const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Authority hosts of Microsoft's national clouds, accepted besides the global one.
const MICROSOFT_AUTHORITY_HOSTS: &[&str] = &[
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.partner.microsoftonline.cn",
];

/// How long a Google assertion may be valid (Google's limit is one hour).
const GOOGLE_ASSERTION_LIFETIME: TimeDelta = TimeDelta::seconds(3600);

/// How long a Microsoft client assertion is valid (Microsoft asks for 5–10 minutes).
const MICROSOFT_ASSERTION_LIFETIME: TimeDelta = TimeDelta::seconds(600);

/// A cached token is replaced this long before it expires (at most half its lifetime).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Supplies the bearer token for each request.
///
/// `calendar` is whose data the request touches (the `calendarId` or the mailbox in the
/// path): Google mints a token per impersonated user, Graph's app token ignores it.
/// `now` is the caller's time, against which cached tokens are judged.
pub trait TokenSource: Send + Sync {
    fn bearer_token<'a>(
        &'a self,
        calendar: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<String, CalendarError>>;

    /// The service refused `token` (401): forget it, so the next call mints a new one.
    fn refused(&self, calendar: &str, token: &str) {
        let _ = (calendar, token);
    }
}

/// A fixed bearer token (for tests, or a token minted elsewhere). `Debug` never shows it.
#[derive(Clone)]
pub struct StaticToken(String);

impl StaticToken {
    pub fn new(token: impl Into<String>) -> Self {
        StaticToken(token.into())
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken(<redacted>)")
    }
}

impl TokenSource for StaticToken {
    fn bearer_token<'a>(
        &'a self,
        _calendar: &'a str,
        _now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<String, CalendarError>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}

// ---------------------------------------------------------------------------------
// The cache

struct Cached {
    token: String,
    refresh_at: DateTime<Utc>,
}

/// Bearer tokens by key (an impersonated user, or the app), each reused until shortly
/// before it expires. Time comes from the caller.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, Cached>>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.lock().len())
            .finish()
    }
}

impl TokenCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The token cached under `key`, unless it is due for refresh at `now`.
    pub fn get(&self, key: &str, now: DateTime<Utc>) -> Option<String> {
        self.lock()
            .get(key)
            .filter(|c| now < c.refresh_at)
            .map(|c| c.token.clone())
    }

    /// Keeps `token`, minted at `now` and valid for `lifetime`, until
    /// `lifetime - min(REFRESH_MARGIN, lifetime / 2)` from `now`.
    pub fn put(&self, key: &str, token: String, lifetime: Duration, now: DateTime<Utc>) {
        let margin = REFRESH_MARGIN.min(lifetime / 2);
        let keep = TimeDelta::from_std(lifetime - margin).unwrap_or(TimeDelta::zero());
        self.lock().insert(
            key.to_string(),
            Cached {
                token,
                refresh_at: now + keep,
            },
        );
    }

    /// Drops the token under `key` if it is still `token`.
    pub fn forget(&self, key: &str, token: &str) {
        let mut entries = self.lock();
        if entries.get(key).is_some_and(|c| c.token == token) {
            entries.remove(key);
        }
    }
}

// ---------------------------------------------------------------------------------
// Token endpoint responses

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct OAuthError {
    error: Option<String>,
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u64>,
}

/// `expires_in` as seconds (Microsoft has sent it as a string in the past).
fn lifetime(response: &TokenResponse) -> Duration {
    let seconds = match &response.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    Duration::from_secs(seconds.unwrap_or(3600))
}

/// Posts a token request and reads the token and its lifetime, or the refusal.
async fn request_token(
    service: crate::http::Service,
    http: &reqwest::Client,
    endpoint: &url::Url,
    form: &[(&str, &str)],
    classify: fn(u16, &OAuthError) -> Option<CalendarError>,
) -> Result<(String, Duration), CalendarError> {
    let request = http
        .post(endpoint.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .form(form);
    let (status, headers, body) = execute(service, request).await?;
    if status.is_success() {
        let response: TokenResponse =
            serde_json::from_slice(&body).map_err(|_| CalendarError::Decode {
                what: "token response",
            })?;
        if response.access_token.is_empty() {
            return Err(CalendarError::Decode {
                what: "empty access token",
            });
        }
        let lifetime = lifetime(&response);
        return Ok((response.access_token, lifetime));
    }
    let status = status.as_u16();
    let refusal: OAuthError = serde_json::from_slice(&body).unwrap_or(OAuthError {
        error: None,
        error_description: None,
        error_codes: Vec::new(),
    });
    if let Some(error) = classify(status, &refusal) {
        return Err(error);
    }
    match status {
        429 | 500..=599 => Err(status_error(status, &headers, None, false)),
        _ => {
            let mut reason = sanitize_reason(refusal.error.as_deref());
            if let Some(code) = refusal.error_codes.first() {
                reason = format!("{reason}.AADSTS{code}");
            }
            Err(CalendarError::CredentialsRefused { status, reason })
        }
    }
}

/// Whether `endpoint` may receive credentials: one of `official_hosts` over https, or
/// the same origin as the calendar API itself (a stand-in serves both). Anything else
/// is refused, so a Secret cannot send roster's assertions to an arbitrary host.
fn allowed_endpoint(endpoint: &url::Url, official_hosts: &[&str], api: &url::Url) -> bool {
    let official = endpoint.scheme() == "https"
        && endpoint
            .host_str()
            .is_some_and(|h| official_hosts.iter().any(|o| h.eq_ignore_ascii_case(o)));
    let same_origin = endpoint.scheme() == api.scheme()
        && endpoint.host_str() == api.host_str()
        && endpoint.port_or_known_default() == api.port_or_known_default();
    official || same_origin
}

// ---------------------------------------------------------------------------------
// Google

/// The fields of Google's service-account key file that roster reads.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    private_key_id: Option<String>,
    private_key: Option<String>,
    token_uri: Option<String>,
}

/// A Google service account, from the JSON key file Google issues for it.
pub struct GoogleServiceAccount {
    client_email: String,
    key_id: Option<String>,
    key: EncodingKey,
    token_uri: url::Url,
}

impl fmt::Debug for GoogleServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoogleServiceAccount")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// The claims of the assertion Google exchanges for a delegated token.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub struct GoogleAssertionClaims {
    pub iss: String,
    pub sub: String,
    pub scope: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

impl GoogleServiceAccount {
    /// Reads a key file. `api_base` is the calendar endpoint: the key's `token_uri` must
    /// be Google's (`https://oauth2.googleapis.com/token`) or on the calendar endpoint's
    /// origin (a stand-in).
    pub fn from_json(json: &str, api_base: &url::Url) -> Result<Self, CalendarError> {
        let config = |what| CalendarError::Config { what };
        let file: KeyFile = serde_json::from_str(json).map_err(|_| {
            config("calendar credentials are not a Google service-account key file (JSON)")
        })?;
        if file.kind.as_deref() != Some("service_account") {
            return Err(config(
                "calendar credentials are not a service-account key (type must be service_account)",
            ));
        }
        let client_email = file
            .client_email
            .filter(|e| !e.is_empty())
            .ok_or_else(|| config("service-account key has no client_email"))?;
        let key = file
            .private_key
            .ok_or_else(|| config("service-account key has no private_key"))
            .and_then(|pem| {
                EncodingKey::from_rsa_pem(pem.as_bytes())
                    .map_err(|_| config("service-account private_key is not an RSA key in PEM"))
            })?;
        let token_uri = file.token_uri.as_deref().unwrap_or(GOOGLE_TOKEN_URI);
        let token_uri = url::Url::parse(token_uri)
            .map_err(|_| config("service-account token_uri is not a URL"))?;
        if !allowed_endpoint(&token_uri, &["oauth2.googleapis.com"], api_base) {
            return Err(config(
                "service-account token_uri must be https://oauth2.googleapis.com/token (or on the calendar endpoint's host)",
            ));
        }
        Ok(GoogleServiceAccount {
            client_email,
            key_id: file.private_key_id.filter(|k| !k.is_empty()),
            key,
            token_uri,
        })
    }

    /// The signed assertion asking for `subject`'s calendars at `now`.
    pub fn assertion(&self, subject: &str, now: DateTime<Utc>) -> Result<String, CalendarError> {
        let claims = GoogleAssertionClaims {
            iss: self.client_email.clone(),
            sub: subject.to_string(),
            scope: GOOGLE_CALENDAR_SCOPE.to_string(),
            aud: self.token_uri.to_string(),
            iat: now.timestamp(),
            exp: (now + GOOGLE_ASSERTION_LIFETIME).timestamp(),
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.key_id.clone();
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|_| CalendarError::Config {
            what: "cannot sign with the service-account key",
        })
    }
}

/// Per-user access tokens for a Google service account with domain-wide delegation.
pub struct GoogleDelegatedTokens {
    account: GoogleServiceAccount,
    http: reqwest::Client,
    cache: TokenCache,
}

impl fmt::Debug for GoogleDelegatedTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoogleDelegatedTokens")
            .field("account", &self.account)
            .field("cache", &self.cache)
            .finish()
    }
}

/// Google's answers that are not about the credentials: the impersonated user does not
/// exist (`invalid_grant` "Invalid email or User ID") is a calendar that is not there.
fn google_token_refusal(_status: u16, refusal: &OAuthError) -> Option<CalendarError> {
    let description = refusal.error_description.as_deref().unwrap_or("");
    (refusal.error.as_deref() == Some("invalid_grant")
        && description.contains("Invalid email or User ID"))
    .then_some(CalendarError::NotFound)
}

impl GoogleDelegatedTokens {
    pub fn new(account: GoogleServiceAccount, timeout: Duration) -> Result<Self, CalendarError> {
        Ok(GoogleDelegatedTokens {
            account,
            http: http_client(timeout)?,
            cache: TokenCache::default(),
        })
    }

    async fn token(&self, subject: &str, now: DateTime<Utc>) -> Result<String, CalendarError> {
        let key = subject.to_ascii_lowercase();
        if let Some(token) = self.cache.get(&key, now) {
            return Ok(token);
        }
        let assertion = self.account.assertion(subject, now)?;
        let (token, lifetime) = request_token(
            crate::http::Service::GoogleToken,
            &self.http,
            &self.account.token_uri,
            &[("grant_type", JWT_BEARER_GRANT), ("assertion", &assertion)],
            google_token_refusal,
        )
        .await?;
        self.cache.put(&key, token.clone(), lifetime, now);
        Ok(token)
    }
}

impl TokenSource for GoogleDelegatedTokens {
    fn bearer_token<'a>(
        &'a self,
        calendar: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<String, CalendarError>> {
        Box::pin(self.token(calendar, now))
    }

    fn refused(&self, calendar: &str, token: &str) {
        self.cache.forget(&calendar.to_ascii_lowercase(), token);
    }
}

// ---------------------------------------------------------------------------------
// Microsoft

/// How a Microsoft app proves who it is.
enum AppCredential {
    Secret(String),
    Certificate {
        /// Base64url SHA-256 thumbprint of the certificate's DER (`x5t#S256`).
        thumbprint: String,
        key: EncodingKey,
    },
}

/// An Entra application registered for Microsoft Graph (client-credentials grant).
pub struct MicrosoftApp {
    client_id: String,
    credential: AppCredential,
    token_endpoint: url::Url,
    scope: String,
}

impl fmt::Debug for MicrosoftApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let credential = match self.credential {
            AppCredential::Secret(_) => "client secret",
            AppCredential::Certificate { .. } => "certificate",
        };
        f.debug_struct("MicrosoftApp")
            .field("client_id", &self.client_id)
            .field("credential", &credential)
            .finish_non_exhaustive()
    }
}

/// The Secret's content for Microsoft Graph.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppFile {
    tenant_id: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    /// PEM: the certificate and its private key (PKCS#8), in either order.
    client_certificate: Option<String>,
    authority_host: Option<String>,
    scope: Option<String>,
}

/// The claims of a Microsoft client assertion.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub struct ClientAssertionClaims {
    pub aud: String,
    pub iss: String,
    pub sub: String,
    pub jti: String,
    pub nbf: i64,
    pub iat: i64,
    pub exp: i64,
}

static ASSERTIONS: AtomicU64 = AtomicU64::new(0);

/// A unique id for an assertion, formatted as a GUID (no random source needed: the
/// time, a counter and the client make it unique).
fn assertion_id(client_id: &str, now: DateTime<Utc>) -> String {
    let n = ASSERTIONS.fetch_add(1, Ordering::Relaxed).to_string();
    let nanos = now.timestamp_nanos_opt().unwrap_or_default().to_string();
    let hex = stable_digest(&["client-assertion", client_id, &nanos, &n]);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Base64url (no padding) SHA-256 of a certificate's DER: `x5t#S256`.
pub fn certificate_thumbprint(der: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}

impl MicrosoftApp {
    /// Reads the Secret's JSON (`tenantId`, `clientId`, and `clientSecret` or
    /// `clientCertificate`; optional `authorityHost` and `scope`). `api_base` is the
    /// Graph endpoint: the authority host must be Microsoft's (a national cloud's) over
    /// https or on the Graph endpoint's origin (a stand-in).
    pub fn from_json(json: &str, api_base: &url::Url) -> Result<Self, CalendarError> {
        let config = |what| CalendarError::Config { what };
        let file: AppFile = serde_json::from_str(json).map_err(|_| {
            config("calendar credentials are not Microsoft app credentials (JSON with tenantId, clientId, clientSecret or clientCertificate)")
        })?;
        let tenant = file
            .tenant_id
            .filter(|t| {
                !t.is_empty()
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
            })
            .ok_or_else(|| config("Microsoft credentials need a tenantId (a GUID or a domain)"))?;
        let client_id = file
            .client_id
            .filter(|c| !c.is_empty())
            .ok_or_else(|| config("Microsoft credentials need a clientId"))?;
        let authority = file
            .authority_host
            .unwrap_or_else(|| MICROSOFT_AUTHORITY_HOST.to_string());
        let mut token_endpoint = url::Url::parse(authority.trim_end_matches('/'))
            .map_err(|_| config("Microsoft authorityHost is not a URL"))?;
        if !allowed_endpoint(&token_endpoint, MICROSOFT_AUTHORITY_HOSTS, api_base) {
            return Err(config(
                "Microsoft authorityHost must be a Microsoft identity platform host (or the Graph endpoint's host)",
            ));
        }
        token_endpoint
            .path_segments_mut()
            .map_err(|_| config("Microsoft authorityHost is not a URL"))?
            .pop_if_empty()
            .extend([tenant.as_str(), "oauth2", "v2.0", "token"]);
        let credential = match (file.client_secret, file.client_certificate) {
            (Some(secret), None) if !secret.is_empty() => AppCredential::Secret(secret),
            (None, Some(bundle)) => certificate_credential(&bundle)?,
            _ => {
                return Err(config(
                    "Microsoft credentials need exactly one of clientSecret and clientCertificate",
                ));
            }
        };
        Ok(MicrosoftApp {
            client_id,
            credential,
            token_endpoint,
            scope: file
                .scope
                .unwrap_or_else(|| GRAPH_DEFAULT_SCOPE.to_string()),
        })
    }

    /// The client assertion for a token request at `now` (certificate credentials).
    pub fn client_assertion(&self, now: DateTime<Utc>) -> Option<Result<String, CalendarError>> {
        let AppCredential::Certificate { thumbprint, key } = &self.credential else {
            return None;
        };
        let claims = ClientAssertionClaims {
            aud: self.token_endpoint.to_string(),
            iss: self.client_id.clone(),
            sub: self.client_id.clone(),
            jti: assertion_id(&self.client_id, now),
            nbf: now.timestamp(),
            iat: now.timestamp(),
            exp: (now + MICROSOFT_ASSERTION_LIFETIME).timestamp(),
        };
        let mut header = Header::new(Algorithm::PS256);
        header.x5t_s256 = Some(thumbprint.clone());
        Some(
            jsonwebtoken::encode(&header, &claims, key).map_err(|_| CalendarError::Config {
                what: "cannot sign with the app certificate's key",
            }),
        )
    }
}

fn certificate_credential(bundle: &str) -> Result<AppCredential, CalendarError> {
    let config = |what| CalendarError::Config { what };
    let blocks =
        pem::parse_many(bundle).map_err(|_| config("Microsoft clientCertificate is not PEM"))?;
    let certificate = blocks
        .iter()
        .find(|b| b.tag() == "CERTIFICATE")
        .ok_or_else(|| config("Microsoft clientCertificate has no CERTIFICATE block"))?;
    let key = blocks
        .iter()
        .find(|b| b.tag() == "PRIVATE KEY" || b.tag() == "RSA PRIVATE KEY")
        .ok_or_else(|| config("Microsoft clientCertificate has no PRIVATE KEY block"))?;
    let key = EncodingKey::from_rsa_pem(pem::encode(key).as_bytes())
        .map_err(|_| config("Microsoft clientCertificate's key is not an RSA key"))?;
    Ok(AppCredential::Certificate {
        thumbprint: certificate_thumbprint(certificate.contents()),
        key,
    })
}

/// The app-only Graph token of a [`MicrosoftApp`], minted with the client-credentials
/// grant and cached.
pub struct GraphAppTokens {
    app: MicrosoftApp,
    http: reqwest::Client,
    cache: TokenCache,
}

impl fmt::Debug for GraphAppTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphAppTokens")
            .field("app", &self.app)
            .field("cache", &self.cache)
            .finish()
    }
}

/// The one cache key of an app token.
const APP: &str = "app";

impl GraphAppTokens {
    pub fn new(app: MicrosoftApp, timeout: Duration) -> Result<Self, CalendarError> {
        Ok(GraphAppTokens {
            app,
            http: http_client(timeout)?,
            cache: TokenCache::default(),
        })
    }

    async fn token(&self, now: DateTime<Utc>) -> Result<String, CalendarError> {
        if let Some(token) = self.cache.get(APP, now) {
            return Ok(token);
        }
        let app = &self.app;
        let assertion = app.client_assertion(now).transpose()?;
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("scope", &app.scope),
        ];
        match (&app.credential, &assertion) {
            (AppCredential::Secret(secret), _) => form.push(("client_secret", secret)),
            (AppCredential::Certificate { .. }, Some(assertion)) => {
                form.push(("client_assertion_type", JWT_BEARER_ASSERTION));
                form.push(("client_assertion", assertion));
            }
            (AppCredential::Certificate { .. }, None) => unreachable!("signed above"),
        }
        let (token, lifetime) = request_token(
            crate::http::Service::MicrosoftToken,
            &self.http,
            &app.token_endpoint,
            &form,
            |_, _| None,
        )
        .await?;
        self.cache.put(APP, token.clone(), lifetime, now);
        Ok(token)
    }
}

impl TokenSource for GraphAppTokens {
    fn bearer_token<'a>(
        &'a self,
        _calendar: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<String, CalendarError>> {
        Box::pin(self.token(now))
    }

    fn refused(&self, _calendar: &str, token: &str) {
        self.cache.forget(APP, token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn cache_keeps_tokens_until_shortly_before_expiry() {
        let cache = TokenCache::default();
        let t0 = at("2030-01-01T00:00:00Z");
        cache.put("a", "tok".into(), Duration::from_secs(3600), t0);
        assert_eq!(cache.get("a", t0).as_deref(), Some("tok"));
        assert_eq!(
            cache.get("a", t0 + TimeDelta::seconds(3299)).as_deref(),
            Some("tok")
        );
        // Five minutes before expiry it is replaced.
        assert_eq!(cache.get("a", t0 + TimeDelta::seconds(3300)), None);
        assert_eq!(cache.get("b", t0), None);
        // A short-lived token is kept for half its life.
        cache.put("s", "short".into(), Duration::from_secs(60), t0);
        assert!(cache.get("s", t0 + TimeDelta::seconds(29)).is_some());
        assert!(cache.get("s", t0 + TimeDelta::seconds(30)).is_none());
        // A refused token is forgotten, a newer one is not.
        cache.forget("a", "other");
        assert!(cache.get("a", t0).is_some());
        cache.forget("a", "tok");
        assert!(cache.get("a", t0).is_none());
        assert!(!format!("{cache:?}").contains("short"));
    }

    #[test]
    fn endpoints_must_be_official_or_the_api_origin() {
        let api = url::Url::parse("http://127.0.0.1:8082/calendar/v3").unwrap();
        let ok =
            |u: &str, hosts: &[&str]| allowed_endpoint(&url::Url::parse(u).unwrap(), hosts, &api);
        assert!(ok(GOOGLE_TOKEN_URI, &["oauth2.googleapis.com"]));
        assert!(ok(
            "http://127.0.0.1:8082/token",
            &["oauth2.googleapis.com"]
        ));
        assert!(!ok(
            "http://oauth2.googleapis.com/token",
            &["oauth2.googleapis.com"]
        ));
        assert!(!ok(
            "http://127.0.0.1:9999/token",
            &["oauth2.googleapis.com"]
        ));
        assert!(!ok(
            "http://169.254.169.254/token",
            &["oauth2.googleapis.com"]
        ));
        assert!(!ok(
            "https://evil.example/token",
            &["oauth2.googleapis.com"]
        ));
    }

    #[test]
    fn unusable_credentials_are_configuration_errors_without_secrets() {
        let api = url::Url::parse("https://www.googleapis.com/calendar/v3").unwrap();
        for json in [
            "token",
            r#"{"type":"authorized_user"}"#,
            r#"{"type":"service_account","client_email":"a@b.iam.gserviceaccount.com","private_key":"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"}"#,
        ] {
            let error = GoogleServiceAccount::from_json(json, &api).unwrap_err();
            assert_eq!(error.category(), "config", "{json}");
            assert!(!error.to_string().contains("nope"));
        }
        let graph = url::Url::parse("https://graph.microsoft.com/v1.0").unwrap();
        for json in [
            r#"{"tenantId":"t","clientId":"c"}"#,
            r#"{"tenantId":"t","clientId":"c","clientSecret":"s","clientCertificate":"x"}"#,
            r#"{"tenantId":"t/../x","clientId":"c","clientSecret":"s"}"#,
            r#"{"tenantId":"t","clientId":"c","clientSecret":"s","authorityHost":"https://evil.example"}"#,
        ] {
            let error = MicrosoftApp::from_json(json, &graph).unwrap_err();
            assert_eq!(error.category(), "config", "{json}");
            assert!(!format!("{error:?}").contains("\"s\""));
        }
        let app = MicrosoftApp::from_json(
            r#"{"tenantId":"contoso.onmicrosoft.com","clientId":"c","clientSecret":"hunter2"}"#,
            &graph,
        )
        .unwrap();
        assert_eq!(
            app.token_endpoint.as_str(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert!(!format!("{app:?}").contains("hunter2"));
        assert!(app.client_assertion(at("2030-01-01T00:00:00Z")).is_none());
    }

    #[test]
    fn assertion_ids_are_guids_and_unique() {
        let now = at("2030-01-01T00:00:00Z");
        let a = assertion_id("c", now);
        let b = assertion_id("c", now);
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }
}

#[cfg(test)]
mod signing_tests {
    use jsonwebtoken::{DecodingKey, Validation};
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

    use super::*;

    fn key_pair() -> (String, String) {
        let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).unwrap();
        let private = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let public = key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        (private, public)
    }

    fn verify<T: serde::de::DeserializeOwned>(jwt: &str, public: &str, alg: Algorithm) -> T {
        let mut validation = Validation::new(alg);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<T>(
            jwt,
            &DecodingKey::from_rsa_pem(public.as_bytes()).unwrap(),
            &validation,
        )
        .unwrap()
        .claims
    }

    #[test]
    fn google_assertions_impersonate_the_user_for_the_calendar_scope() {
        let (private, public) = key_pair();
        let file = serde_json::json!({
            "type": "service_account",
            "project_id": "p",
            "private_key_id": "k1",
            "private_key": private,
            "client_email": "roster@p.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": GOOGLE_TOKEN_URI,
        });
        let api = url::Url::parse("https://www.googleapis.com/calendar/v3").unwrap();
        let account = GoogleServiceAccount::from_json(&file.to_string(), &api).unwrap();
        assert!(!format!("{account:?}").contains("PRIVATE"));
        let now: DateTime<Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
        let jwt = account.assertion("ada@example.com", now).unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some("k1"));
        let claims: GoogleAssertionClaims = verify(&jwt, &public, Algorithm::RS256);
        assert_eq!(
            claims,
            GoogleAssertionClaims {
                iss: "roster@p.iam.gserviceaccount.com".into(),
                sub: "ada@example.com".into(),
                scope: GOOGLE_CALENDAR_SCOPE.into(),
                aud: GOOGLE_TOKEN_URI.into(),
                iat: now.timestamp(),
                exp: now.timestamp() + 3600,
            }
        );
    }

    #[test]
    fn microsoft_client_assertions_carry_the_certificate_thumbprint() {
        let (private, public) = key_pair();
        // Any DER stands in for the certificate: only its SHA-256 thumbprint is used.
        let der = b"certificate bytes".to_vec();
        let certificate = pem::encode(&pem::Pem::new("CERTIFICATE", der.clone()));
        let file = serde_json::json!({
            "tenantId": "contoso.onmicrosoft.com",
            "clientId": "11111111-2222-3333-4444-555555555555",
            "clientCertificate": format!("{certificate}{private}"),
        });
        let graph = url::Url::parse("https://graph.microsoft.com/v1.0").unwrap();
        let app = MicrosoftApp::from_json(&file.to_string(), &graph).unwrap();
        assert!(!format!("{app:?}").contains("PRIVATE"));
        let now: DateTime<Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
        let jwt = app.client_assertion(now).unwrap().unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.alg, Algorithm::PS256);
        assert_eq!(header.x5t_s256, Some(certificate_thumbprint(&der)));
        let claims: ClientAssertionClaims = verify(&jwt, &public, Algorithm::PS256);
        assert_eq!(
            claims.aud,
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(claims.iss, "11111111-2222-3333-4444-555555555555");
        assert_eq!(claims.sub, claims.iss);
        assert_eq!(
            (claims.nbf, claims.exp),
            (now.timestamp(), now.timestamp() + 600)
        );
    }
}
