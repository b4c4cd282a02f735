//! Microsoft 365 mailboxes through Microsoft Graph, as an application with
//! `Mail.ReadWrite`. Each copy is created as a *received* message (JSON
//! create with `PidTagMessageFlags` and the original times set at
//! creation; a MIME import would make a draft), with the item id in a named
//! extended property as the dedupe key. See `docs/graph.md` for the choices
//! and what they rest on.

mod budget;
mod client;
mod compose;
#[cfg(test)]
mod compose_props;
mod elided;
pub(crate) mod endpoints;
mod error;
mod existing;
mod folders;
mod messages;
mod read;
mod ready;
mod throttle;
mod users;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use async_trait::async_trait;

use crate::config::{Cloud, ConnectorConfig, DEFAULT_FOLDER};
use crate::mailbox::{Copy, FolderCopies, MailboxWriter, Target, WriteError, Written};
use crate::secrets::Secret;
use crate::telemessage::Item;
use crate::types::Mailbox;

use crate::mailbox::oauth::{Permission, TokenSource};
use client::Api;
use endpoints::Endpoints;

pub use endpoints::exchange_imap_target;
pub use throttle::GraphLimits;
pub(crate) use throttle::parse_retry_after;

/// What Graph's tokens must carry.
pub(crate) const GRAPH_PERMISSION: Permission = Permission {
    role: "Mail.ReadWrite",
    api: "Microsoft Graph",
};

/// Refusals to add attachments to a received message after which large
/// items go straight to the fallback (or fail) without trying Graph.
const REFUSALS_BEFORE_SKIPPING: u32 = 2;
/// Items the engine keeps in flight for Graph (see `items_in_flight`).
const ITEMS_IN_FLIGHT: usize = 2048;

/// Everything the Graph writer needs but the client secret.
#[derive(Debug, Clone)]
pub struct GraphConfig {
    /// The directory (tenant) id or a verified domain of the tenant.
    pub tenant: String,
    /// The application (client) id of the app registration.
    pub client_id: String,
    pub cloud: Cloud,
    /// Overrides the cloud's Graph service root (a proxy, a test server).
    pub graph_endpoint: Option<String>,
    /// Overrides the cloud's identity platform authority root.
    pub login_endpoint: Option<String>,
    /// The archive folder's display name, directly under the mailbox root.
    pub folder: String,
    pub limits: GraphLimits,
}

impl GraphConfig {
    pub fn new(tenant: impl Into<String>, client_id: impl Into<String>) -> GraphConfig {
        GraphConfig {
            tenant: tenant.into(),
            client_id: client_id.into(),
            cloud: Cloud::Global,
            graph_endpoint: None,
            login_endpoint: None,
            folder: DEFAULT_FOLDER.to_owned(),
            limits: GraphLimits::default(),
        }
    }

    /// The Graph settings of a connector whose target is `graph:TENANT`.
    pub fn from_connector(connector: &ConnectorConfig) -> Result<GraphConfig, WriteError> {
        let tenant = match connector.target() {
            Ok(Target::Graph { tenant }) => tenant,
            Ok(other) => {
                return Err(WriteError::Target(format!(
                    "target {other} is not a Microsoft Graph target"
                )));
            }
            Err(e) => return Err(WriteError::Target(e.to_string())),
        };
        let client_id = connector.client_id.clone().ok_or_else(|| {
            WriteError::Target(
                "a graph: target needs the application's client id (--client-id ID)".into(),
            )
        })?;
        Ok(GraphConfig {
            cloud: connector.cloud,
            graph_endpoint: connector.graph_endpoint.clone(),
            login_endpoint: connector.login_endpoint.clone(),
            folder: connector.folder.clone(),
            ..GraphConfig::new(tenant, client_id)
        })
    }
}

/// Writes copies into Microsoft 365 mailboxes through Microsoft Graph.
pub struct GraphWriter {
    tenant: String,
    folder: String,
    api: Api,
    /// One lookup per address and run; concurrent callers wait for it.
    users: std::sync::Mutex<HashMap<Mailbox, Arc<tokio::sync::OnceCell<users::Resolution>>>>,
    /// Set once Graph answers 403 to directory lookups (no `User.Read.All`):
    /// users are then recognised by probing their mailbox only.
    directory_denied: AtomicBool,
    folders: std::sync::Mutex<HashMap<Mailbox, Arc<tokio::sync::OnceCell<String>>>>,
    /// Mailboxes found without an archive folder this run (until created).
    missing_folders: std::sync::Mutex<std::collections::HashSet<Mailbox>>,
    /// How often Graph refused to add an attachment to a received message;
    /// after [`REFUSALS_BEFORE_SKIPPING`] the writer stops trying.
    attachments_refused: AtomicU32,
    fallback: Option<Arc<dyn MailboxWriter>>,
    memory: budget::MemoryBudget,
    large_items: ready::LargeItems,
}

