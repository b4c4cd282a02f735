//! The TeleMessage API client: token auth with one transparent re-auth,
//! paged listing, verified and resumable downloads, and bounded retries.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::StreamExt;
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url, header};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

use super::model::{Account, ApiErrorBody, Item, ItemPage, RegisteredUser, UserPage};
use super::retry::{RetryPolicy, parse_retry_after};
use crate::content::{Content, MEMORY_LIMIT};
use crate::mailbox::target::is_loopback_host;
use crate::secrets::Secret;

/// What went wrong talking to TeleMessage.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the endpoint {0:?} is not a valid URL")]
    BadEndpoint(String),
    #[error("the endpoint {0} uses plain http:// to a host that is not loopback")]
    InsecureEndpoint(String),
    #[error("TeleMessage refused the user name or password (invalid_credentials)")]
    InvalidCredentials,
    #[error("TeleMessage refused access ({code}): {message}")]
    Forbidden { code: String, message: String },
    #[error("TeleMessage rejected a fresh token twice in a row")]
    TokenRejected,
    #[error("TeleMessage answered 400 to {what}: {message}")]
    BadRequest { what: String, message: String },
    #[error("item {0} was purged from TeleMessage since it was listed (404)")]
    ItemGone(String),
    #[error(
        "item {0:?} cannot be requested: its id is a '.' or '..' path segment, which no URL can carry; ask TeleMessage for its content"
    )]
    UnaddressableItem(String),
    #[error("{what} failed after {attempts} attempts over {elapsed:?}: {last}")]
    GaveUp {
        what: String,
        attempts: u32,
        elapsed: Duration,
        last: String,
    },
    #[error("TeleMessage asked to wait {0:?} (Retry-After), longer than this run will wait")]
    RetryAfterTooLong(Duration),
    #[error("cannot write the spool file {path}: {source}")]
    Spool {
        path: String,
        source: std::io::Error,
    },
}

impl ClientError {
    /// Failures that concern one item only; the run goes on without it.
    pub fn is_item_only(&self) -> bool {
        matches!(
            self,
            ClientError::ItemGone(_)
                | ClientError::UnaddressableItem(_)
                | ClientError::GaveUp { .. }
                | ClientError::Spool { .. }
        )
    }
}

/// Timeouts and limits for the client.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    /// Longest silence while reading a body before the read is retried.
    pub read_timeout: Duration,
    pub retry: RetryPolicy,
    /// Items per listing page (1..1000).
    pub page_limit: u32,
    /// Content downloads at once, however many items the caller has in
    /// flight (a writer that batches, like IMAP, wants many).
    pub downloads_at_once: usize,
    /// Bytes of downloaded bodies held in memory at once; a body that
    /// does not fit is spooled to a file instead.
    pub memory_budget: u64,
}

/// Environment variable setting the longest silence while reading a body,
/// in seconds (default 30): a gateway known to pause longer needs more, a
/// test of stalled bodies less.
pub const READ_TIMEOUT_ENV: &str = "WECHAT_ARCHIVER_READ_TIMEOUT_SECONDS";

impl Default for ClientOptions {
    fn default() -> Self {
        let read_timeout = std::env::var(READ_TIMEOUT_ENV)
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .map_or(Duration::from_secs(30), Duration::from_secs_f64);
        ClientOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout,
            retry: RetryPolicy::default(),
            page_limit: 1000,
            downloads_at_once: 16,
            memory_budget: 16 * 1024 * 1024,
        }
    }
}

/// A connection to one TeleMessage account. Cheap to clone; clones share
/// the token and the HTTP connection pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    username: String,
    password: Secret,
    options: ClientOptions,
    token: Mutex<Option<String>>,
    /// How many calls each recent token was sent with.
    uses: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    /// Until when TeleMessage asked us (`429` with `Retry-After`) to keep
    /// quiet: every call waits it out, not only the one that was told.
    quiet_until: std::sync::Mutex<Option<Instant>>,
    download_slots: Arc<Semaphore>,
    memory: MemoryBudget,
}

