//! The IMAP target (`imap://` and `imaps://`): one admin login writes into
//! every user's mailbox, through SASL PLAIN with an authorisation identity
//! (Dovecot master users, Cyrus admins) or XOAUTH2 (Exchange Online).
//!
//! Speed comes from keeping one connection per mailbox for the run, with
//! the archive folder selected; pipelining APPENDs on it with
//! non-synchronising literals (LITERAL+); letting copies that arrive while
//! the server is busy share one MULTIAPPEND (one server transaction); and
//! serving several mailboxes at once. Memory stays flat because each
//! message streams from its spool into the socket.
//!
//! The archive folder goes in each user's personal namespace (`NAMESPACE`,
//! RFC 2342): at the top on Dovecot, under `INBOX/` on Cyrus with its
//! default `altnamespace: no`. An address is a user only if the server
//! shows it a mailbox of its own (a personal namespace and an INBOX), not
//! merely because the admin may act as it. Sessions end with `LOGOUT`.
//!
//! Exactly once: a copy is reported written only on the server's OK, with
//! its `APPENDUID` as location. When a connection drops before the answer,
//! the writer reconnects once and searches the folder for the item-id
//! header before writing again; [`MailboxWriter::find_existing`] does the
//! same for the sync engine after a crash.

mod app;
mod conn;
mod existing;
mod namespace;
mod pool;
mod proto;
#[cfg(test)]
mod proto_props;
mod read;
mod tls;

pub use app::AppLogin;

/// Dovecot also names Maildir++ folders in IMAP's modified UTF-7.
pub(crate) use proto::encode_mailbox_name;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use self::app::{ADMIN_STEPS, Credentials};
use self::conn::{Alone, Appended, Conn, ConnError, Endpoint, OpenError, Reply};
use self::pool::{Folder, InUse, Opened, Pool, Session};
use self::proto::{Status, StatusLine, Value};
use super::target::{Target, is_loopback_host};
use super::{Copy, FolderCopies, ITEM_ID_HEADER, MailboxWriter, WriteError, Written};
use crate::secrets::Secret;
use crate::telemessage::Item;
use crate::types::Mailbox;

/// How often an APPEND is retried while the server says it is throttling.
const THROTTLE_RETRIES: u32 = 5;

/// How the admin proves who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImapAuth {
    /// SASL PLAIN: authorisation identity = the user's mailbox,
    /// authentication identity = the admin, secret = the admin's password.
    Plain,
    /// SASL XOAUTH2 (`user=<mailbox>`), secret = an OAuth bearer token.
    XOAuth2,
}

/// Everything the IMAP writer needs but the secret.
#[derive(Debug, Clone)]
pub struct ImapConfig {
    pub host: String,
    pub port: u16,
    /// `imaps://`: TLS from the first byte, with a verified certificate.
    pub tls: bool,
    /// The admin (Dovecot master user, Cyrus admin). Unused by XOAUTH2,
    /// where the token names the application.
    pub admin_user: String,
    pub auth: ImapAuth,
    /// The archive folder, created in each mailbox when missing.
    pub folder: String,
    /// Connections open at once (one per mailbox being written).
    pub max_connections: usize,
    /// APPENDs in flight on one connection.
    pub pipeline_depth: usize,
    /// Lets concurrent small copies to one mailbox share a MULTIAPPEND
    /// (one server transaction) where the server offers it with LITERAL+.
    pub multiappend: bool,
    /// A PEM file of CA certificates trusted besides the public roots.
    pub ca_file: Option<PathBuf>,
    /// How long to wait for the server before a connection counts as lost.
    pub timeout: Duration,
    /// XOAUTH2 with the application's own tokens (Exchange Online): the
    /// writer's secret is then the client secret, exchanged for tokens
    /// as needed; without it, the secret is the bearer token itself.
    pub app: Option<AppLogin>,
}

