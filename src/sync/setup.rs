//! Building a run's parts from a connector's configuration: the client,
//! the target's writer, the resolver and the ledger.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::config::{ConnectorConfig, Home, TargetAuth};
use crate::ledger::{Ledger, LedgerError};
use crate::mailbox::graph::{GraphConfig, GraphWriter};
use crate::mailbox::imap::{AppLogin, ImapAuth, ImapConfig, ImapWriter};
use crate::mailbox::maildir::MaildirWriter;
use crate::mailbox::{MailboxWriter, Target, WriteError};
use crate::mapping::{self, MappingError, Resolver};
use crate::secrets::{ConnectorSecrets, Secret};
use crate::telemessage::{Client, ClientError, ClientOptions};

/// Why a connector's parts could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("connector '{connector}' has an invalid target: {source}")]
    Target {
        connector: String,
        source: crate::mailbox::target::InvalidTarget,
    },
    #[error("connector '{connector}': {message}")]
    TargetConfig { connector: String, message: String },
    #[error(transparent)]
    TargetUnusable(#[from] WriteError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Home(#[from] crate::config::ConfigError),
}

/// Environment variable bounding the time spent retrying one call, in
/// seconds (default 300): lower it for a quick verdict on a dead endpoint.
pub const MAX_RETRY_SECONDS_ENV: &str = "WECHAT_ARCHIVER_MAX_RETRY_SECONDS";

/// Environment variable setting the listing page size (1..1000, default
/// 1000); smaller pages suit a slow gateway.
pub const PAGE_SIZE_ENV: &str = "WECHAT_ARCHIVER_PAGE_SIZE";

/// Content downloads at once for a Graph target. Its writer keeps 2,048
/// items in flight across hundreds of mailboxes, each written at Graph's
/// pace; 16 downloads fed fewer than 450 items/s on a loaded 2-core
/// machine and left mailboxes idle beyond 200 of them (`bench/graph`).
/// Memory stays bounded: bodies beyond the client's budget are spooled.
const GRAPH_DOWNLOADS_AT_ONCE: usize = 64;

/// Content held in memory for a Graph target, beyond which it is spooled.
/// Its items are downloaded long before their copies' turn (2,048 in
/// flight), so holding them in memory saves nothing: 16 MiB of them were
/// a quarter of the peak heap in `bench/graph`.
const GRAPH_DOWNLOAD_MEMORY: u64 = 4 * 1024 * 1024;

/// The TeleMessage client for a connector.
pub fn client(config: &ConnectorConfig, secrets: &ConnectorSecrets) -> Result<Client, ClientError> {
    let mut options = ClientOptions::default();
    if matches!(config.target(), Ok(Target::Graph { .. })) {
        options.downloads_at_once = GRAPH_DOWNLOADS_AT_ONCE;
        options.memory_budget = GRAPH_DOWNLOAD_MEMORY;
    }
    if let Some(secs) = std::env::var(MAX_RETRY_SECONDS_ENV)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
    {
        options.retry.max_total = std::time::Duration::from_secs_f64(secs);
    }
    if let Some(size) = std::env::var(PAGE_SIZE_ENV)
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|s| (1..=1000).contains(s))
    {
        options.page_limit = size;
    }
    Client::new(
        &config.endpoint,
        &config.username,
        secrets.telemessage_password.clone(),
        options,
    )
}

/// The writer for a connector's target, checked to be usable.
pub async fn writer(
    name: &str,
    config: &ConnectorConfig,
    secrets: &ConnectorSecrets,
) -> Result<Arc<dyn MailboxWriter>, SetupError> {
    let target = config.target().map_err(|source| SetupError::Target {
        connector: name.to_owned(),
        source,
    })?;
    match target {
        Target::Maildir { root } => {
            let writer = MaildirWriter::new(&root, &config.folder).map_err(|e| {
                SetupError::TargetConfig {
                    connector: name.to_owned(),
                    message: e.to_string(),
                }
            })?;
            writer.check_root()?;
            Ok(Arc::new(writer))
        }
        Target::Graph { tenant } => {
            let secret = target_secret(name, secrets)?;
            let graph = GraphConfig::from_connector(config)?;
            let writer = GraphWriter::new(graph, secret.clone())?;
            let Some(fallback) = &config.large_item_fallback else {
                return Ok(Arc::new(writer));
            };
            let Ok(Target::Imap { tls, host, port }) = fallback.parse::<Target>() else {
                return Err(SetupError::TargetConfig {
                    connector: name.to_owned(),
                    message: format!(
                        "large_item_fallback {fallback:?} is not an imaps:// URL; create the connector again with --large-item-fallback imap"
                    ),
                });
            };
            let imap = exchange_imap(config, &tenant, (tls, &host, port))?;
            let imap: Arc<dyn MailboxWriter> = Arc::new(ImapWriter::new(imap, secret)?);
            Ok(Arc::new(writer.with_large_item_fallback(imap)))
        }
        Target::Imap { tls, host, port } if config.auth == TargetAuth::Xoauth2 => {
            let tenant = config
                .tenant
                .as_deref()
                .ok_or_else(|| SetupError::TargetConfig {
                    connector: name.to_owned(),
                    message: "IMAP with XOAUTH2 needs the tenant (--tenant TENANT)".to_owned(),
                })?;
            let imap = exchange_imap(config, tenant, (tls, &host, port))?;
            let secret = target_secret(name, secrets)?;
            Ok(Arc::new(ImapWriter::new(imap, secret)?))
        }
        Target::Imap { tls, host, port } => {
            let admin = config
                .target_user
                .as_deref()
                .ok_or_else(|| SetupError::TargetConfig {
                    connector: name.to_owned(),
                    message: "an IMAP target needs --target-user ADMIN".to_owned(),
                })?;
            let mut imap = ImapConfig::new(tls, &host, port, admin, &config.folder);
            imap.ca_file = std::env::var_os(IMAP_CA_FILE_ENV).map(Into::into);
            let secret = target_secret(name, secrets)?;
            Ok(Arc::new(ImapWriter::new(imap, secret)?))
        }
    }
}

