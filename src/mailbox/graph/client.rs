//! Sending one Graph request: the token, the mailbox's gate, retries on
//! throttling and server errors, and the line between requests that may be
//! repeated and those whose failure leaves their outcome unknown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;

use super::endpoints::Endpoints;
use super::error::GraphError;
use super::throttle::{Gate, GraphLimits, parse_retry_after};
use crate::mailbox::oauth::TokenSource;

/// How a request authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// `Authorization: Bearer` with the application's token.
    Bearer,
    /// An upload session URL: pre-authenticated, and Graph documents that
    /// it must not get an `Authorization` header.
    PreAuthenticated,
}

pub(crate) enum Body {
    Empty,
    Json(Bytes),
    Octets(Bytes),
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Json(b) | Body::Octets(b) => b.len() as u64,
        }
    }
}

pub(crate) struct Call {
    pub method: Method,
    pub url: Url,
    pub body: Body,
    pub headers: Vec<(&'static str, String)>,
    pub auth: Auth,
}

impl Call {
    pub fn get(url: Url) -> Call {
        Call {
            method: Method::GET,
            url,
            body: Body::Empty,
            headers: Vec::new(),
            auth: Auth::Bearer,
        }
    }

    pub fn delete(url: Url) -> Call {
        Call {
            method: Method::DELETE,
            ..Call::get(url)
        }
    }

    pub fn post_json(url: Url, value: &serde_json::Value) -> Call {
        Call::post_json_bytes(url, Bytes::from(value.to_string()))
    }

