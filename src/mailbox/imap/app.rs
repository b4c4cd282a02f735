//! What the IMAP writer logs in with: a fixed secret (the admin's
//! password, or a token handed in), or an Entra ID application's client
//! secret exchanged for app-only tokens (Exchange Online with
//! `IMAP.AccessAsApp`), cached and renewed before they expire.

use std::sync::Mutex;
use std::time::Duration;

use super::conn::{Conn, Login, OpenError};
use super::proto::{self, Status};
use super::{ImapAuth, ImapWriter};
use crate::config::Cloud;
use crate::mailbox::graph::endpoints::Endpoints;
use crate::mailbox::oauth::{Permission, Retry, TokenSource};
use crate::secrets::Secret;
use crate::types::Mailbox;

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

pub(crate) enum Credentials {
    /// A password, or a bearer token handed in from outside.
    Fixed(std::sync::RwLock<Secret>),
    /// The application's client secret, exchanged for tokens as needed.
    App(Box<AppTokens>),
}

pub(crate) struct AppTokens {
    tokens: TokenSource,
    http: reqwest::Client,
    retry: Retry,
    /// A token fetched because the server refused the one before, and not
    /// yet accepted for any login: a refusal of it is the server's verdict
    /// on the mailbox or the grant, not on the token's age.
    unproven: Mutex<Option<Secret>>,
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
        Ok(Credentials::App(Box::new(AppTokens {
            tokens,
            http,
            retry: Retry::default(),
            unproven: Mutex::new(None),
        })))
    }

    /// The secret for the next login.
    pub async fn current(&self) -> Result<Secret, String> {
        match self {
            Credentials::Fixed(secret) => Ok(secret.read().expect("secret lock").clone()),
            Credentials::App(app) => app
                .tokens
                .token(&app.http, &app.retry)
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// After a login refused `used`: a token the server took before (or
    /// never judged) is dropped and a fresh one returned, to try once
    /// more; `None` when `used` was itself such a fresh token, or is a
    /// fixed secret, so the refusal stands.
    pub async fn replace_refused(&self, used: &Secret) -> Result<Option<Secret>, String> {
        let Credentials::App(app) = self else {
            return Ok(None);
        };
        if app.unproven.lock().expect("token lock").as_ref() == Some(used) {
            return Ok(None);
        }
        app.tokens.invalidate(used).await;
        let fresh = self.current().await?;
        if &fresh == used {
            return Ok(None);
        }
        *app.unproven.lock().expect("token lock") = Some(fresh.clone());
        Ok(Some(fresh))
    }

    /// A login with `used` worked: a later refusal of it means it was
    /// revoked, which another fresh token may cure.
    pub fn accepted(&self, used: &Secret) {
        if let Credentials::App(app) = self {
            let mut unproven = app.unproven.lock().expect("token lock");
            if unproven.as_ref() == Some(used) {
                *unproven = None;
            }
        }
    }

    /// Whether the logins use an application's own tokens.
    pub fn is_app(&self) -> bool {
        matches!(self, Credentials::App(_))
    }
}

impl ImapWriter {
    /// Logs in as the mailbox. A token refused after the server took it
    /// (revoked, or expired early) is dropped and the login tried once
    /// more with a fresh one; a refusal of that fresh token stands.
    pub(super) async fn login(&self, mailbox: &Mailbox) -> Result<Conn, OpenError> {
        let used = self
            .credentials
            .current()
            .await
            .map_err(OpenError::Connect)?;
        let (used, result) = match self.login_with(mailbox, &used).await {
            Err(OpenError::Refused(status))
                if status.status == Status::No
                    && proto::throttle_backoff_ms(&status.text).is_none() =>
            {
                let fresh = self.credentials.replace_refused(&used).await;
                match fresh.map_err(OpenError::Connect)? {
                    Some(fresh) => {
                        tracing::info!(%mailbox, "the IMAP server refused the application's token; trying a fresh one");
                        let result = self.login_with(mailbox, &fresh).await;
                        (fresh, result)
                    }
                    None => (used, Err(OpenError::Refused(status))),
                }
            }
            other => (used, other),
        };
        if result.is_ok() {
            self.credentials.accepted(&used);
        }
        result
    }

    async fn login_with(&self, mailbox: &Mailbox, secret: &Secret) -> Result<Conn, OpenError> {
        let login = match self.config.auth {
            ImapAuth::Plain => Login::Plain {
                authz: mailbox.as_str(),
                authn: &self.config.admin_user,
                password: secret,
            },
            ImapAuth::XOAuth2 => Login::XOAuth2 {
                user: mailbox.as_str(),
                token: secret,
            },
        };
        let depth = self.config.pipeline_depth;
        Conn::open(&self.endpoint, &login, depth, self.config.multiappend).await
    }
}
