//! What the simulated tenant holds, and what it counted.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Graph's documented limits and the switches a test turns.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub tenant: String,
    pub client_id: String,
    pub client_secret: String,
    pub token_lifetime: Duration,
    /// The application roles put in the token (`roles` claim).
    pub roles: Vec<String>,
    /// The roles in tokens for Exchange Online (IMAP's scope).
    pub exchange_roles: Vec<String>,
    /// Time each mailbox request spends in the server, so concurrent
    /// requests overlap as they do against Exchange.
    pub latency: Duration,
    pub max_concurrency: usize,
    pub requests_per_window: usize,
    pub request_window: Duration,
    pub upload_bytes_per_window: u64,
    pub upload_window: Duration,
    /// Request bodies above this answer 413.
    pub max_request_bytes: usize,
    /// Attachments in a JSON request above this answer 400.
    pub max_inline_attachment: usize,
    pub max_attachment: u64,
    /// 400 or 409: reports differ on how Graph answers an existing folder.
    pub folder_exists_status: u16,
    /// The unverified case: Graph refusing attachments on a non-draft.
    pub refuse_attachments_on_non_draft: bool,
    /// The application has no directory permission (403 on `/users`).
    pub directory_forbidden: bool,
    /// Attachments per page of `GET .../attachments`; small, so a client
    /// that does not follow `@odata.nextLink` miscounts.
    pub attachments_page_size: usize,
    /// Messages per page of a folder's listing at most, whatever `$top`
    /// asks (Graph pages on its own terms); small, so a client that does
    /// not follow `@odata.nextLink` misses copies.
    pub messages_page_size: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            tenant: "contoso.onmicrosoft.com".into(),
            client_id: "11111111-2222-3333-4444-555555555555".into(),
            client_secret: "s3cr3t~value".into(),
            token_lifetime: Duration::from_secs(3600),
            roles: vec!["Mail.ReadWrite".into(), "User.Read.All".into()],
            exchange_roles: vec!["IMAP.AccessAsApp".into()],
            latency: Duration::ZERO,
            max_concurrency: 4,
            requests_per_window: 10_000,
            request_window: Duration::from_secs(600),
            upload_bytes_per_window: 150 * 1024 * 1024,
            upload_window: Duration::from_secs(300),
            max_request_bytes: 4 * 1024 * 1024,
            max_inline_attachment: 3 * 1024 * 1024,
            max_attachment: 150 * 1024 * 1024,
            folder_exists_status: 409,
            refuse_attachments_on_non_draft: false,
            directory_forbidden: false,
            attachments_page_size: 2,
            messages_page_size: 3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailboxKind {
    /// A licensed user with an Exchange Online mailbox.
    Enabled,
    /// A directory user without a mailbox.
    NoMailbox,
    /// Kept out by an application access policy.
    Denied,
}

#[derive(Debug, Clone)]
pub struct SimUser {
    pub id: String,
    pub address: String,
    pub aliases: Vec<String>,
    pub mailbox: MailboxKind,
}

#[derive(Debug, Clone)]
pub struct Folder {
    pub id: String,
    pub user_id: String,
    pub parent_id: String,
    pub display_name: String,
}

/// How an attachment arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    InCreate,
    Post,
    UploadSession,
}

#[derive(Debug, Clone)]
pub struct StoredAttachment {
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub is_inline: bool,
    pub content_id: Option<String>,
    pub bytes: Vec<u8>,
    pub via: Via,
}

#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub id: String,
    pub user_id: String,
    pub folder_id: String,
    pub is_draft: bool,
    pub message_flags: Option<i64>,
    pub received: Option<String>,
    pub sent: Option<String>,
    pub subject: String,
    pub body_type: String,
    pub body: String,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub internet_message_id: Option<String>,
    pub headers: Vec<(String, String)>,
    pub extended: Vec<(String, String)>,
    pub attachments: Vec<StoredAttachment>,
    pub deleted: bool,
}

