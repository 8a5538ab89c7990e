//! The HR JSON report over HTTPS (reqwest through `roster_connectors::http`, so the
//! operator's endpoint policy and guarded DNS apply). A bearer token from the Secret,
//! or the client-credentials grant at `tokenURL`, or the client as HTTP Basic
//! credentials (Workday's report-as-a-service accepts those).

use std::time::Duration;

use roster_connectors::endpoint::EndpointPolicy;
use serde::Deserialize;
use url::Url;

use super::FetchError;

/// Reports larger than this are refused: the feeds' limit, checked on the
/// `Content-Length` and again while the body streams in (a chunked body has no
/// length), so a body is never read past it.
pub const MAX_REPORT_BYTES: usize = roster_feeds::limits::MAX_REPORT_BYTES;

/// The report and its token endpoint, as metrics name them.
const HR_API: roster_connectors::http::Service = roster_connectors::http::Service::HrApi;

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
            let token_request = http
                .post(token_url)
                .basic_auth(client_id, Some(client_secret))
                .form(&[("grant_type", "client_credentials")]);
            let response = roster_connectors::http::send(HR_API, token_request)
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
    let response = roster_connectors::http::send(HR_API, request)
        .await
        .map_err(|e| FetchError::Transport(transport(&e)))?;
    match response.status().as_u16() {
        200 => {}
        401 | 403 => return Err(FetchError::Unauthorized),
        404 => return Err(FetchError::NotFound),
        status => return Err(FetchError::Status(status)),
    }
    read_bounded(response, MAX_REPORT_BYTES).await
}

/// The body, refused as soon as it passes `limit` bytes.
async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, FetchError> {
    let too_large = || FetchError::TooLarge {
        limit: limit as u64,
    };
    if response.content_length().is_some_and(|l| l > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchError::Transport(transport(&e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn transport(error: &reqwest::Error) -> &'static str {
    roster_connectors::http::TransportFailure::of(error).as_str()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::body::Body;
    use futures::stream;

    use super::*;

    /// A server on loopback whose report never ends (chunked, no length), counting
    /// the bytes it managed to send.
    async fn endless() -> (String, Arc<AtomicUsize>) {
        let sent = Arc::new(AtomicUsize::new(0));
        let counter = sent.clone();
        let app = axum::Router::new().route(
            "/endless",
            axum::routing::get(move || {
                let counter = counter.clone();
                async move {
                    let chunks = stream::repeat_with(move || {
                        counter.fetch_add(64 * 1024, Ordering::Relaxed);
                        Ok::<_, std::io::Error>(vec![b' '; 64 * 1024])
                    });
                    Body::from_stream(chunks)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), sent)
    }

    /// Regression: the body was read whole (`bytes()`) when it had no
    /// Content-Length, however long it was.
    #[tokio::test]
    async fn an_endless_body_is_cut_at_the_limit() {
        let (base, sent) = endless().await;
        let limit = 1024 * 1024;
        let response = reqwest::get(format!("{base}/endless")).await.unwrap();
        let err = read_bounded(response, limit).await.unwrap_err();
        assert!(
            matches!(err, FetchError::TooLarge { limit: l } if l == limit as u64),
            "{err}"
        );
        assert!(err.to_string().contains("1048576 bytes"), "{err}");
        // What the server pushed before the connection closed: the limit and what
        // the socket buffers held, not the endless rest.
        let sent = sent.load(Ordering::Relaxed);
        assert!(sent < 64 * limit, "{sent} bytes sent");
    }

    /// A server that declares a 1 GiB body (and sends two bytes of it) is refused on
    /// the declaration, before any of it is read.
    #[tokio::test]
    async fn a_declared_length_past_the_limit_is_refused_unread() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1073741824\r\n\r\n{}")
                .await;
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        });
        let response = reqwest::get(format!("http://{addr}/")).await.unwrap();
        let err = read_bounded(response, MAX_REPORT_BYTES).await.unwrap_err();
        assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
    }
}