/// IMAP with XOAUTH2 into Exchange Online, as the connector's application
/// (its tenant, client id, cloud and login endpoint), each mailbox
/// logging in as itself.
fn exchange_imap(
    config: &ConnectorConfig,
    tenant: &str,
    (tls, host, port): (bool, &str, u16),
) -> Result<ImapConfig, SetupError> {
    let client_id = config.client_id.clone().ok_or_else(|| {
        WriteError::Target(
            "IMAP with XOAUTH2 needs the application's client id (--client-id ID)".into(),
        )
    })?;
    let mut imap = ImapConfig::new(tls, host, port, "", &config.folder);
    imap.auth = ImapAuth::XOAuth2;
    imap.ca_file = std::env::var_os(IMAP_CA_FILE_ENV).map(Into::into);
    imap.app = Some(AppLogin {
        tenant: tenant.to_owned(),
        client_id,
        cloud: config.cloud,
        login_endpoint: config.login_endpoint.clone(),
    });
    Ok(imap)
}

/// Environment variable naming a PEM file of extra CA certificates the
/// IMAP target's certificate may chain to (a private CA).
pub const IMAP_CA_FILE_ENV: &str = "WECHAT_ARCHIVER_IMAP_CA_FILE";

/// The target's secret, which `login` stores for IMAP and Graph targets.
fn target_secret(name: &str, secrets: &ConnectorSecrets) -> Result<Secret, SetupError> {
    secrets
        .target_secret
        .clone()
        .ok_or_else(|| SetupError::TargetConfig {
            connector: name.to_owned(),
            message: "the target's password or client secret is missing; run `wechat-archiver login` (or put it on line 2 of WECHAT_ARCHIVER_PASSWORD_FILE)".to_owned(),
        })
}

/// The resolver: the custom mapping file (if any) and automatic mapping.
pub fn resolver(config: &ConnectorConfig) -> Result<Resolver, MappingError> {
    let custom = match &config.mapping {
        Some(path) => Some(mapping::load(path, config.default_region.as_deref())?),
        None => None,
    };
    Ok(Resolver::new(custom, config.auto_mapping))
}

/// A fingerprint of what decides an item's mailboxes and where an unmapped
/// one goes: the connector's whole configuration, the mapping file's bytes
/// and the tool's version (which may resolve differently). Unmapped items
/// are retried when it changes; an unreadable file gives a fingerprint of
/// its error.
pub fn mapping_fingerprint(config: &ConnectorConfig) -> String {
    let mut hash = Sha256::new();
    let mut field = |value: &[u8]| {
        hash.update((value.len() as u64).to_le_bytes());
        hash.update(value);
    };
    field(env!("CARGO_PKG_VERSION").as_bytes());
    match serde_json::to_vec(config) {
        Ok(json) => field(&json),
        Err(e) => field(format!("unserialisable: {e}").as_bytes()),
    }
    match config.mapping.as_deref().map(std::fs::read) {
        Some(Ok(bytes)) => field(&bytes),
        Some(Err(e)) => field(format!("unreadable: {e}").as_bytes()),
        None => field(b"no mapping file"),
    }
    hex::encode(hash.finalize())
}

/// The ledger under the home.
pub fn ledger(home: &Home) -> Result<Arc<Ledger>, SetupError> {
    home.ensure()?;
    Ok(Arc::new(Ledger::open(&home.ledger_file())?))
}