impl ImapConfig {
    /// The configuration for an `imap://` or `imaps://` target, or `None`
    /// for another kind of target.
    pub fn for_target(target: &Target, admin_user: &str, folder: &str) -> Option<ImapConfig> {
        match target {
            Target::Imap { tls, host, port } => {
                Some(ImapConfig::new(*tls, host, *port, admin_user, folder))
            }
            _ => None,
        }
    }

    /// A configuration with the usual limits.
    pub fn new(tls: bool, host: &str, port: u16, admin_user: &str, folder: &str) -> ImapConfig {
        ImapConfig {
            host: host.to_owned(),
            port,
            tls,
            admin_user: admin_user.to_owned(),
            auth: ImapAuth::Plain,
            folder: folder.to_owned(),
            max_connections: 64,
            pipeline_depth: 32,
            multiappend: true,
            ca_file: None,
            timeout: Duration::from_secs(120),
            app: None,
        }
    }
}

/// Writes copies into users' mailboxes over IMAP.
pub struct ImapWriter {
    config: ImapConfig,
    credentials: Credentials,
    endpoint: Endpoint,
    pool: Pool,
    verdicts: Mutex<HashMap<String, bool>>,
}

/// A login refusal, sorted by what it says about the mailbox.
enum Refusal {
    NotAUser(String),
    Target(String),
}

impl ImapWriter {
    /// Checks the configuration; connects only when first used.
    pub fn new(config: ImapConfig, secret: Secret) -> Result<ImapWriter, WriteError> {
        if !config.tls && !is_loopback_host(&config.host) {
            return Err(WriteError::Target(format!(
                "plain imap:// is allowed only to this machine (loopback), not to {}; use imaps://{}:993",
                config.host, config.host
            )));
        }
        if config.folder.trim().is_empty() {
            return Err(WriteError::Target(
                "the archive folder name is empty".to_owned(),
            ));
        }
        if config.auth == ImapAuth::Plain && config.admin_user.is_empty() {
            return Err(WriteError::Target(
                "the IMAP target needs an admin user (--target-user)".to_owned(),
            ));
        }
        proto::quote(&proto::encode_mailbox_name(&config.folder))
            .map_err(|e| WriteError::Target(format!("folder name: {e}")))?;
        let credentials = match &config.app {
            Some(app) if config.auth == ImapAuth::XOAuth2 => {
                Credentials::app(app, secret).map_err(WriteError::Target)?
            }
            Some(_) => {
                return Err(WriteError::Target(
                    "an application's tokens go with XOAUTH2 only".to_owned(),
                ));
            }
            None => Credentials::Fixed(std::sync::RwLock::new(secret)),
        };
        let tls = if config.tls {
            Some(tls::client_config(config.ca_file.as_deref()).map_err(WriteError::Target)?)
        } else {
            None
        };
        let endpoint = Endpoint {
            host: config.host.clone(),
            port: config.port,
            tls,
            timeout: config.timeout,
        };
        Ok(ImapWriter {
            pool: Pool::new(config.max_connections),
            config,
            credentials,
            endpoint,
            verdicts: Mutex::new(HashMap::new()),
        })
    }

    fn target_name(&self) -> String {
        let scheme = if self.config.tls { "imaps" } else { "imap" };
        format!("{scheme}://{}:{}", self.config.host, self.config.port)
    }

    /// Replaces the password or token for the logins still to come: an
    /// OAuth token expires within the hour, a long run needs a fresh one.
    /// (A writer with an application's credentials renews its own.)
    pub fn replace_secret(&self, secret: Secret) {
        if let Credentials::Fixed(current) = &self.credentials {
            *current.write().expect("secret lock") = secret;
        }
    }

    /// Logs in as the mailbox and checks that it is one; a connection
    /// that is no use is logged out again.
    async fn open(&self, mailbox: &Mailbox) -> Result<Opened, OpenError> {
        let conn = self.login(mailbox).await?;
        match self.personal_folder(&conn, mailbox).await {
            Ok(folder_arg) => Ok(Opened { conn, folder_arg }),
            Err(e) => {
                conn.logout().await;
                Err(e)
            }
        }
    }

