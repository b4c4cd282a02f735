//! The TeleMessage API client: token auth with one transparent re-auth
//! (`auth`), paged listing (`listing`), verified and resumable downloads
//! (`download`, into a `sink`), and bounded retries (`retrying`).

mod auth;
mod download;
mod endpoint;
mod error;
mod head;
mod listing;
mod retrying;
mod sink;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Url;
use tokio::sync::{Mutex, Semaphore};

use super::model::{Account, RegisteredUser, UserPage};
use super::retry::RetryPolicy;
use crate::http::BodyError;
use crate::secrets::Secret;
use listing::Pages;
use retrying::{Attempt, retry_now};
use sink::MemoryBudget;

pub use endpoint::check_endpoint;
pub use error::ClientError;
pub use head::{HEAD_LIMIT, header_value, message_id_of};
pub use listing::Listing;

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
    /// Longest time one API call may take from sending to the last byte
    /// of its answer, however steadily the server drips it; a download
    /// gets this plus the time its size needs at [`MIN_DOWNLOAD_RATE`].
    pub request_deadline: Duration,
    /// Pages one listing may take before the run stops: a server that
    /// pages forever must not hold the connector's lock forever.
    pub max_pages: u32,
}

/// The slowest download rate (bytes per second) a content download is
/// given time for, on top of [`ClientOptions::request_deadline`].
pub const MIN_DOWNLOAD_RATE: u64 = 64 * 1024;

/// The largest token answer read.
const TOKEN_ANSWER_CAP: usize = 1024 * 1024;

/// The largest account or registered-users page read.
const JSON_ANSWER_CAP: usize = 32 * 1024 * 1024;

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
            request_deadline: Duration::from_secs(120),
            max_pages: 100_000,
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
        let http = crate::http::builder()
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .timeout(options.request_deadline)
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

    pub async fn account(&self) -> Result<Account, ClientError> {
        let url = self.url("/v1/account", &[]);
        self.get_json(url, "the account", JSON_ANSWER_CAP).await
    }

    /// Every registered user, all pages.
    pub async fn registered_users(&self) -> Result<Vec<RegisteredUser>, ClientError> {
        const WHAT: &str = "the registered users";
        let mut users = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = Pages::new(self.inner.options.max_pages);
        loop {
            let mut query = vec![("limit", "1000".to_owned())];
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let url = self.url("/v1/account/users", &query);
            let page: UserPage = self.get_json(url, WHAT, JSON_ANSWER_CAP).await?;
            if page.users.len() > 1000 {
                return Err(misbehaving(
                    WHAT,
                    format!(
                        "a page holds {} users, 1000 were asked for",
                        page.users.len()
                    ),
                ));
            }
            users.extend(page.users);
            cursor = pages
                .next(page.next_cursor)
                .map_err(|reason| misbehaving(WHAT, reason))?;
            if cursor.is_none() {
                return Ok(users);
            }
        }
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
        cap: usize,
    ) -> Result<T, ClientError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.get_json_attempt(&url, what, cap).await {
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
        cap: usize,
    ) -> Result<T, Attempt> {
        let response = self.send(|http| http.get(url.clone())).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.classify(response, status, what).await);
        }
        read_json(response, what, cap).await
    }
}

/// Reads a JSON answer of at most `cap` bytes: a larger one is fatal (a
/// server sending it would send it again), a broken one is retried.
async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    what: &str,
    cap: usize,
) -> Result<T, Attempt> {
    let body = crate::http::read_capped(response, cap)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge(_) => Attempt::Fatal(misbehaving(what, e.to_string())),
            BodyError::Broken(_) => retry_now(&e.to_string()),
        })?;
    serde_json::from_slice(&body).map_err(|e| {
        retry_now(&format!(
            "the answer is not the promised JSON: {}",
            crate::http::server_text(&e.to_string())
        ))
    })
}

fn misbehaving(what: &str, reason: String) -> ClientError {
    ClientError::Misbehaving {
        what: what.to_owned(),
        reason,
    }
}
