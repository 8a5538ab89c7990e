//! A stand-in HR report API (Workday custom-report style) for the feed tests and the
//! demo: `GET /ccx/service/customreport2/{tenant}/{report}` answers
//! `{"Report_Entry": [...]}` to a bearer token, and `POST /oauth2/token` issues that
//! token by the client-credentials grant. Empty fields are omitted, as Workday does.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The report path the stand-in serves.
pub const REPORT_PATH: &str = "/ccx/service/customreport2/acme/People_Report";

#[derive(Debug, Default)]
struct Inner {
    entries: Vec<Value>,
    token: String,
    client_id: String,
    client_secret: String,
    /// Report requests answered (with any status).
    report_calls: usize,
    /// Answer the next report request with this status.
    fail_next: Option<u16>,
}

/// The stand-in's state, shared with the test.
#[derive(Clone, Debug, Default)]
pub struct HrState(Arc<Mutex<Inner>>);

impl HrState {
    /// A report behind `token`, which `client_id`/`client_secret` can also obtain.
    pub fn new(token: &str, client_id: &str, client_secret: &str) -> Self {
        Self(Arc::new(Mutex::new(Inner {
            token: token.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            ..Default::default()
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the report's entries. Empty strings and nulls are dropped from each
    /// entry, as the real service omits empty fields.
    pub fn set_entries(&self, entries: Vec<Value>) {
        let entries = entries
            .into_iter()
            .map(|mut e| {
                if let Some(map) = e.as_object_mut() {
                    map.retain(|_, v| !(v.is_null() || v.as_str() == Some("")));
                }
                e
            })
            .collect();
        self.lock().entries = entries;
    }

    /// Report requests answered so far.
    pub fn report_calls(&self) -> usize {
        self.lock().report_calls
    }

    /// Makes the next report request fail with `status`.
    pub fn fail_next(&self, status: u16) {
        self.lock().fail_next = Some(status);
    }
}

/// A running stand-in; stopped on drop.
pub struct HrStandIn {
    addr: SocketAddr,
    state: HrState,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl HrStandIn {
    /// Starts on `127.0.0.1` at a free port.
    pub async fn start(state: HrState) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let app = router(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
        });
        Ok(Self {
            addr,
            state,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// The report URL (`http://127.0.0.1:PORT/ccx/service/customreport2/acme/People_Report`).
    pub fn report_url(&self) -> String {
        format!("http://{}{REPORT_PATH}", self.addr)
    }

    /// The token endpoint for the client-credentials grant.
    pub fn token_url(&self) -> String {
        format!("http://{}/oauth2/token", self.addr)
    }

    pub fn state(&self) -> &HrState {
        &self.state
    }
}

impl Drop for HrStandIn {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The stand-in's routes.
pub fn router(state: HrState) -> Router {
    Router::new()
        .route(REPORT_PATH, get(report))
        .route("/oauth2/token", post(token))
        .with_state(state)
}

async fn report(State(state): State<HrState>, headers: HeaderMap) -> Response {
    let mut inner = state.lock();
    inner.report_calls += 1;
    if let Some(status) = inner.fail_next.take() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (status, "injected failure").into_response();
    }
    let expected = format!("Bearer {}", inner.token);
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if presented != Some(expected.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "invalid token",
        )
            .into_response();
    }
    axum::Json(json!({ "Report_Entry": inner.entries })).into_response()
}

/// `grant_type=client_credentials` with the client in the form or in Basic auth.
async fn token(State(state): State<HrState>, headers: HeaderMap, body: String) -> Response {
    use base64::Engine as _;
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        });
    let (id, secret) = match (basic, field("client_id"), field("client_secret")) {
        (Some(pair), _, _) => pair,
        (None, Some(id), Some(secret)) => (id, secret),
        _ => (String::new(), String::new()),
    };
    let inner = state.lock();
    if field("grant_type").as_deref() != Some("client_credentials") {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    if id != inner.client_id || secret != inner.client_secret || id.is_empty() {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    axum::Json(json!({
        "access_token": inner.token,
        "token_type": "Bearer",
        "expires_in": 3600
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_report_needs_the_token_and_the_grant_issues_it() {
        let state = HrState::new("t0k", "client", "s3cret");
        state.set_entries(vec![json!({"Employee_ID": "00042", "Title": ""})]);
        let hr = HrStandIn::start(state.clone()).await.unwrap();
        // Raw HTTP over a TcpStream keeps the stand-in free of an HTTP client.
        let get = |auth: &'static str| {
            let url = hr.report_url();
            async move { http_get(&url, auth).await }
        };
        assert!(get("").await.starts_with("HTTP/1.1 401"));
        let ok = get("Bearer t0k").await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(
            ok.contains(r#"{"Report_Entry":[{"Employee_ID":"00042"}]}"#),
            "{ok}"
        );
        assert_eq!(state.report_calls(), 2);
    }

    async fn http_get(url: &str, auth: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let url = url::Url::parse(url).unwrap();
        let mut stream =
            tokio::net::TcpStream::connect((url.host_str().unwrap(), url.port().unwrap()))
                .await
                .unwrap();
        let auth = if auth.is_empty() {
            String::new()
        } else {
            format!("Authorization: {auth}\r\n")
        };
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n",
            url.path()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }
}