impl StoredMessage {
    pub fn extended(&self, id: &str) -> Option<&str> {
        self.extended
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(id))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub message_id: String,
    pub token: String,
    pub name: String,
    pub content_type: String,
    pub is_inline: bool,
    pub content_id: Option<String>,
    pub size: u64,
    pub received: Vec<u8>,
}

/// A fault a test asks for: the next `times` requests matching answer
/// `status` (with `Retry-After` when given).
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: &'static str,
    pub path_contains: String,
    pub status: u16,
    pub retry_after: Option<String>,
    pub times: u32,
    /// Carry the request out, then answer the fault: the client cannot
    /// tell whether it took effect (a gateway timeout after the work).
    pub after_processing: bool,
}

impl Fault {
    pub fn new(
        method: &'static str,
        path_contains: &str,
        status: u16,
        retry_after: Option<&str>,
    ) -> Fault {
        Fault {
            method,
            path_contains: path_contains.to_owned(),
            status,
            retry_after: retry_after.map(str::to_owned),
            times: 1,
            after_processing: false,
        }
    }
}

/// Everything the simulator counted; a test asserts on it.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub token_requests: u32,
    pub rejected_tokens: u32,
    /// Token checks by an IMAP server (`/introspect`).
    pub introspections: u32,
    pub concurrency_violations: u32,
    pub retry_after_violations: u32,
    pub budget_violations: u32,
    pub oversize_requests: u32,
    pub oversize_inline_attachments: u32,
    pub chunk_rule_violations: u32,
    pub authorization_on_upload: u32,
    pub bad_headers: u32,
    /// Query options the v1.0 metadata marks unsupported on the resource
    /// (`$top` on message attachments: `TopSupported = false`).
    pub unsupported_queries: u32,
    pub folder_creates: u32,
    pub upload_sessions: u32,
    pub upload_chunks: Vec<usize>,
    pub injected: u32,
    pub max_in_flight: HashMap<String, usize>,
}

#[derive(Debug, Clone)]
pub struct LogEntry {
    pub at: Instant,
    pub mailbox: Option<String>,
    pub method: String,
    pub path: String,
    pub status: u16,
}

/// A throttling answer a mailbox is under.
#[derive(Debug, Clone, Copy)]
pub struct Pause {
    pub until: Instant,
    /// Requests that may still arrive without being a violation: those the
    /// client had sent before it read the answer. With at most
    /// `max_concurrency` outstanding, that is `max_concurrency - 1`; an
    /// event count, so a slow machine delaying them does not matter.
    pub grace: usize,
}

#[derive(Default)]
pub struct State {
    pub base: String,
    pub tokens: HashMap<String, Instant>,
    /// Replaces `SimConfig::token_lifetime` for tokens issued from now on.
    pub token_lifetime: Option<Duration>,
    /// Exchange has no service principal for the application, or it lacks
    /// FullAccess: every token introspects as inactive.
    pub imap_access_withheld: bool,
    /// Revoke every token once this many introspections were answered.
    pub revoke_after_introspections: Option<u32>,
    pub users: Vec<SimUser>,
    pub folders: Vec<Folder>,
    pub messages: Vec<StoredMessage>,
    pub sessions: HashMap<String, Session>,
    pub in_flight: HashMap<String, usize>,
    /// Per mailbox: the throttling answer in force.
    pub paused: HashMap<String, Pause>,
    pub windows: HashMap<String, Vec<(Instant, u64)>>,
    pub faults: Vec<Fault>,
    pub stats: Stats,
    pub log: Vec<LogEntry>,
    pub next_id: u64,
}

impl State {
    pub fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:06}", self.next_id)
    }

    /// A user by id, primary address or alias (case-insensitive).
    pub fn user(&self, key: &str) -> Option<&SimUser> {
        self.users.iter().find(|u| {
            u.id == key
                || u.address.eq_ignore_ascii_case(key)
                || u.aliases.iter().any(|a| a.eq_ignore_ascii_case(key))
        })
    }

    pub fn root_id(user_id: &str) -> String {
        format!("root-{user_id}")
    }
}