    /// Asks for the personal namespace (when the server has `NAMESPACE`)
    /// and the INBOX's status at once: a mailbox without either is not a
    /// user here. Returns the archive folder's name in that namespace,
    /// quoted for commands.
    async fn personal_folder(&self, conn: &Conn, mailbox: &Mailbox) -> Result<String, OpenError> {
        let lost = |e: ConnError| {
            OpenError::Connect(match e {
                ConnError::Lost(reason) => reason,
                ConnError::Content(e) => e.to_string(),
            })
        };
        let alone = conn.alone().await;
        let inbox = alone.run("STATUS INBOX (UIDVALIDITY)");
        let (namespace, inbox) = if conn.has("NAMESPACE") {
            let (namespace, inbox) = tokio::join!(alone.run("NAMESPACE"), inbox);
            (Some(namespace.map_err(lost)?), inbox.map_err(lost)?)
        } else {
            (None, inbox.await.map_err(lost)?)
        };
        let personal = namespace.and_then(|reply| {
            reply
                .untagged
                .iter()
                .chain(&inbox.untagged)
                .find_map(|u| namespace::parse(u))
        });
        if let Some(None) = personal {
            return Err(OpenError::NoMailbox(format!(
                "{} shows {mailbox} no personal folders (its NAMESPACE has none): no mailbox there",
                self.target_name()
            )));
        }
        self.check_inbox(mailbox, &inbox.status)?;
        let name = namespace::folder_name(personal.flatten().as_ref(), &self.config.folder);
        proto::quote(&name).map_err(|e| {
            OpenError::Connect(format!(
                "the archive folder's name on the server, {}, is not usable: {e}",
                escaped(&name)
            ))
        })
    }

    /// A refused `STATUS INBOX` means no mailbox, unless the server says
    /// it is the server's trouble (busy, broken, throttling).
    fn check_inbox(&self, mailbox: &Mailbox, status: &StatusLine) -> Result<(), OpenError> {
        if status.status == Status::Ok {
            return Ok(());
        }
        let said = said(status);
        let server_trouble = status.status != Status::No
            || matches!(
                status.code_name().as_deref(),
                Some("UNAVAILABLE" | "SERVERBUG" | "INUSE" | "LIMIT" | "CONTACTADMIN")
            )
            || proto::throttle_backoff_ms(&status.text).is_some();
        if server_trouble {
            Err(OpenError::Connect(format!(
                "cannot check the INBOX of {mailbox}: {said}"
            )))
        } else {
            Err(OpenError::NoMailbox(format!(
                "{} has no INBOX for {mailbox}: {said}",
                self.target_name()
            )))
        }
    }

    /// The mailbox's session, logging in if needed.
    async fn session(&self, mailbox: &Mailbox) -> Result<(Arc<Session>, InUse), WriteError> {
        let opened = self
            .pool
            .session(mailbox.key(), || self.open(mailbox))
            .await;
        match opened {
            Ok(session) => {
                self.remember(mailbox, true);
                Ok(session)
            }
            Err(OpenError::Connect(reason)) => Err(WriteError::Target(format!(
                "{}: {reason}",
                self.target_name()
            ))),
            Err(OpenError::NoMailbox(reason)) => {
                self.remember(mailbox, false);
                Err(WriteError::Mailbox {
                    mailbox: mailbox.to_string(),
                    reason,
                })
            }
            Err(OpenError::Refused(status)) => match self.classify_refusal(mailbox, &status) {
                Refusal::NotAUser(reason) => {
                    self.remember(mailbox, false);
                    Err(WriteError::Mailbox {
                        mailbox: mailbox.to_string(),
                        reason,
                    })
                }
                Refusal::Target(reason) => Err(WriteError::Target(reason)),
            },
        }
    }

