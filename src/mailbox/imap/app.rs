//! What the IMAP writer logs in with: a fixed secret (the admin's
//! password, or a token handed in), or an Entra ID application's client
//! secret exchanged for app-only tokens (Exchange Online with
//! `IMAP.AccessAsApp`), cached and renewed before they expire.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::Cloud;
use crate::mailbox::graph::endpoints::Endpoints;
use crate::mailbox::oauth::{Permission, Retry, TokenSource};
use crate::secrets::Secret;

/// What Exchange's IMAP tokens must carry.
pub(crate) const IMAP_PERMISSION: Permission = Permission {
    role: "IMAP.AccessAsApp",
    api: "Office 365 Exchange Online",
};

/// What a tenant administrator must have done for an application to log
/// in to Exchange Online's IMAP as a mailbox; said when it is refused.
pub(crate) const ADMIN_STEPS: &str = "a tenant administrator must grant the application the IMAP.AccessAsApp application permission (Office 365 Exchange Online) with admin consent, register its service principal in Exchange Online (New-ServicePrincipal -AppId <client id> -ObjectId <enterprise application object id>) and give it FullAccess on each mailbox (Add-MailboxPermission -User <service principal id> -AccessRights FullAccess); see README, \"IMAP into Exchange Online (XOAUTH2)\"";

/// An application logging in to IMAP with its own token: where the token
/// comes from. The client secret is the writer's secret.
#[derive(Debug, Clone)]
pub struct AppLogin {
    /// The directory (tenant) id or a verified domain.
    pub tenant: String,
    /// The application (client) id of the app registration.
    pub client_id: String,
    /// The national cloud: its login authority and Exchange's scope.
    pub cloud: Cloud,
    /// Overrides the cloud's login authority root (a proxy, a test server).
    pub login_endpoint: Option<String>,
}

/// The secret a login uses, and when it was had: a token fetched before a
/// login began may have been revoked since; one fetched for it may not.
pub(crate) struct LoginSecret {
    pub secret: Secret,
    pub had_at: Instant,
}

pub(crate) enum Credentials {
    /// A password, or a bearer token handed in from outside.
    Fixed(std::sync::RwLock<Secret>),
    /// The application's client secret, exchanged for tokens as needed.
    App {
        tokens: TokenSource,
        http: reqwest::Client,
        retry: Retry,
    },
}

impl Credentials {
    /// Checks the application's settings (a login endpoint over TLS unless
    /// on loopback); nothing is sent until the first login.
    pub fn app(app: &AppLogin, client_secret: Secret) -> Result<Credentials, String> {
        if app.tenant.trim().is_empty() || app.client_id.trim().is_empty() {
            return Err(
                "IMAP with XOAUTH2 needs a tenant (--tenant) and a client id (--client-id)".into(),
            );
        }
        if client_secret.is_empty() {
            return Err(
                "the application's client secret is empty; store it with `wechat-archiver login`"
                    .into(),
            );
        }
        let (login, scope) = Endpoints::exchange(app.cloud, app.login_endpoint.as_deref())?;
        let tokens = TokenSource::new(
            &login,
            &app.tenant,
            &app.client_id,
            client_secret,
            &scope,
            IMAP_PERMISSION,
        );
        let http = crate::http::builder()
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(Credentials::App {
            tokens,
            http,
            retry: Retry::default(),
        })
    }

    /// The secret for the next login.
    pub async fn current(&self) -> Result<LoginSecret, String> {
        match self {
            Credentials::Fixed(secret) => Ok(LoginSecret {
                secret: secret.read().expect("secret lock").clone(),
                had_at: Instant::now(),
            }),
            Credentials::App {
                tokens,
                http,
                retry,
            } => {
                let token = tokens
                    .token_dated(http, retry)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(LoginSecret {
                    secret: token.secret,
                    had_at: token.fetched_at,
                })
            }
        }
    }

    /// After a login refused `used`: forgets a token fetched before the
    /// login began and says whether a retry with a fresh one is worth it.
    pub async fn refused(&self, used: &LoginSecret, login_began: Instant) -> bool {
        match self {
            Credentials::App { tokens, .. } if used.had_at < login_began => {
                tokens.invalidate(&used.secret).await;
                true
            }
            _ => false,
        }
    }

    /// Whether the logins use an application's own tokens.
    pub fn is_app(&self) -> bool {
        matches!(self, Credentials::App { .. })
    }
}
