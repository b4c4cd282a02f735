//! The HTTP side: every endpoint of the TeleMessage contract, with the
//! armed faults applied in the order a real gateway would (rate limits and
//! outages before authentication, body faults last).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::config::SimConfig;
use super::content::ContentChunks;
use super::dataset::{Dataset, Recipe, measure_all};
use super::faults::{BodyFaults, Endpoint, FaultControl, Status};
use super::stats::{DownloadGuard, StatsInner};

/// A cursor older than this answers `410`, as the contract allows.
const CURSOR_LIFETIME: i64 = 24 * 3600;

struct TokenState {
    expires: Instant,
    revoked: bool,
    served: u64,
}

/// Everything the handlers share.
pub(crate) struct Shared {
    pub config: SimConfig,
    pub dataset: Arc<Dataset>,
    pub faults: FaultControl,
    pub stats: Arc<StatsInner>,
    tokens: Mutex<HashMap<String, TokenState>>,
}

impl Shared {
    pub fn new(config: SimConfig) -> Shared {
        let stats = Arc::new(StatsInner::default());
        let faults = FaultControl::new(stats.clone(), config.refusal);
        for f in &config.faults {
            faults.arm(f.clone());
        }
        Shared {
            dataset: Arc::new(Dataset::generate(&config)),
            config,
            faults,
            stats,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Counts the request and applies a `429`/`5xx` fault if one is armed.
    fn admit(&self, endpoint: Endpoint) -> Result<(), ApiError> {
        self.stats.request(endpoint.name());
        match self.faults.status_for(endpoint) {
            None => Ok(()),
            Some(Status::Error(code)) => Err(error(
                StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                "server_error",
                "simulated outage",
            )),
            Some(Status::TooMany(wait)) => Err(self.too_many(wait)),
        }
    }

    fn too_many(&self, wait: Duration) -> ApiError {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let (value, announced) = if self.faults.retry_after_date() {
            let now = SystemTime::now();
            let target = (now + Duration::from_secs(secs))
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let whole = UNIX_EPOCH + Duration::from_secs(target.as_secs() + 1);
            let announced = whole.duration_since(now).unwrap_or_default();
            (httpdate::fmt_http_date(whole), announced)
        } else {
            (secs.to_string(), Duration::from_secs(secs))
        };
        self.stats.retry_after(announced);
        error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "slow down")
            .with_header(header::RETRY_AFTER, value)
    }

    /// Checks the bearer token; may fire an `expire-token` fault, but never
    /// on a token's first call, so a fresh token always gets through once.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let expired = || {
            error(
                StatusCode::UNAUTHORIZED,
                "token_expired",
                "token expired or unknown; get a new one",
            )
        };
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                error(
                    StatusCode::UNAUTHORIZED,
                    "token_expired",
                    "missing bearer token",
                )
            })?;
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let state = tokens.get_mut(token).ok_or_else(expired)?;
        if state.revoked || Instant::now() >= state.expires {
            return Err(expired());
        }
        if state.served >= 1 && self.faults.take_expire_token() {
            state.revoked = true;
            return Err(expired());
        }
        state.served += 1;
        Ok(())
    }

    fn gate(&self, endpoint: Endpoint, headers: &HeaderMap) -> Result<(), ApiError> {
        self.admit(endpoint)?;
        self.authorize(headers)
    }

    fn issue_token(&self) -> String {
        let token = hex::encode(rand::random::<[u8; 24]>());
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                token.clone(),
                TokenState {
                    expires: Instant::now() + self.config.token_lifetime,
                    revoked: false,
                    served: 0,
                },
            );
        self.stats.token_issued();
        token
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/auth/token", post(token))
        .route("/v1/account", get(account))
        .route("/v1/account/users", get(users))
        .route("/v1/archive/items", get(list))
        .route("/v1/archive/items/{id}/content", get(content))
        .route("/_sim/faults", post(arm_faults))
        .route("/_sim/stats", get(stats))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .with_state(shared)
}

/// An error answer of the contract: a status and `{"error", "message"}`.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    header: Option<(header::HeaderName, String)>,
}

impl ApiError {
    fn with_header(mut self, name: header::HeaderName, value: String) -> Self {
        self.header = Some((name, value));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = axum::Json(json!({"error": self.code, "message": self.message}));
        let mut resp = (self.status, body).into_response();
        if let Some((name, value)) = self.header
            && let Ok(v) = HeaderValue::from_str(&value)
        {
            resp.headers_mut().insert(name, v);
        }
        resp
    }
}