    /// RFC 5530: AUTHORIZATIONFAILED means the admin's credentials were
    /// good but it may not act as this mailbox (Dovecot answers so for a
    /// user that does not exist); AUTHENTICATIONFAILED means the admin's
    /// own credentials were refused, which is the whole target's problem.
    /// Servers that give no code (Exchange: `AUTHENTICATE failed.`) are
    /// taken as refusing the mailbox, unless it logged in earlier in this
    /// run: then the credentials changed (an expired token), not the user.
    fn classify_refusal(&self, mailbox: &Mailbox, status: &StatusLine) -> Refusal {
        let said = said(status);
        let known = self.cached(mailbox) == Some(true);
        match status.code_name().as_deref() {
            Some("AUTHENTICATIONFAILED") if self.config.auth == ImapAuth::Plain => {
                Refusal::Target(format!(
                    "{} refused the admin login of {:?} (wrong password?): {said}",
                    self.target_name(),
                    self.config.admin_user
                ))
            }
            Some("AUTHENTICATIONFAILED") if self.credentials.is_app() => Refusal::Target(format!(
                "{} refused the application's fresh token for {mailbox}: {said}; {ADMIN_STEPS}",
                self.target_name()
            )),
            Some("AUTHENTICATIONFAILED") => Refusal::Target(format!(
                "{} refused the OAuth token (expired, or missing IMAP.AccessAsApp?): {said}",
                self.target_name()
            )),
            Some("UNAVAILABLE") => Refusal::Target(format!(
                "{} cannot log anyone in at the moment: {said}",
                self.target_name()
            )),
            _ if proto::throttle_backoff_ms(&status.text).is_some() => Refusal::Target(format!(
                "{} is throttling logins: {said}",
                self.target_name()
            )),
            _ if known => Refusal::Target(format!(
                "{} refused the login as {mailbox}, which it accepted earlier in this run \
                 (expired token or changed password?): {said}",
                self.target_name()
            )),
            _ if self.credentials.is_app() => Refusal::NotAUser(format!(
                "{} refused the application's login as {mailbox}: {said} (not a mailbox of the tenant, or the application's service principal has no FullAccess on it: Add-MailboxPermission -Identity {mailbox} -User <service principal id> -AccessRights FullAccess)",
                self.target_name()
            )),
            _ => Refusal::NotAUser(format!(
                "{} refused the login as {mailbox}: {said}",
                self.target_name()
            )),
        }
    }

    fn remember(&self, mailbox: &Mailbox, valid: bool) {
        let mut verdicts = self.verdicts.lock().expect("verdict lock");
        verdicts.insert(mailbox.key().to_owned(), valid);
    }

    fn cached(&self, mailbox: &Mailbox) -> Option<bool> {
        self.verdicts
            .lock()
            .expect("verdict lock")
            .get(mailbox.key())
            .copied()
    }

    /// Creates the archive folder once per session (an existing folder is
    /// fine) and selects it. If it cannot be selected, the reason is the
    /// CREATE's refusal when there was one (the folder is missing because
    /// it could not be made), else the SELECT's.
    async fn ensure_folder(&self, session: &Session) -> Result<Folder, ConnError> {
        let folder = &session.folder_arg;
        session
            .folder
            .get_or_try_init(|| async {
                let alone = session.conn.alone().await;
                let created = alone.run(&format!("CREATE {folder}")).await?;
                if created.status.status == Status::Ok {
                    alone.run(&format!("SUBSCRIBE {folder}")).await?;
                }
                let selected = alone.run(&format!("SELECT {folder}")).await?;
                if let Some(validity) = selected_validity(&selected) {
                    return Ok(Folder::Selected(validity));
                }
                let reason =
                    if created.status.status != Status::Ok && !already_exists(&created.status) {
                        format!(
                            "the server refused to create {folder}: {}",
                            said(&created.status)
                        )
                    } else {
                        format!(
                            "the server refused to open {folder}: {}",
                            said(&selected.status)
                        )
                    };
                Ok(Folder::Refused(reason))
            })
            .await
            .cloned()
    }