    /// A POST of JSON serialized beforehand (once for all its attempts).
    pub fn post_json_bytes(url: Url, json: Bytes) -> Call {
        Call {
            method: Method::POST,
            body: Body::Json(json),
            ..Call::get(url)
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Call {
        self.headers.push((name, value.into()));
        self
    }

    /// GET and DELETE can be repeated blindly; a POST or an upload PUT
    /// that may have been processed cannot.
    fn repeatable(&self) -> bool {
        matches!(self.method, Method::GET | Method::DELETE)
    }
}

/// A successful answer.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Reply {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, GraphError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| GraphError::Protocol(format!("answer is not the documented JSON: {e}")))
    }
}

#[derive(serde::Deserialize, Default)]
struct ODataError {
    #[serde(default)]
    error: ODataErrorInner,
}

#[derive(serde::Deserialize, Default)]
struct ODataErrorInner {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// What to do after one attempt.
enum Outcome {
    Done(Reply),
    Fail(GraphError),
    /// Try again after Graph's `Retry-After`, or a backoff step when it
    /// gave none; the status is kept for the final error.
    Retry(Option<Duration>, u16),
    TokenRejected,
}

pub(crate) struct Api {
    http: reqwest::Client,
    root: Url,
    tokens: TokenSource,
    pub limits: GraphLimits,
    gates: std::sync::Mutex<HashMap<String, Arc<Gate>>>,
}

impl Api {
    pub fn new(
        endpoints: &Endpoints,
        tokens: TokenSource,
        limits: GraphLimits,
    ) -> Result<Api, String> {
        let http = crate::http::builder()
            .connect_timeout(Duration::from_secs(30))
            .timeout(limits.request_timeout)
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        let mut root = endpoints.graph.clone();
        root.path_segments_mut()
            .map_err(|_| format!("{} cannot be a service root", endpoints.graph))?
            .pop_if_empty()
            .push("v1.0");
        Ok(Api {
            http,
            root,
            tokens,
            limits,
            gates: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// `{root}/v1.0/seg/seg...`, each segment percent-encoded.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.root.clone();
        url.path_segments_mut()
            .expect("the root is a base URL")
            .extend(segments);
        url
    }

    /// The gate of one mailbox (keyed by its Graph user id, so an alias and
    /// the primary address share it as Graph's own count does).
    pub fn gate(&self, user_id: &str) -> Arc<Gate> {
        let mut gates = self.gates.lock().expect("gate map lock");
        gates
            .entry(user_id.to_owned())
            .or_insert_with(|| Arc::new(Gate::new(&self.limits)))
            .clone()
    }

    /// Sends a request, through the mailbox's gate when it targets one,
    /// retrying what Graph says may be retried.
    pub async fn call(&self, gate: Option<&Gate>, call: Call) -> Result<Reply, GraphError> {
        let mut attempt = 0u32;
        let mut token_refreshed = false;
        loop {
            attempt += 1;
            match self.attempt(gate, &call).await? {
                Outcome::Done(reply) => return Ok(reply),
                Outcome::Fail(e) => return Err(e),
                Outcome::TokenRejected if !token_refreshed => {
                    token_refreshed = true;
                    attempt -= 1;
                }
                Outcome::TokenRejected => {
                    return Err(GraphError::Auth(
                        "Microsoft Graph refused a freshly issued token; check the application's permissions".into(),
                    ));
                }
                Outcome::Retry(retry_after, status) => {
                    let wait = retry_after.unwrap_or_else(|| self.limits.backoff(attempt));
                    if status == 0 && attempt >= self.limits.max_attempts {
                        return Err(GraphError::Unreachable(format!(
                            "{} {} failed {attempt} times",
                            call.method,
                            redact(&call.url)
                        )));
                    }
                    if attempt >= self.limits.max_attempts || wait > self.limits.max_retry_after {
                        return Err(GraphError::GaveUp {
                            status,
                            attempts: attempt,
                        });
                    }
                    tracing::debug!(%status, ?wait, url = %redact(&call.url), "Graph asked to wait");
                    match gate {
                        Some(gate) => gate.pause(wait).await,
                        None => tokio::time::sleep(wait).await,
                    }
                }
            }
        }
    }

    async fn attempt(&self, gate: Option<&Gate>, call: &Call) -> Result<Outcome, GraphError> {
        let token = match call.auth {
            Auth::Bearer => Some(self.tokens.token(&self.http, &self.limits.retry()).await?),
            Auth::PreAuthenticated => None,
        };
        let upload = match call.method {
            Method::POST | Method::PUT | Method::PATCH => call.body.len(),
            _ => 0,
        };
        let ticket = match gate {
            Some(g) => Some(g.admit(&self.limits, upload).await),
            None => None,
        };
        let mut req = self.http.request(call.method.clone(), call.url.clone());
        if let Some(token) = &token {
            req = req.header(AUTHORIZATION, bearer(token)?);
        }
        for (name, value) in &call.headers {
            req = req.header(*name, value);
        }
        req = match &call.body {
            Body::Empty => req,
            Body::Json(b) => req.header(CONTENT_TYPE, "application/json").body(b.clone()),
            Body::Octets(b) => req
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(b.clone()),
        };
        let result = send(req).await;
        if let (Some(g), Some(t)) = (gate, ticket) {
            g.done(t).await;
        }
        let (status, headers, body) = match result {
            Ok(Answer::Complete(status, headers, body)) => (status, headers, body),
            Ok(Answer::Redirected(location)) => {
                return Ok(Outcome::Fail(GraphError::Protocol(format!(
                    "{} {} was redirected to {location}; redirects are refused so that the token goes only to the configured Graph endpoint",
                    call.method,
                    redact(&call.url)
                ))));
            }
            Ok(Answer::TooLarge(cap)) => {
                return Ok(Outcome::Fail(GraphError::Protocol(format!(
                    "{} {} answered more than the {cap} bytes allowed",
                    call.method,
                    redact(&call.url)
                ))));
            }
            Err(e) => return Ok(Self::transport_failure(call, e)),
        };
        if status.is_success() {
            return Ok(Outcome::Done(Reply { status, body }));
        }
        if status == StatusCode::UNAUTHORIZED && call.auth == Auth::Bearer {
            if let Some(token) = &token {
                self.tokens.invalidate(token).await;
            }
            return Ok(Outcome::TokenRejected);
        }
        let retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let code = status.as_u16();
        Ok(match code {
            429 | 503 => Outcome::Retry(retry_after, code),
            500 | 502 | 504 if call.repeatable() => Outcome::Retry(retry_after, code),
            500 | 502 | 504 => Outcome::Fail(GraphError::Ambiguous(format!(
                "{} {} answered {code}",
                call.method,
                redact(&call.url)
            ))),
            _ => Outcome::Fail(status_error(code, &body)),
        })
    }

    fn transport_failure(call: &Call, e: reqwest::Error) -> Outcome {
        let connect = e.is_connect();
        let what = format!("{} {}: {}", call.method, redact(&call.url), e.without_url());
        // A refused connection sent nothing, so even a POST may be repeated.
        if connect || call.repeatable() {
            tracing::debug!("{what}; retrying");
            Outcome::Retry(None, 0)
        } else {
            Outcome::Fail(GraphError::Ambiguous(what))
        }
    }
}

/// The largest successful Graph answer read into memory; Graph's own
/// answers to the calls made here are a few KiB.
const ANSWER_CAP: usize = 16 * 1024 * 1024;

/// What came back for one request.
enum Answer {
    Complete(StatusCode, HeaderMap, Bytes),
    /// A 3xx, with where it pointed; never followed.
    Redirected(String),
    /// A successful answer over the cap.
    TooLarge(usize),
}

/// Sends a request and reads its answer: a success up to [`ANSWER_CAP`],
/// an error up to [`crate::http::ERROR_BODY_CAP`].
async fn send(req: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
    let resp = req.send().await?;
    let status = resp.status();
    if status.is_redirection() {
        return Ok(Answer::Redirected(crate::http::redirect_target(&resp)));
    }
    let headers = resp.headers().clone();
    let body = if status.is_success() {
        match crate::http::read_capped(resp, ANSWER_CAP).await {
            Ok(body) => body,
            Err(crate::http::BodyError::TooLarge(cap)) => return Ok(Answer::TooLarge(cap)),
            Err(crate::http::BodyError::Broken(e)) => return Err(e),
        }
    } else {
        crate::http::error_body(resp).await
    };
    Ok(Answer::Complete(status, headers, body))
}

/// `Bearer <token>`, marked sensitive so that no debug output shows it.
fn bearer(token: &crate::secrets::Secret) -> Result<HeaderValue, GraphError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| GraphError::Protocol("the access token is not a valid header value".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

fn status_error(status: u16, body: &[u8]) -> GraphError {
    let err: ODataError = serde_json::from_slice(body).unwrap_or_default();
    GraphError::Status {
        status,
        code: if err.error.code.is_empty() {
            "(no error code)".into()
        } else {
            crate::http::server_text(&err.error.code)
        },
        message: crate::http::server_text(&err.error.message),
    }
}

/// Sets an OData query, each value percent-encoded (`%20` for spaces,
/// which Graph reads unambiguously; a form-encoded `+` is not).
pub(crate) fn with_query(mut url: Url, pairs: &[(&str, &str)]) -> Url {
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencoding::encode(v)))
        .collect();
    url.set_query(Some(&query.join("&")));
    url
}

/// A URL for logs and errors: upload URLs carry their credential in the
/// query, so queries are never shown.
pub(crate) fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::http::{HeaderMap, StatusCode as Status, header};
    use axum::routing::{get, post};