fn error(status: StatusCode, code: &'static str, message: &str) -> ApiError {
    ApiError {
        status,
        code,
        message: message.to_owned(),
        header: None,
    }
}

fn bad_request(message: impl AsRef<str>) -> ApiError {
    error(StatusCode::BAD_REQUEST, "invalid_request", message.as_ref())
}

type S = State<Arc<Shared>>;

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

async fn token(State(s): S, body: Bytes) -> Result<Response, ApiError> {
    s.admit(Endpoint::Token)?;
    let Ok(creds) = serde_json::from_slice::<Credentials>(&body) else {
        return Err(bad_request(
            "body must be {\"username\": ..., \"password\": ...}",
        ));
    };
    if creds.username != s.config.username || creds.password != s.config.password {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong username or password",
        ));
    }
    if let Some(refusal) = s.faults.refusal() {
        let message = format!(
            "account {} cannot use the archive API",
            s.config.account_name
        );
        return Err(error(StatusCode::FORBIDDEN, refusal.code(), &message));
    }
    let expires_in = s.config.token_lifetime.as_secs();
    Ok(axum::Json(json!({
        "access_token": s.issue_token(),
        "token_type": "Bearer",
        "expires_in": expires_in,
        "account": {"id": s.config.account_id, "name": s.config.account_name},
    }))
    .into_response())
}

async fn account(State(s): S, headers: HeaderMap) -> Result<Response, ApiError> {
    s.gate(Endpoint::Account, &headers)?;
    Ok(axum::Json(json!({
        "id": s.config.account_id,
        "name": s.config.account_name,
        "products": ["wechat-archiver"],
        "timezone": "Asia/Shanghai",
    }))
    .into_response())
}

fn parse_limit(q: &HashMap<String, String>) -> Result<usize, ApiError> {
    match q.get("limit") {
        None => Ok(100),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => Ok(n),
            _ => Err(bad_request(format!("limit must be 1..1000, got {v:?}"))),
        },
    }
}

async fn users(
    State(s): S,
    headers: HeaderMap,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    s.gate(Endpoint::Users, &headers)?;
    let Ok(Query(q)) = q else {
        return Err(bad_request("malformed query string"));
    };
    let limit = parse_limit(&q)?;
    let start = match q.get("cursor") {
        None => 0,
        Some(c) => match decode_b64(c).and_then(|t| t.strip_prefix("u:")?.parse::<usize>().ok()) {
            Some(n) => n,
            None => return Err(bad_request("unknown cursor")),
        },
    };
    let all = s.dataset.users();
    let end = (start + limit).min(all.len());
    let page = &all[start.min(end)..end];
    let next = (end < all.len()).then(|| URL_SAFE_NO_PAD.encode(format!("u:{end}")));
    Ok(axum::Json(json!({"users": page, "next_cursor": next})).into_response())
}

fn decode_b64(s: &str) -> Option<String> {
    String::from_utf8(URL_SAFE_NO_PAD.decode(s).ok()?).ok()
}

fn parse_time(name: &str, v: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| bad_request(format!("{name} must be an RFC 3339 time, got {v:?}")))
}

/// Where a page ended, and which listing it belongs to.
#[derive(Serialize, Deserialize)]
struct Cursor {
    /// `archived_at` and id of the last item returned.
    t: DateTime<Utc>,
    i: String,
    /// `since` and (when the client gave one) `until` of the listing.
    s: DateTime<Utc>,
    u: Option<DateTime<Utc>>,
    /// Issued at (Unix seconds).
    c: i64,
}

impl Cursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("cursor serializes"))
    }

    fn decode(s: &str) -> Option<Cursor> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).ok()?).ok()
    }
}

struct ListQuery {
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    until_given: Option<DateTime<Utc>>,
    limit: usize,
    cursor: Option<Cursor>,
}