impl GraphWriter {
    /// Checks the endpoints (TLS unless loopback) and prepares the client;
    /// nothing is sent until the first call.
    pub fn new(config: GraphConfig, client_secret: Secret) -> Result<GraphWriter, WriteError> {
        if config.tenant.trim().is_empty() || config.client_id.trim().is_empty() {
            return Err(WriteError::Target(
                "a graph: target needs a tenant id and a client id".into(),
            ));
        }
        if client_secret.is_empty() {
            return Err(WriteError::Target(
                "the Graph client secret is empty; store it with `wechat-archiver login`".into(),
            ));
        }
        if config.folder.trim().is_empty() || config.folder.contains('/') {
            return Err(WriteError::Target(format!(
                "archive folder name {:?} must be non-empty and without '/'",
                config.folder
            )));
        }
        let endpoints = Endpoints::resolve(
            config.cloud,
            config.graph_endpoint.as_deref(),
            config.login_endpoint.as_deref(),
        )
        .map_err(WriteError::Target)?;
        let tokens = TokenSource::new(
            &endpoints.login,
            &config.tenant,
            &config.client_id,
            client_secret,
            &endpoints.scope,
            GRAPH_PERMISSION,
        );
        let memory = budget::MemoryBudget::new(config.limits.memory_budget);
        let api = Api::new(&endpoints, tokens, config.limits).map_err(WriteError::Target)?;
        Ok(GraphWriter {
            tenant: config.tenant,
            folder: config.folder,
            api,
            users: std::sync::Mutex::new(HashMap::new()),
            directory_denied: AtomicBool::new(false),
            folders: std::sync::Mutex::new(HashMap::new()),
            missing_folders: Default::default(),
            attachments_refused: AtomicU32::new(0),
            fallback: None,
            memory,
            large_items: Default::default(),
        })
    }

    /// A writer for the copies Graph cannot take whole: when Graph refuses
    /// to add attachments to a received message, items whose attachments
    /// do not fit in the 4 MB create request go through it instead (for
    /// Exchange Online, IMAP with XOAUTH2 into the same mailbox).
    pub fn with_large_item_fallback(mut self, fallback: Arc<dyn MailboxWriter>) -> GraphWriter {
        self.fallback = Some(fallback);
        self
    }

    /// The archive folder id of every mailbox this writer has resolved, so
    /// the ledger can keep them across runs.
    pub fn folder_ids(&self) -> Vec<(Mailbox, String)> {
        let folders = self.folders.lock().expect("folder map lock");
        let mut ids: Vec<_> = folders
            .iter()
            .filter_map(|(m, cell)| cell.get().map(|id| (m.clone(), id.clone())))
            .collect();
        ids.sort();
        ids
    }

    /// A folder id remembered from an earlier run; if Graph no longer
    /// knows it, the folder is looked up or created again.
    pub fn preload_folder_id(&self, mailbox: &Mailbox, folder_id: String) {
        let cell = tokio::sync::OnceCell::new_with(Some(folder_id));
        self.folders
            .lock()
            .expect("folder map lock")
            .insert(mailbox.clone(), Arc::new(cell));
    }

    /// One refusal could be about that attachment; two mean the tenant
    /// does not take attachments on received messages at all.
    fn attachments_refused(&self) -> bool {
        self.attachments_refused.load(Ordering::Relaxed) >= REFUSALS_BEFORE_SKIPPING
    }
}

#[async_trait]
impl MailboxWriter for GraphWriter {
    fn describe(&self) -> String {
        format!("graph:{}", self.tenant)
    }

    fn folder_ids(&self) -> Vec<(Mailbox, String)> {
        GraphWriter::folder_ids(self)
    }

    fn preload_folder_id(&self, mailbox: &Mailbox, folder_id: String) {
        GraphWriter::preload_folder_id(self, mailbox, folder_id)
    }

    async fn is_valid_user(&self, mailbox: &Mailbox) -> Result<bool, WriteError> {
        match self.resolve(mailbox).await {
            Ok(users::Resolution::Valid(_)) => Ok(true),
            Ok(users::Resolution::Invalid(reason)) => {
                tracing::info!(%mailbox, "not a valid Graph user: {reason}");
                Ok(false)
            }
            Err(e) => Err(e.into_write_error(mailbox.as_str())),
        }
    }

    async fn find_existing(
        &self,
        mailbox: &Mailbox,
        item: &Item,
    ) -> Result<Option<Written>, WriteError> {
        let found = self
            .find_copy(mailbox, item)
            .await
            .map_err(|e| e.into_write_error(mailbox.as_str()))?;
        match (found, &self.fallback) {
            (Some(w), _) => Ok(Some(w)),
            (None, Some(fallback)) => fallback.find_existing(mailbox, item).await,
            (None, None) => Ok(None),
        }
    }