    use super::*;
    use crate::config::Cloud;
    use crate::secrets::Secret;

    const CLIENT_SECRET: &str = "client-Secret-xyz";

    async fn serve(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    /// A server that records every request's headers and body.
    async fn elsewhere(seen: Arc<Mutex<Vec<String>>>) -> String {
        serve(
            Router::new().fallback(move |headers: HeaderMap, body: String| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(format!("{headers:?} {body}"));
                    Status::NOT_FOUND
                }
            }),
        )
        .await
    }

    fn token_route(expires_in: u64) -> Router {
        Router::new().route(
            "/tenant/oauth2/v2.0/token",
            post(move || async move {
                axum::Json(serde_json::json!({"access_token": "tok", "expires_in": expires_in}))
            }),
        )
    }

    fn api(graph: &str, login: &str) -> Api {
        let endpoints = Endpoints::resolve(Cloud::Global, Some(graph), Some(login)).unwrap();
        let tokens = TokenSource::new(
            &endpoints.login,
            "tenant",
            "client",
            Secret::new(CLIENT_SECRET),
            &endpoints.scope,
            super::super::GRAPH_PERMISSION,
        );
        let limits = GraphLimits {
            max_attempts: 2,
            base_backoff: Duration::from_millis(10),
            ..GraphLimits::default()
        };
        Api::new(&endpoints, tokens, limits).unwrap()
    }

    #[tokio::test]
    async fn redirects_never_carry_the_secret_or_the_token_elsewhere() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let other = elsewhere(seen.clone()).await;
        let to = format!("{other}/steal");
        let login = serve(Router::new().route(
            "/tenant/oauth2/v2.0/token",
            post(move || async move { (Status::TEMPORARY_REDIRECT, [(header::LOCATION, to)]) }),
        ))
        .await;
        let api_redirected_login = api(&login, &login);
        let err = api_redirected_login
            .call(None, Call::get(api_redirected_login.url(&["users"])))
            .await
            .err()
            .expect("a refused redirect");
        assert!(err.to_string().contains("redirected to"), "{err}");

        let to = format!("{other}/steal");
        let graph = serve(token_route(3600).route(
            "/v1.0/users",
            get(move || async move { (Status::FOUND, [(header::LOCATION, to)]) }),
        ))
        .await;
        let api = api(&graph, &graph);
        let err = api
            .call(None, Call::get(api.url(&["users"])))
            .await
            .err()
            .expect("a refused redirect");
        assert!(err.to_string().contains("redirected to"), "{err}");
        assert_eq!(*seen.lock().unwrap(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn absurd_numbers_and_endless_bodies_end_calls_without_a_panic() {
        let graph = serve(
            token_route(u64::MAX)
                .route("/v1.0/users", get(|| async { "{}" }))
                .route(
                    "/v1.0/throttled",
                    get(|| async { (Status::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1e20")]) }),
                )
                .route(
                    "/v1.0/endless",
                    get(|| async {
                        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
                        let endless = futures_util::stream::repeat_with(move || {
                            Ok::<_, std::io::Error>(chunk.clone())
                        });
                        (
                            Status::INTERNAL_SERVER_ERROR,
                            axum::body::Body::from_stream(endless),
                        )
                    }),
                ),
        )
        .await;
        let api = api(&graph, &graph);
        let ok = api.call(None, Call::get(api.url(&["users"]))).await;
        assert!(ok.is_ok(), "expires_in u64::MAX: {:?}", ok.err());
        let throttled = api.call(None, Call::get(api.url(&["throttled"]))).await;
        assert!(
            matches!(throttled, Err(GraphError::GaveUp { status: 429, .. })),
            "{:?}",
            throttled.err()
        );
        let endless = tokio::time::timeout(
            Duration::from_secs(120),
            api.call(None, Call::get(api.url(&["endless"]))),
        )
        .await
        .expect("an endless error body is not read to its end");
        assert!(
            matches!(endless, Err(GraphError::GaveUp { status: 500, .. })),
            "{:?}",
            endless.err()
        );
    }
}