fn parse_list_query(q: &HashMap<String, String>) -> Result<ListQuery, ApiError> {
    let since = parse_time(
        "since",
        q.get("since")
            .ok_or_else(|| bad_request("since is required"))?,
    )?;
    let until_given = q.get("until").map(|u| parse_time("until", u)).transpose()?;
    let until = until_given.unwrap_or_else(Utc::now);
    if until < since {
        return Err(bad_request("until is before since"));
    }
    let limit = parse_limit(q)?;
    let cursor = match q.get("cursor") {
        None => None,
        Some(c) => {
            let cur = Cursor::decode(c).ok_or_else(|| bad_request("unknown cursor"))?;
            if cur.s != since || cur.u != until_given {
                return Err(bad_request("cursor belongs to another since/until window"));
            }
            Some(cur)
        }
    };
    Ok(ListQuery {
        since,
        until,
        until_given,
        limit,
        cursor,
    })
}

async fn list(
    State(s): S,
    headers: HeaderMap,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    s.gate(Endpoint::List, &headers)?;
    let Ok(Query(q)) = q else {
        return Err(bad_request("malformed query string"));
    };
    let q = parse_list_query(&q)?;
    if let Some(cur) = &q.cursor
        && (Utc::now().timestamp() - cur.c > CURSOR_LIFETIME || s.faults.take_expire_cursor())
    {
        return Err(error(
            StatusCode::GONE,
            "cursor_expired",
            "cursor expired; restart the window",
        ));
    }
    if s.faults.take_bad_json() {
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"items\": [{\"id\": \"itm_",
        )
            .into_response());
    }
    let (start, end, next) = page_bounds(&s.dataset, &q);
    let ds = s.dataset.clone();
    let measured =
        tokio::task::spawn_blocking(move || measure_all(&ds.recipes()[start..end])).await;
    if measured.is_err() {
        return Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "content generation failed",
        ));
    }
    Ok(page_response(
        &s,
        &s.dataset.recipes()[start..end],
        next,
        &q,
    ))
}

/// The recipe index range of the page and whether more follows.
fn page_bounds(ds: &Dataset, q: &ListQuery) -> (usize, usize, bool) {
    let range = ds.window_range(q.since, q.until);
    let window = &ds.recipes()[range.clone()];
    let skip = match &q.cursor {
        None => 0,
        Some(c) => {
            window.partition_point(|r| (r.archived_at, r.id.as_str()) <= (c.t, c.i.as_str()))
        }
    };
    let end = (skip + q.limit).min(window.len());
    (range.start + skip, range.start + end, end < window.len())
}

fn page_response(s: &Shared, page: &[Recipe], more: bool, q: &ListQuery) -> Response {
    let faults = s.faults.take_page_faults();
    let cursor_at = if faults.duplicate && more && page.len() >= 3 {
        page.len() - 3
    } else {
        page.len().saturating_sub(1)
    };
    let next = (more && !page.is_empty()).then(|| {
        let last = &page[cursor_at];
        Cursor {
            t: last.archived_at,
            i: last.id.as_str().to_owned(),
            s: q.since,
            u: q.until_given,
            c: Utc::now().timestamp(),
        }
        .encode()
    });
    let mut items: Vec<serde_json::Value> = page
        .iter()
        .map(|r| {
            s.faults.mark_listed(r.id.as_str());
            serde_json::to_value(s.dataset.item(r.id.as_str())).expect("items serialize")
        })
        .collect();
    if faults.reversed {
        items.reverse();
    }
    axum::Json(json!({"items": items, "next_cursor": next})).into_response()
}

async fn content(
    State(s): S,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    s.gate(Endpoint::Content, &headers)?;
    if s.dataset.recipe(&id).is_none() {
        return Err(error(
            StatusCode::NOT_FOUND,
            "item_not_found",
            "no such item",
        ));
    }
    if s.faults.is_purged(&id) {
        s.faults.fired("purge");
        return Err(error(
            StatusCode::NOT_FOUND,
            "item_not_found",
            "item was purged",
        ));
    }
    let ds = s.dataset.clone();
    let key = id.clone();
    let Ok(Some((size, sha))) =
        tokio::task::spawn_blocking(move || ds.recipe(&key).map(|r| r.measure().clone())).await
    else {
        return Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "content generation failed",
        ));
    };
    let range = match headers.get(header::RANGE) {
        None => None,
        Some(v) => {
            s.stats.range_request();
            match parse_range(v.to_str().unwrap_or(""), size) {
                RangeAnswer::Whole => None,
                RangeAnswer::Part(a, b) => Some((a, b)),
                RangeAnswer::Unsatisfiable => {
                    return Err(error(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "range_not_satisfiable",
                        "range outside the content",
                    )
                    .with_header(header::CONTENT_RANGE, format!("bytes */{size}")));
                }
            }
        }
    };
    let (start, len) = range.map_or((0, size), |(a, b)| (a, b - a + 1));
    let recipe = s.dataset.recipe(&id).expect("checked above");
    let body = BodyStream {
        chunks: ContentChunks::new(recipe, start),
        pending: None,
        remaining: len,
        sent: 0,
        drop_at: None,
        stall: None,
        corrupt: false,
        stats: s.stats.clone(),
        _guard: s.stats.download(),
    }
    .with_faults(s.faults.take_body_faults(), len);
    let mut resp = Response::new(Body::from_stream(futures_util::stream::unfold(
        body,
        BodyStream::step,
    )));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("message/rfc822"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{sha}\"")) {
        h.insert(header::ETAG, v);
    }
    if let Some((a, b)) = range {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{size}")) {
            h.insert(header::CONTENT_RANGE, v);
        }
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(resp)
}