/// One failed attempt, and whether it is worth another.
enum Attempt {
    Retry { reason: String, wait: Duration },
    Fatal(ClientError),
}

impl Client {
    /// Checks the endpoint (https, or http to loopback only) and builds the
    /// client; nothing is sent yet.
    pub fn new(
        endpoint: &str,
        username: &str,
        password: Secret,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let base = check_endpoint(endpoint)?;
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .user_agent(concat!("wechat-archiver/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(32)
            .build()
            .map_err(|e| ClientError::BadEndpoint(format!("{endpoint}: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                username: username.to_owned(),
                password,
                token: Mutex::new(None),
                uses: std::sync::Mutex::new(std::collections::HashMap::new()),
                quiet_until: std::sync::Mutex::new(None),
                download_slots: Arc::new(Semaphore::new(options.downloads_at_once.max(1))),
                memory: MemoryBudget::new(options.memory_budget),
                options,
            }),
        })
    }

    /// The endpoint, for messages.
    pub fn endpoint(&self) -> &str {
        self.inner.base.as_str()
    }

    /// Exchanges the credentials for a token; the check `login` runs
    /// before it stores a password.
    pub async fn authenticate(&self) -> Result<Account, ClientError> {
        let (token, account) = self.fetch_token().await?;
        *self.inner.token.lock().await = Some(token);
        Ok(account)
    }

    pub async fn account(&self) -> Result<Account, ClientError> {
        let url = self.url("/v1/account", &[]);
        self.get_json(url, "the account").await
    }

    /// Every registered user, all pages.
    pub async fn registered_users(&self) -> Result<Vec<RegisteredUser>, ClientError> {
        let mut users = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("limit", "1000".to_owned())];
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let url = self.url("/v1/account/users", &query);
            let page: UserPage = self.get_json(url, "the registered users").await?;
            users.extend(page.users);
            match page.next_cursor {
                Some(c) if !c.is_empty() => cursor = Some(c),
                _ => return Ok(users),
            }
        }
    }

    /// Lists a window page by page; see [`Listing`].
    pub fn list(&self, since: DateTime<Utc>, until: DateTime<Utc>) -> Listing {
        Listing {
            client: self.clone(),
            since,
            until,
            cursor: None,
            done: false,
            resume_from: None,
        }
    }

    /// Downloads an item's content, verifies size and SHA-256 against the
    /// listing, and resumes an interrupted body with `Range`. Bodies over
    /// [`MEMORY_LIMIT`], or beyond the memory budget, are spooled to a file
    /// in `spool_dir`.
    pub async fn download(&self, item: &Item, spool_dir: &Path) -> Result<Content, ClientError> {
        let _slot = self.inner.download_slots.acquire().await.ok();
        let what = format!("downloading item {}", item.id);
        let url = self.content_url(item)?;
        let mut sink = Sink::new(item, spool_dir, &self.inner.memory).await?;
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = self.download_attempt(&url, item, &mut sink).await;
            let failure = match outcome {
                Ok(()) => match sink.verify(item) {
                    Ok(()) => return sink.finish().await,
                    Err(reason) => {
                        sink.reset().await?;
                        Attempt::Retry {
                            reason,
                            wait: self.inner.options.retry.backoff(attempt),
                        }
                    }
                },
                Err(failure) => failure,
            };
            match failure {
                Attempt::Fatal(e) => return Err(e),
                Attempt::Retry { reason, wait } => {
                    self.wait_or_give_up(&what, attempt, started, reason, wait)
                        .await?
                }
            }
        }
    }

    async fn download_attempt(
        &self,
        url: &Url,
        item: &Item,
        sink: &mut Sink,
    ) -> Result<(), Attempt> {
        let offset = sink.received;
        let response = self
            .send(|http| {
                let req = http
                    .get(url.clone())
                    .header(header::ACCEPT, "message/rfc822");
                if offset > 0 {
                    req.header(header::RANGE, format!("bytes={offset}-"))
                } else {
                    req
                }
            })
            .await?;
        match response.status() {
            StatusCode::OK if offset > 0 => sink.reset().await.map_err(Attempt::Fatal)?,
            StatusCode::OK => {}
            StatusCode::PARTIAL_CONTENT if range_start(&response) == Some(offset) => {}
            StatusCode::PARTIAL_CONTENT => {
                sink.reset().await.map_err(Attempt::Fatal)?;
                return Err(retry_now("a 206 answer for the wrong range"));
            }
            StatusCode::NOT_FOUND => {
                // Only the API's own answer means purged; any other 404 (a
                // proxy, a wrong path) must not mark the item gone for good.
                let body = error_body(response).await;
                if body.error == "item_not_found" {
                    return Err(Attempt::Fatal(ClientError::ItemGone(item.id.to_string())));
                }
                return Err(retry_now(&format!(
                    "404 without item_not_found ({}) for the content",
                    if body.error.is_empty() {
                        "no API error body"
                    } else {
                        &body.error
                    }
                )));
            }
            status => return Err(self.classify(response, status, "the content").await),
        }
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| retry_now(&format!("the body broke off: {e}")))?;
            if sink.received + chunk.len() as u64 > item.size {
                sink.reset().await.map_err(Attempt::Fatal)?;
                return Err(retry_now("the body is longer than the listed size"));
            }
            sink.write(&chunk).await.map_err(Attempt::Fatal)?;
        }
        if sink.received < item.size {
            return Err(retry_now("the body ended early"));
        }
        Ok(())
    }

    /// The content URL, the id percent-encoded as one path segment (an id
    /// may hold `%`, `?`, `#`, `\` or spaces).
    fn content_url(&self, item: &Item) -> Result<Url, ClientError> {
        let id = item.id.as_str();
        if matches!(id, "." | "..") {
            return Err(ClientError::UnaddressableItem(id.to_owned()));
        }
        let mut url = self.url("/v1/archive/items", &[]);
        url.path_segments_mut()
            .map_err(|()| ClientError::BadEndpoint(self.endpoint().to_owned()))?
            .push(id)
            .push("content");
        Ok(url)
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> Url {
        let mut url = self.inner.base.clone();
        let base_path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base_path}{path}"));
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: Url,
        what: &str,
    ) -> Result<T, ClientError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.get_json_attempt(&url, what).await {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            match failure {
                Attempt::Fatal(e) => return Err(e),
                Attempt::Retry { reason, wait } => {
                    self.wait_or_give_up(what, attempt, started, reason, wait)
                        .await?
                }
            }
        }
    }

    async fn get_json_attempt<T: serde::de::DeserializeOwned>(
        &self,
        url: &Url,
        what: &str,
    ) -> Result<T, Attempt> {
        let response = self.send(|http| http.get(url.clone())).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.classify(response, status, what).await);
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| retry_now(&format!("the answer broke off: {e}")))?;
        serde_json::from_slice(&body)
            .map_err(|e| retry_now(&format!("the answer is not the promised JSON: {e}")))
    }

    /// Sends a request with the current token; on `token_expired` fetches
    /// a new token and repeats. Tasks share tokens, so a token fetched for
    /// this call may have served others and expired before this call got
    /// to it: only a fresh token refused on its only use is "rejected"
    /// (fatal); a churn of expiries is retried like any transient error.
    /// Network errors become retries.
    async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, Attempt> {
        let mut token = self.current_token().await.map_err(Attempt::Fatal)?;
        let mut fetched_here = false;
        for _ in 0..4 {
            let response = self.send_once(&build, &token).await?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            let body = error_body(response).await;
            if body.error != "token_expired" || (fetched_here && self.uses_of(&token) <= 1) {
                return Err(Attempt::Fatal(ClientError::TokenRejected));
            }
            (token, fetched_here) = self.refresh_token(&token).await.map_err(Attempt::Fatal)?;
        }
        Err(retry_now("TeleMessage expired several tokens in a row"))
    }

    async fn send_once(
        &self,
        build: &impl Fn(&reqwest::Client) -> RequestBuilder,
        token: &str,
    ) -> Result<Response, Attempt> {
        self.keep_quiet().await;
        self.count_use(token);
        build(&self.inner.http)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| retry_now(&describe_reqwest_error(&e)))
    }

    fn count_use(&self, token: &str) {
        let mut uses = self.inner.uses.lock().unwrap_or_else(|p| p.into_inner());
        if !uses.contains_key(token) && uses.len() >= 16 {
            uses.clear();
        }
        *uses.entry(token.to_owned()).or_default() += 1;
    }

    fn uses_of(&self, token: &str) -> u64 {
        let uses = self.inner.uses.lock().unwrap_or_else(|p| p.into_inner());
        uses.get(token).copied().unwrap_or(0)
    }

    async fn current_token(&self) -> Result<String, ClientError> {
        let mut guard = self.inner.token.lock().await;
        if let Some(token) = guard.as_ref() {
            return Ok(token.clone());
        }
        let (token, _) = self.fetch_token().await?;
        *guard = Some(token.clone());
        Ok(token)
    }

    /// Replaces `stale` with a new token, unless another task already did;
    /// says whether the token was fetched by this call.
    async fn refresh_token(&self, stale: &str) -> Result<(String, bool), ClientError> {
        let mut guard = self.inner.token.lock().await;
        if let Some(current) = guard.as_ref().filter(|t| t.as_str() != stale) {
            return Ok((current.clone(), false));
        }
        let (token, _) = self.fetch_token().await?;
        *guard = Some(token.clone());
        Ok((token, true))
    }

    async fn fetch_token(&self) -> Result<(String, Account), ClientError> {
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            access_token: String,
            account: Account,
        }
        let url = self.url("/v1/auth/token", &[]);
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.token_attempt::<TokenAnswer>(&url).await {
                Ok(answer) => return Ok((answer.access_token, answer.account)),
                Err(failure) => failure,
            };
            match failure {
                Attempt::Fatal(e) => return Err(e),
                Attempt::Retry { reason, wait } => {
                    self.wait_or_give_up(
                        "signing in to TeleMessage",
                        attempt,
                        started,
                        reason,
                        wait,
                    )
                    .await?
                }
            }
        }
    }

    async fn token_attempt<T: serde::de::DeserializeOwned>(&self, url: &Url) -> Result<T, Attempt> {
        let body = serde_json::json!({
            "username": self.inner.username,
            "password": self.inner.password.expose(),
        });
        self.keep_quiet().await;
        let response = self
            .inner
            .http
            .request(Method::POST, url.clone())
            .json(&body)
            .send()
            .await
            .map_err(|e| retry_now(&describe_reqwest_error(&e)))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            return Err(Attempt::Fatal(ClientError::InvalidCredentials));
        }
        if !status.is_success() {
            return Err(self.classify(response, status, "signing in").await);
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| retry_now(&format!("the token answer broke off: {e}")))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| retry_now(&format!("the token answer is not the promised JSON: {e}")))
    }

    /// Turns an unsuccessful answer into a retry or a fatal error.
    async fn classify(&self, response: Response, status: StatusCode, what: &str) -> Attempt {
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = error_body(response).await;
        let detail = if body.message.is_empty() {
            body.error.clone()
        } else {
            format!("{}: {}", body.error, body.message)
        };
        match status {
            StatusCode::TOO_MANY_REQUESTS => {
                let wait = retry_after.unwrap_or(Duration::from_secs(1));
                if wait > self.inner.options.retry.max_retry_after {
                    return Attempt::Fatal(ClientError::RetryAfterTooLong(wait));
                }
                self.quiet_for(wait);
                Attempt::Retry {
                    reason: format!("rate limited (429) {detail}"),
                    wait,
                }
            }
            StatusCode::FORBIDDEN => Attempt::Fatal(ClientError::Forbidden {
                code: body.error,
                message: body.message,
            }),
            StatusCode::BAD_REQUEST => Attempt::Fatal(ClientError::BadRequest {
                what: what.to_owned(),
                message: detail,
            }),
            s if s.is_server_error() => Attempt::Retry {
                reason: format!("server error {s} {detail}"),
                wait: retry_after.unwrap_or(Duration::ZERO),
            },
            s => Attempt::Retry {
                reason: format!("unexpected answer {s} {detail}"),
                wait: Duration::ZERO,
            },
        }
    }

    /// Sleeps until a running `Retry-After` has passed.
    async fn keep_quiet(&self) {
        loop {
            let until = *self
                .inner
                .quiet_until
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match until {
                Some(until) if until > Instant::now() => {
                    tokio::time::sleep_until(until.into()).await
                }
                _ => return,
            }
        }
    }

    fn quiet_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut quiet = self
            .inner
            .quiet_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *quiet = Some(quiet.map_or(until, |q| q.max(until)));
    }

    /// Sleeps before the next attempt, or gives up when the policy's count
    /// or total time would be exceeded. A `wait` of zero means "use backoff".
    async fn wait_or_give_up(
        &self,
        what: &str,
        attempt: u32,
        started: Instant,
        reason: String,
        wait: Duration,
    ) -> Result<(), ClientError> {
        let policy = &self.inner.options.retry;
        let wait = if wait.is_zero() {
            policy.backoff(attempt)
        } else {
            wait
        };
        let elapsed = started.elapsed();
        if attempt >= policy.max_attempts || elapsed + wait > policy.max_total {
            return Err(ClientError::GaveUp {
                what: what.to_owned(),
                attempts: attempt,
                elapsed,
                last: reason,
            });
        }
        tracing::info!("{what}: {reason}; retrying in {wait:?} (attempt {attempt})");
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

/// Pages through one window. Items can repeat across pages; the caller
/// dedupes by id. An expired cursor restarts the listing at the last
/// `archived_at` seen, which the order of the listing makes safe.
pub struct Listing {
    client: Client,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    cursor: Option<String>,
    done: bool,
    resume_from: Option<DateTime<Utc>>,
}

impl Listing {
    /// The next page of items, or `None` when the window is done.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Item>>, ClientError> {
        if self.done {
            return Ok(None);
        }
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.page_attempt().await {
                Ok(page) => return Ok(Some(self.accept(page))),
                Err(failure) => failure,
            };
            match failure {
                Attempt::Fatal(e) => return Err(e),
                Attempt::Retry { reason, wait } => {
                    self.client
                        .wait_or_give_up("listing archived items", attempt, started, reason, wait)
                        .await?
                }
            }
        }
    }

    fn accept(&mut self, page: ItemPage) -> Vec<Item> {
        if let Some(last) = page.items.iter().map(|i| i.archived_at).max() {
            self.resume_from = Some(self.resume_from.map_or(last, |r| r.max(last)));
        }
        match page.next_cursor {
            Some(c) if !c.is_empty() => self.cursor = Some(c),
            _ => self.done = true,
        }
        page.items
    }

    async fn page_attempt(&mut self) -> Result<ItemPage, Attempt> {
        let since = self.since;
        let mut query = vec![
            ("since", rfc3339(since)),
            ("until", rfc3339(self.until)),
            ("limit", self.client.inner.options.page_limit.to_string()),
        ];
        if let Some(cursor) = &self.cursor {
            query.push(("cursor", cursor.clone()));
        }
        let url = self.client.url("/v1/archive/items", &query);
        let response = self.client.send(|http| http.get(url.clone())).await?;
        let status = response.status();
        if status == StatusCode::GONE {
            tracing::info!("the listing cursor expired; restarting from the last item seen");
            self.cursor = None;
            if let Some(resume) = self.resume_from {
                self.since = resume;
            }
            return Err(Attempt::Retry {
                reason: "cursor expired (410)".into(),
                wait: Duration::from_millis(1),
            });
        }
        if !status.is_success() {
            return Err(self.client.classify(response, status, "listing").await);
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| retry_now(&format!("the listing broke off: {e}")))?;
        serde_json::from_slice(&body)
            .map_err(|e| retry_now(&format!("the listing is not the promised JSON: {e}")))
    }
}