    async fn append_once(
        &self,
        session: &Session,
        copy: &Copy<'_>,
        may_batch: bool,
    ) -> Result<Appended, ConnError> {
        let attributes = format!("(\\Seen) {}", proto::internal_date(&copy.item.sent_at));
        let mut message = copy.reader().await.map_err(ConnError::Content)?;
        let batching = may_batch && self.config.multiappend;
        session
            .conn
            .append(
                &session.folder_arg,
                &attributes,
                &mut message,
                copy.len(),
                batching,
            )
            .await
    }

    /// APPENDs, waiting and retrying while the server says it is
    /// throttling (Exchange Online: `BAD Request is throttled. Suggested
    /// Backoff Time: N milliseconds`). A refused MULTIAPPEND stored none of
    /// its messages; each is then sent alone to get its own verdict. A
    /// folder the server refused is the copy's failure (`Ok(Err)`), with
    /// no APPEND sent.
    async fn append(
        &self,
        session: &Session,
        copy: &Copy<'_>,
    ) -> Result<Result<Appended, String>, ConnError> {
        if let Folder::Refused(reason) = self.ensure_folder(session).await? {
            return Ok(Err(reason));
        }
        let mut waits = 0;
        let mut may_batch = true;
        loop {
            let appended = self.append_once(session, copy, may_batch).await?;
            let status = &appended.reply.status;
            if status.status == Status::Ok {
                return Ok(Ok(appended));
            }
            if appended.batch > 1 {
                may_batch = false;
                continue;
            }
            match proto::throttle_backoff_ms(&status.text) {
                Some(ms) if waits < THROTTLE_RETRIES => {
                    waits += 1;
                    tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
                }
                _ => return Ok(Ok(appended)),
            }
        }
    }

    fn outcome(
        &self,
        mailbox: &Mailbox,
        copy: &Copy<'_>,
        appended: Result<Appended, String>,
    ) -> Result<Written, WriteError> {
        let appended = appended.map_err(|reason| {
            WriteError::Copy(format!(
                "{mailbox}: cannot use the archive folder {:?}: {reason}",
                self.config.folder
            ))
        })?;
        let status = appended.reply.status;
        match status.status {
            Status::Ok => {
                let uid = proto::append_uids(&status)
                    .filter(|(_, uids)| uids.len() == appended.batch)
                    .and_then(|(validity, uids)| Some((validity, *uids.get(appended.index)?)));
                let location = match uid {
                    Some((validity, uid)) => format!("{validity}:{uid}"),
                    None => String::new(),
                };
                Ok(Written {
                    location,
                    bytes: copy.len(),
                })
            }
            _ if status.code_name().as_deref() == Some("TRYCREATE") => {
                Err(WriteError::Copy(format!(
                    "{mailbox}: the folder {:?} does not exist and could not be created: {}",
                    self.config.folder,
                    said(&status)
                )))
            }
            _ => Err(WriteError::Copy(format!(
                "{mailbox}: the server refused item {} ({} bytes): {}",
                copy.item.id,
                copy.len(),
                said(&status)
            ))),
        }
    }

    /// Searches the archive folder for a copy of the item; the header
    /// search matches substrings, so each hit's header is compared exactly.
    /// Leaves the folder selected for the APPENDs that follow.
    async fn search(&self, session: &Session, item: &Item) -> Result<Option<Written>, ConnError> {
        let alone = session.conn.alone().await;
        let validity = match session.folder.get() {
            Some(Folder::Selected(validity)) => *validity,
            _ => {
                let selected = alone.run(&format!("SELECT {}", session.folder_arg)).await?;
                let Some(validity) = selected_validity(&selected) else {
                    self.missing_folder(&selected.status)?;
                    return Ok(None);
                };
                let _ = session.folder.set(Folder::Selected(validity));
                validity
            }
        };
        let found = find_in_selected(&alone, item).await?;
        Ok(found.map(|(uid, size)| Written {
            location: format!("{validity}:{uid}"),
            bytes: size,
        }))
    }