enum RangeAnswer {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range; several ranges or a malformed header get the whole
/// content, as RFC 9110 allows.
fn parse_range(v: &str, size: u64) -> RangeAnswer {
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Whole;
    };
    if spec.contains(',') {
        return RangeAnswer::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAnswer::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        (true, false) => b
            .parse::<u64>()
            .ok()
            .map(|n| (size.saturating_sub(n), size.checked_sub(1), n == 0)),
        (false, _) => {
            let start = a.parse::<u64>().ok();
            let end = if b.is_empty() {
                Some(u64::MAX)
            } else {
                b.parse::<u64>().ok()
            };
            match (start, end) {
                (Some(s), Some(e)) if e >= s => {
                    Some((s, Some(e.min(size.saturating_sub(1))), s >= size))
                }
                _ => None,
            }
        }
        (true, true) => None,
    };
    match parsed {
        None => RangeAnswer::Whole,
        Some((_, None, _)) | Some((_, _, true)) => RangeAnswer::Unsatisfiable,
        Some((s, Some(e), false)) => RangeAnswer::Part(s, e),
    }
}

/// A content body on its way out, with its faults.
struct BodyStream {
    chunks: ContentChunks,
    pending: Option<Bytes>,
    remaining: u64,
    sent: u64,
    drop_at: Option<u64>,
    stall: Option<(u64, Duration)>,
    corrupt: bool,
    stats: Arc<StatsInner>,
    _guard: DownloadGuard,
}

impl BodyStream {
    fn with_faults(mut self, f: BodyFaults, len: u64) -> Self {
        self.drop_at = f.drop_after.map(|k| k.min(len.saturating_sub(1)));
        self.stall = f.stall.map(|d| (len / 2, d));
        self.corrupt = f.corrupt;
        self
    }

    async fn step(mut self) -> Option<(std::io::Result<Bytes>, Self)> {
        if self.drop_at.is_some_and(|k| self.sent >= k) {
            self.remaining = 0;
            self.drop_at = None;
            // Let hyper flush the head and the bytes so far: a client must
            // see a started body that breaks, not a refused request.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let cut = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "simulated drop");
            return Some((Err(cut), self));
        }
        if self.remaining == 0 {
            return None;
        }
        if let Some((at, wait)) = self.stall
            && self.sent >= at
        {
            self.stall = None;
            tokio::time::sleep(wait).await;
        }
        let mut chunk = loop {
            let c = self.pending.take().or_else(|| self.chunks.next())?;
            if !c.is_empty() {
                break c;
            }
        };
        let mut limit = self.remaining;
        if let Some(k) = self.drop_at {
            limit = limit.min(k - self.sent);
        }
        if let Some((at, _)) = self.stall {
            limit = limit.min(at - self.sent);
        }
        if (chunk.len() as u64) > limit {
            self.pending = Some(chunk.split_off(limit as usize));
        }
        if self.corrupt {
            let mut bytes = chunk.to_vec();
            bytes[0] ^= 0x55;
            chunk = Bytes::from(bytes);
        }
        self.sent += chunk.len() as u64;
        self.remaining -= chunk.len() as u64;
        self.stats.bytes_served(chunk.len() as u64);
        Some((Ok(chunk), self))
    }
}

async fn arm_faults(State(s): State<Arc<Shared>>, body: String) -> Response {
    match s.faults.arm_spec(&body) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => bad_request(e.to_string()).into_response(),
    }
}

async fn stats(State(s): State<Arc<Shared>>) -> Response {
    axum::Json(s.stats.snapshot()).into_response()
}