/// Where a download's bytes go while they arrive, with a running hash.
struct Sink {
    hasher: Sha256,
    received: u64,
    target: SinkTarget,
}

enum SinkTarget {
    Memory(BytesMut, Option<OwnedSemaphorePermit>),
    File {
        path: std::path::PathBuf,
        file: tokio::fs::File,
    },
}

impl Sink {
    async fn new(
        item: &Item,
        spool_dir: &Path,
        memory: &MemoryBudget,
    ) -> Result<Sink, ClientError> {
        let reserved = (item.size <= MEMORY_LIMIT)
            .then(|| memory.try_reserve(item.size))
            .flatten();
        let target = if let Some(permit) = reserved {
            SinkTarget::Memory(BytesMut::with_capacity(item.size as usize), Some(permit))
        } else {
            let path = spool_dir.join(format!("{}-{}.part", item.id.tag(), rand::random::<u32>()));
            let spool_err = |source| ClientError::Spool {
                path: path.display().to_string(),
                source,
            };
            tokio::fs::create_dir_all(spool_dir)
                .await
                .map_err(spool_err)?;
            let file = tokio::fs::File::create(&path).await.map_err(spool_err)?;
            SinkTarget::File { path, file }
        };
        Ok(Sink {
            hasher: Sha256::new(),
            received: 0,
            target,
        })
    }