    /// A SELECT that failed because the folder is not there means no
    /// copy exists; any other failure must not be taken for "not found".
    fn missing_folder(&self, status: &StatusLine) -> Result<(), ConnError> {
        let text = status.text.to_ascii_lowercase();
        let missing = status.code_name().as_deref() == Some("NONEXISTENT")
            || text.contains("doesn't exist")
            || text.contains("does not exist")
            || text.contains("no such");
        if missing {
            Ok(())
        } else {
            Err(ConnError::Lost(format!(
                "cannot open the folder {:?} to look for copies: {}",
                self.config.folder,
                said(status)
            )))
        }
    }
}

/// What the server said, control characters escaped: it goes to a
/// terminal, a log and the ledger.
fn said(status: &StatusLine) -> String {
    escaped(&status.describe())
}

fn escaped(text: &str) -> String {
    crate::text::escape_control(text).into_owned()
}

/// A refused CREATE of a folder that is already there (Dovecot answers
/// `[ALREADYEXISTS]`, Cyrus only says so).
fn already_exists(status: &StatusLine) -> bool {
    status.code_name().as_deref() == Some("ALREADYEXISTS")
        || status.text.to_ascii_lowercase().contains("already exists")
}

/// The lowest UID in the selected folder whose item-id header is exactly
/// the item's id, with its size.
async fn find_in_selected(alone: &Alone<'_>, item: &Item) -> Result<Option<(u32, u64)>, ConnError> {
    let id = proto::quote(item.id.as_str()).map_err(ConnError::Lost)?;
    let searched = alone
        .run(&format!("UID SEARCH HEADER {ITEM_ID_HEADER} {id}"))
        .await?;
    let uids: Vec<u32> = searched
        .untagged
        .iter()
        .filter_map(|u| proto::search_results(u))
        .flatten()
        .collect();
    if uids.is_empty() {
        return Ok(None);
    }
    let set = uids
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let fetched = alone
        .run(&format!(
            "UID FETCH {set} (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS ({ITEM_ID_HEADER})])"
        ))
        .await?;
    let mut hits: Vec<(u32, u64)> = fetched
        .untagged
        .iter()
        .filter_map(|u| proto::fetch_items(u))
        .filter_map(|items| exact_hit(&items, item.id.as_str()))
        .collect();
    hits.sort_unstable();
    Ok(hits.into_iter().next())
}

/// The UIDVALIDITY of a successful SELECT.
fn selected_validity(reply: &Reply) -> Option<u32> {
    if reply.status.status != Status::Ok {
        return None;
    }
    Some(
        reply
            .untagged
            .iter()
            .find_map(|u| proto::uid_validity(u))
            .unwrap_or(0),
    )
}

/// The UID and size of a FETCH answer whose item-id header is exactly `id`.
fn exact_hit(items: &[Value], id: &str) -> Option<(u32, u64)> {
    let mut uid = None;
    let mut size = None;
    let mut matches = false;
    for pair in items.chunks(2) {
        let [name, value] = pair else { continue };
        let name = name.as_atom()?.to_ascii_uppercase();
        match (name.as_str(), value) {
            ("UID", Value::Atom(v)) => uid = v.parse().ok(),
            ("RFC822.SIZE", Value::Atom(v)) => size = v.parse().ok(),
            (n, Value::Bytes(header)) if n.starts_with("BODY[") => {
                matches = header_value_is(header, id)
            }
            _ => {}
        }
    }
    matches.then_some((uid?, size.unwrap_or(0)))
}

fn header_value_is(header: &[u8], id: &str) -> bool {
    let text = String::from_utf8_lossy(header);
    text.split("\r\n").any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case(ITEM_ID_HEADER) && value.trim() == id
        })
    })
}

fn lost_to_copy(mailbox: &Mailbox, what: &str, e: ConnError) -> WriteError {
    match e {
        ConnError::Lost(reason) => WriteError::Copy(format!("{mailbox}: {what}: {reason}")),
        ConnError::Content(e) => {
            WriteError::Copy(format!("{mailbox}: cannot read the item's content: {e}"))
        }
    }
}

