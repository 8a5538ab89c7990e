//! The HR JSON report over HTTPS (reqwest through `roster_connectors::http`, so the
//! operator's endpoint policy and guarded DNS apply). A bearer token from the Secret,
//! or the client-credentials grant at `tokenURL`, or the client as HTTP Basic
//! credentials (Workday's report-as-a-service accepts those).

use std::time::Duration;

use roster_connectors::endpoint::EndpointPolicy;
use serde::Deserialize;
use url::Url;

use super::FetchError;

/// Reports larger than this are refused.
pub const MAX_REPORT_BYTES: usize = 512 * 1024 * 1024;

/// How the report is authorized.
#[derive(Clone)]
pub enum HrAuth {
    Bearer(String),
    ClientCredentials {
        client_id: String,
        client_secret: String,
        /// Exchanged here for a token; without it the client is sent as Basic auth.
        token_url: Option<String>,
    },
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
}

/// Fetches the report body.
pub async fn fetch(
    url: &str,
    auth: &HrAuth,
    endpoints: &EndpointPolicy,
    timeout: Duration,
) -> Result<Vec<u8>, FetchError> {
    let report = Url::parse(url).map_err(|_| FetchError::Settings("hrAPI.url is not a URL"))?;
    endpoints.check("sources.hrAPI.url", &report).map_err(|_| {
        FetchError::Refused("sources.hrAPI.url is refused by the operator's endpoint policy")
    })?;
    let http = roster_connectors::http::client(timeout)
        .map_err(|_| FetchError::Transport("cannot build the HTTP client"))?;
    let request = http.get(report).header("Accept", "application/json");
    let request = match auth {
        HrAuth::Bearer(token) => request.bearer_auth(token),
        HrAuth::ClientCredentials {
            client_id,
            client_secret,
            token_url: None,
        } => request.basic_auth(client_id, Some(client_secret)),
        HrAuth::ClientCredentials {
            client_id,
            client_secret,
            token_url: Some(token_url),
        } => {
            let token_url = Url::parse(token_url)
                .map_err(|_| FetchError::Settings("hrAPI.tokenURL is not a URL"))?;
            endpoints
                .check("sources.hrAPI.tokenURL", &token_url)
                .map_err(|_| {
                    FetchError::Refused(
                        "sources.hrAPI.tokenURL is refused by the operator's endpoint policy",
                    )
                })?;
            let response = http
                .post(token_url)
                .basic_auth(client_id, Some(client_secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .map_err(|e| FetchError::Transport(transport(&e)))?;
            match response.status().as_u16() {
                200 => {}
                400 | 401 | 403 => return Err(FetchError::Unauthorized),
                status => return Err(FetchError::Status(status)),
            }
            let token: TokenResponse = response
                .json()
                .await
                .map_err(|_| FetchError::Transport("the token response is not a token"))?;
            request.bearer_auth(token.access_token)
        }
    };
    let response = request
        .send()
        .await
        .map_err(|e| FetchError::Transport(transport(&e)))?;
    match response.status().as_u16() {
        200 => {}
        401 | 403 => return Err(FetchError::Unauthorized),
        404 => return Err(FetchError::NotFound),
        status => return Err(FetchError::Status(status)),
    }
    if response
        .content_length()
        .is_some_and(|l| l > MAX_REPORT_BYTES as u64)
    {
        return Err(FetchError::TooLarge);
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| FetchError::Transport(transport(&e)))?;
    if bytes.len() > MAX_REPORT_BYTES {
        return Err(FetchError::TooLarge);
    }
    Ok(bytes.to_vec())
}

fn transport(error: &reqwest::Error) -> &'static str {
    roster_connectors::http::TransportFailure::of(error).as_str()
}