    async fn write(&mut self, chunk: &Bytes) -> Result<(), ClientError> {
        self.hasher.update(chunk);
        self.received += chunk.len() as u64;
        match &mut self.target {
            SinkTarget::Memory(buf, _) => buf.extend_from_slice(chunk),
            SinkTarget::File { path, file } => {
                file.write_all(chunk)
                    .await
                    .map_err(|source| ClientError::Spool {
                        path: path.display().to_string(),
                        source,
                    })?
            }
        }
        Ok(())
    }

    async fn reset(&mut self) -> Result<(), ClientError> {
        self.hasher = Sha256::new();
        self.received = 0;
        match &mut self.target {
            SinkTarget::Memory(buf, _) => buf.clear(),
            SinkTarget::File { path, file } => {
                let spool_err = |source| ClientError::Spool {
                    path: path.display().to_string(),
                    source,
                };
                file.set_len(0).await.map_err(spool_err)?;
                use tokio::io::AsyncSeekExt;
                file.seek(std::io::SeekFrom::Start(0))
                    .await
                    .map_err(spool_err)?;
            }
        }
        Ok(())
    }

    fn verify(&self, item: &Item) -> Result<(), String> {
        if self.received != item.size {
            return Err(format!(
                "the content is {} bytes, the listing says {}",
                self.received, item.size
            ));
        }
        let digest = hex::encode(self.hasher.clone().finalize());
        if !digest.eq_ignore_ascii_case(&item.sha256) {
            return Err(format!(
                "the content's SHA-256 is {digest}, the listing says {}",
                item.sha256
            ));
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<Content, ClientError> {
        let target = std::mem::replace(&mut self.target, SinkTarget::Memory(BytesMut::new(), None));
        match target {
            SinkTarget::Memory(buf, permit) => Ok(Content::Memory(Bytes::from_owner(Budgeted {
                bytes: buf.freeze(),
                _permit: permit,
            }))),
            SinkTarget::File { path, mut file } => {
                let spool_err = |source| ClientError::Spool {
                    path: path.display().to_string(),
                    source,
                };
                file.flush().await.map_err(spool_err)?;
                drop(file);
                Ok(Content::Spooled {
                    path,
                    len: self.received,
                })
            }
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let SinkTarget::File { path, .. } = &self.target {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn retry_now(reason: &str) -> Attempt {
    Attempt::Retry {
        reason: reason.to_owned(),
        wait: Duration::ZERO,
    }
}

async fn error_body(response: Response) -> ApiErrorBody {
    let bytes = response.bytes().await.unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or_default()
}

fn range_start(response: &Response) -> Option<u64> {
    let value = response
        .headers()
        .get(header::CONTENT_RANGE)?
        .to_str()
        .ok()?;
    let range = value.strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn describe_reqwest_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the connection failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind} ({detail})")
    }
}

/// Accepts `https://` anywhere and `http://` only to a loopback host.
pub fn check_endpoint(endpoint: &str) -> Result<Url, ClientError> {
    let url = Url::parse(endpoint).map_err(|_| ClientError::BadEndpoint(endpoint.to_owned()))?;
    let host = url
        .host_str()
        .ok_or_else(|| ClientError::BadEndpoint(endpoint.to_owned()))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback_host(host) => Ok(url),
        "http" => Err(ClientError::InsecureEndpoint(endpoint.to_owned())),
        _ => Err(ClientError::BadEndpoint(endpoint.to_owned())),
    }
}

/// Memory for downloaded bodies, in KiB permits: the engine may hold many
/// items in flight without their bodies outgrowing the budget.
struct MemoryBudget(Arc<Semaphore>);

impl MemoryBudget {
    fn new(bytes: u64) -> MemoryBudget {
        let kib = (bytes / 1024).min(u64::from(u32::MAX >> 3)) as usize;
        MemoryBudget(Arc::new(Semaphore::new(kib)))
    }

    /// Room for a body of `bytes`, if the budget has it now.
    fn try_reserve(&self, bytes: u64) -> Option<OwnedSemaphorePermit> {
        let kib = u32::try_from(bytes.div_ceil(1024).max(1)).ok()?;
        Arc::clone(&self.0).try_acquire_many_owned(kib).ok()
    }
}

/// A body in memory with its share of the budget, returned when the last
/// reference to the bytes is dropped.
struct Budgeted {
    bytes: Bytes,
    _permit: Option<OwnedSemaphorePermit>,
}

impl AsRef<[u8]> for Budgeted {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TeleMessage API on loopback that issues tokens and answers
    /// content requests with `content`; returns its URL.
    async fn serve_content(content: axum::routing::MethodRouter) -> String {
        let app = axum::Router::new()
            .route(
                "/v1/auth/token",
                axum::routing::post(|| async {
                    axum::Json(serde_json::json!({
                        "access_token": "t",
                        "account": {"id": "a", "name": "A"},
                    }))
                }),
            )
            .route("/v1/archive/items/{id}/content", content);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    /// Bodies beyond the memory budget are spooled, however small, and
    /// the budget comes back when a body in memory is dropped.
    #[tokio::test]
    async fn bodies_beyond_the_memory_budget_are_spooled() {
        const BODY: &[u8] = &[b'x'; 40_000];
        let url = serve_content(axum::routing::get(|| async { BODY })).await;
        let options = ClientOptions {
            memory_budget: 64 * 1024,
            ..ClientOptions::default()
        };
        let client = Client::new(&url, "u", Secret::new("p"), options).unwrap();
        let item: Item = serde_json::from_value(serde_json::json!({
            "id": "itm_1", "platform": "wechat", "type": "chat",
            "conversation": {"id": "c", "kind": "direct", "title": ""},
            "sent_at": "2026-11-22T08:15:00Z", "archived_at": "2026-11-22T08:15:03Z",
            "sender": {"name": "", "mobile": null, "email": null, "wechat_id": "w"},
            "participants": [], "size": BODY.len(), "sha256": hex::encode(Sha256::digest(BODY))
        }))
        .unwrap();
        let spool = tempfile::tempdir().unwrap();

        let first = client.download(&item, spool.path()).await.unwrap();
        assert!(first.path().is_none(), "the first body fits the budget");
        let second = client.download(&item, spool.path()).await.unwrap();
        let spooled = second
            .path()
            .expect("the second body is spooled")
            .to_owned();
        assert_eq!(std::fs::read(&spooled).unwrap(), BODY);
        assert_eq!(first.to_bytes().await.unwrap(), BODY);
        drop(first);
        let third = client.download(&item, spool.path()).await.unwrap();
        assert!(third.path().is_none(), "the budget came back");
    }

    /// A 404 that is not the API's `item_not_found` (a proxy's page, a
    /// wrong path) is retried and then fails the item; it is not "gone".
    #[tokio::test]
    async fn only_item_not_found_marks_an_item_gone() {
        use axum::routing::get;
        let url = serve_content(get(
            |axum::extract::Path(id): axum::extract::Path<String>| async move {
                let code = if id == "purged" { "item_not_found" } else { "" };
                (
                    StatusCode::NOT_FOUND,
                    axum::Json(serde_json::json!({"error": code})),
                )
            },
        ))
        .await;
        let mut options = ClientOptions::default();
        options.retry.max_attempts = 2;
        let client = Client::new(&url, "u", Secret::new("p"), options).unwrap();
        let item = |id: &str| -> Item {
            serde_json::from_value(serde_json::json!({
                "id": id, "platform": "wechat", "type": "chat",
                "conversation": {"id": "c", "kind": "direct", "title": ""},
                "sent_at": "2026-11-22T08:15:00Z", "archived_at": "2026-11-22T08:15:03Z",
                "sender": {"name": "n"}, "size": 1, "sha256": "00",
            }))
            .unwrap()
        };
        let spool = std::env::temp_dir();
        let purged = client.download(&item("purged"), &spool).await;
        assert!(
            matches!(purged, Err(ClientError::ItemGone(_))),
            "{purged:?}"
        );
        let other = client.download(&item("other"), &spool).await;
        assert!(
            matches!(other, Err(ClientError::GaveUp { .. })),
            "{other:?}"
        );
    }

    /// A server whose tokens never work: one fresh token, then the run stops.
    #[tokio::test]
    async fn a_fresh_token_refused_on_its_first_use_stops_the_run() {
        use axum::routing::{get, post};
        use std::sync::atomic::{AtomicU32, Ordering};
        static TOKENS: AtomicU32 = AtomicU32::new(0);
        let app = axum::Router::new()
            .route(
                "/v1/auth/token",
                post(|| async {
                    let n = TOKENS.fetch_add(1, Ordering::SeqCst);
                    axum::Json(serde_json::json!({
                        "access_token": format!("t{n}"),
                        "account": {"id": "a", "name": "A"},
                    }))
                }),
            )
            .route(
                "/v1/account",
                get(|| async {
                    (
                        StatusCode::UNAUTHORIZED,
                        axum::Json(serde_json::json!({"error": "token_expired"})),
                    )
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = Client::new(&url, "u", Secret::new("p"), ClientOptions::default()).unwrap();
        let result = client.account().await;
        assert!(
            matches!(result, Err(ClientError::TokenRejected)),
            "{:?}",
            result.err()
        );
        assert_eq!(
            TOKENS.load(Ordering::SeqCst),
            2,
            "one token, then one fresh token"
        );
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(check_endpoint("https://archive.example.net").is_ok());
        assert!(check_endpoint("http://127.0.0.1:8080").is_ok());
        assert!(check_endpoint("http://[::1]:8080/api").is_ok());
        assert!(matches!(
            check_endpoint("http://archive.example.net"),
            Err(ClientError::InsecureEndpoint(_))
        ));
        assert!(check_endpoint("ftp://x").is_err());
        assert!(check_endpoint("not a url").is_err());
    }
}