#[async_trait]
impl MailboxWriter for ImapWriter {
    /// Enough copies per mailbox at once for `MULTIAPPEND` to batch them:
    /// at 16, 3,187 APPEND commands for 3,371 copies into 36 mailboxes;
    /// at 256, 1,363 (and a quarter less Dovecot CPU).
    fn items_in_flight(&self) -> usize {
        256
    }

    fn describe(&self) -> String {
        self.target_name()
    }

    async fn is_valid_user(&self, mailbox: &Mailbox) -> Result<bool, WriteError> {
        if let Some(valid) = self.cached(mailbox) {
            return Ok(valid);
        }
        match self.session(mailbox).await {
            Ok(_) => Ok(true),
            Err(WriteError::Mailbox { .. }) => Ok(false),
            Err(other) => Err(other),
        }
    }

    async fn find_existing(
        &self,
        mailbox: &Mailbox,
        item: &Item,
    ) -> Result<Option<Written>, WriteError> {
        let (session, _in_use) = self.session(mailbox).await?;
        match self.search(&session, item).await {
            Ok(found) => Ok(found),
            Err(e) => Err(lost_to_copy(
                mailbox,
                "searching for an earlier copy failed",
                e,
            )),
        }
    }

    async fn folder_mark(&self, mailbox: &Mailbox) -> Result<Option<String>, WriteError> {
        self.mark(mailbox).await
    }

    async fn existing_copies(&self, mailbox: &Mailbox) -> Result<FolderCopies, WriteError> {
        self.copies_in(mailbox).await
    }

    async fn read_back(
        &self,
        mailbox: &Mailbox,
        location: &str,
        item: &crate::types::ItemId,
    ) -> Result<super::ReadBack, WriteError> {
        self.read_copy(mailbox, location, item).await
    }

    /// One session per mailbox, as many mailboxes at once as the pool's
    /// bound on connections allows.
    fn read_parallelism(&self) -> usize {
        self.config.max_connections.max(1)
    }

    /// Logs out of every mailbox: the run is over.
    async fn close(&self) {
        self.pool.close_all().await;
    }

    async fn write(&self, mailbox: &Mailbox, copy: &Copy<'_>) -> Result<Written, WriteError> {
        let (session, in_use) = self.session(mailbox).await?;
        let first = match self.append(&session, copy).await {
            Ok(reply) => return self.outcome(mailbox, copy, reply),
            Err(ConnError::Content(e)) => {
                return Err(lost_to_copy(mailbox, "", ConnError::Content(e)));
            }
            Err(ConnError::Lost(reason)) => reason,
        };
        drop((session, in_use));
        tracing::warn!(%mailbox, item = %copy.item.id, reason = %first, "IMAP connection lost; reconnecting once");
        let (session, _in_use) = self.session(mailbox).await?;
        let again = async {
            if let Some(found) = self.search(&session, copy.item).await? {
                return Ok(Ok(found));
            }
            self.append(&session, copy).await.map(Err)
        };
        match again.await {
            Ok(Ok(found)) => Ok(found),
            Ok(Err(reply)) => self.outcome(mailbox, copy, reply),
            Err(e) => Err(lost_to_copy(
                mailbox,
                &format!("the connection was lost twice (first: {first})"),
                e,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_words_are_shown_with_control_characters_escaped() {
        let status = proto::parse_status("NO [OVERQUOTA] Over\x1b[2J quota\r").expect("status");
        let shown = said(&status);
        assert!(!shown.contains(['\x1b', '\r']), "{shown:?}");
        assert!(shown.starts_with("[OVERQUOTA] Over"), "{shown:?}");
    }

    #[test]
    fn an_existing_folder_is_not_a_refusal_to_create_it() {
        let dovecot = proto::parse_status("NO [ALREADYEXISTS] Mailbox already exists").unwrap();
        let cyrus = proto::parse_status("NO Mailbox already exists").unwrap();
        let denied = proto::parse_status("NO Permission denied").unwrap();
        assert!(already_exists(&dovecot) && already_exists(&cyrus));
        assert!(!already_exists(&denied));
    }
}