    /// Creates the archive folder, so the first copy does not wait for it.
    async fn prepare(&self, mailbox: &Mailbox) {
        if let Ok(user) = self.user(mailbox).await
            && let Err(e) = self.folder(mailbox, &user).await
        {
            tracing::debug!(%mailbox, "archive folder not ready yet: {e}");
        }
    }

    async fn write(&self, mailbox: &Mailbox, copy: &Copy<'_>) -> Result<Written, WriteError> {
        self.write_copy(mailbox, copy)
            .await
            .map(|(written, _)| written)
    }

    /// The digest of the properties and attachments Graph keeps, since it
    /// does not keep the message's bytes (see `read.rs`), from what was
    /// sent.
    async fn write_with_digest(
        &self,
        mailbox: &Mailbox,
        copy: &Copy<'_>,
    ) -> Result<(Written, Option<String>), WriteError> {
        self.write_copy(mailbox, copy).await
    }

    /// Each mailbox has its own request slots and budgets, and a copy
    /// never reuses another's: an item's copies go to all its mailboxes
    /// at once.
    fn writes_mailboxes_independently(&self) -> bool {
        true
    }

    /// Enough items that every mailbox with work has copies waiting for
    /// each of its 4 request slots, up to 500 mailboxes at about 1.8
    /// copies an item (`bench/graph`). Memory stays bounded: downloads by
    /// the client's budget (spooling beyond it), composing copies by the
    /// writer's, and each mailbox takes only 8 copies at a time.
    fn items_in_flight(&self) -> usize {
        ITEMS_IN_FLIGHT
    }

    /// With a large-item fallback, the IMAP side's mark too: its copies
    /// are in the mailbox as well.
    async fn folder_mark(&self, mailbox: &Mailbox) -> Result<Option<String>, WriteError> {
        let graph = self.mark(mailbox).await?;
        let Some(fallback) = &self.fallback else {
            return Ok(graph);
        };
        let imap = fallback.folder_mark(mailbox).await?;
        Ok(match (graph, imap) {
            (Some(graph), Some(imap)) => Some(crate::mailbox::existing::mark_of(&[&graph, &imap])),
            _ => None,
        })
    }

    /// With a large-item fallback, the copies it wrote over IMAP too: a
    /// Graph listing does not show them by the item's property.
    async fn existing_copies(&self, mailbox: &Mailbox) -> Result<FolderCopies, WriteError> {
        let mut copies = self.copies_in(mailbox).await?;
        if let Some(fallback) = &self.fallback {
            copies.absorb(fallback.existing_copies(mailbox).await?);
        }
        Ok(copies)
    }

    async fn read_back(
        &self,
        mailbox: &Mailbox,
        location: &str,
        item: &crate::types::ItemId,
    ) -> Result<crate::mailbox::ReadBack, WriteError> {
        self.read_copy(mailbox, location, item).await
    }

    /// Reads wait on each mailbox's gate (its request slots and budget),
    /// so many can be in flight across mailboxes.
    fn read_parallelism(&self) -> usize {
        64
    }

    /// Logs the large-item fallback (IMAP) out.
    async fn close(&self) {
        if let Some(fallback) = &self.fallback {
            fallback.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connector(target: &str, client_id: Option<&str>) -> ConnectorConfig {
        ConnectorConfig {
            source: Default::default(),
            domains: Vec::new(),
            mailbox_from_recipient: false,
            endpoint: "https://archive.example.net".into(),
            username: "admin@contoso.com".into(),
            target: target.into(),
            mapping: None,
            auto_mapping: true,
            default_region: None,
            folder: "WeChat".into(),
            fallback_mailbox: None,
            target_user: None,
            client_id: client_id.map(str::to_owned),
            cloud: Cloud::Usgov,
            graph_endpoint: None,
            login_endpoint: None,
            auth: Default::default(),
            tenant: None,
            large_item_fallback: None,
            terms_accepted_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn a_graph_connector_gives_its_settings() {
        let c =
            GraphConfig::from_connector(&connector("graph:contoso.onmicrosoft.com", Some("app")))
                .unwrap();
        assert_eq!(c.tenant, "contoso.onmicrosoft.com");
        assert_eq!(c.client_id, "app");
        assert_eq!(c.cloud, Cloud::Usgov);
        assert_eq!(c.folder, "WeChat");
        assert!(
            GraphConfig::from_connector(&connector("graph:contoso.onmicrosoft.com", None)).is_err()
        );
        assert!(GraphConfig::from_connector(&connector("maildir:/srv", Some("app"))).is_err());
    }

    #[test]
    fn an_empty_secret_or_folder_is_refused_up_front() {
        let c = GraphConfig::new("t", "c");
        assert!(GraphWriter::new(c.clone(), Secret::new("")).is_err());
        let bad_folder = GraphConfig {
            folder: "a/b".into(),
            ..c
        };
        assert!(GraphWriter::new(bad_folder, Secret::new("s")).is_err());
    }
}
