//! Which addresses are users with a mailbox Graph lets this application
//! write to: the directory by address, then by alias (`proxyAddresses`),
//! then a read of the mailbox root to prove the mailbox is reachable.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Deserialize;

use super::GraphWriter;
use super::client::{Call, with_query};
use super::error::GraphError;
use super::throttle::Gate;
use crate::types::Mailbox;

#[derive(Debug, Clone)]
pub(crate) enum Resolution {
    /// The Graph user id the mailbox is reached by.
    Valid(String),
    /// Why the address is not a usable mailbox.
    Invalid(String),
}

/// A resolved mailbox: the id Graph knows it by and its share of the limits.
pub(crate) struct User {
    pub id: String,
    pub gate: Arc<Gate>,
}

#[derive(Deserialize)]
struct DirectoryUser {
    id: String,
}

#[derive(Deserialize)]
struct DirectoryPage {
    #[serde(default)]
    value: Vec<DirectoryUser>,
}

/// An OData string literal: single quotes doubled.
pub(crate) fn odata_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl GraphWriter {
    /// Resolves once per address and remembers the answer for the run;
    /// callers asking while the lookup runs wait for it. A failed lookup
    /// is not remembered, so the next caller tries again.
    pub(crate) async fn resolve(&self, mailbox: &Mailbox) -> Result<Resolution, GraphError> {
        let cell = self
            .users
            .lock()
            .expect("user map lock")
            .entry(mailbox.clone())
            .or_default()
            .clone();
        cell.get_or_try_init(|| async {
            let resolution = match self.directory_id(mailbox).await? {
                None => Resolution::Invalid(
                    "no user or alias with this address in the directory".into(),
                ),
                Some(id) => self.probe_mailbox(id).await?,
            };
            if matches!(resolution, Resolution::Valid(_)) {
                self.memory.add_mailbox();
            }
            Ok::<_, GraphError>(resolution)
        })
        .await
        .cloned()
    }

    /// The user a copy is written for, or a mailbox error.
    pub(crate) async fn user(&self, mailbox: &Mailbox) -> Result<User, crate::mailbox::WriteError> {
        match self.resolve(mailbox).await {
            Ok(Resolution::Valid(id)) => Ok(User {
                gate: self.api.gate(&id),
                id,
            }),
            Ok(Resolution::Invalid(reason)) => Err(crate::mailbox::WriteError::Mailbox {
                mailbox: mailbox.to_string(),
                reason: format!(
                    "not a Microsoft 365 mailbox this application can write to: {reason}"
                ),
            }),
            Err(e) => Err(e.into_write_error(mailbox.as_str())),
        }
    }

    /// The directory id for an address or alias; the address itself when
    /// the application may not read the directory.
    async fn directory_id(&self, mailbox: &Mailbox) -> Result<Option<String>, GraphError> {
        if self.directory_denied.load(Ordering::Relaxed) {
            return Ok(Some(mailbox.as_str().to_owned()));
        }
        let url = with_query(
            self.api.url(&["users", mailbox.as_str()]),
            &[("$select", "id")],
        );
        match self.api.call(None, Call::get(url)).await {
            Ok(reply) => return Ok(Some(reply.json::<DirectoryUser>()?.id)),
            Err(e) if e.status() == Some(403) => {
                tracing::warn!(
                    "the application may not read the directory ({e}); recognising users by their mailbox only. Grant User.Read.All to resolve aliases"
                );
                self.directory_denied.store(true, Ordering::Relaxed);
                return Ok(Some(mailbox.as_str().to_owned()));
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        let url = self.api.url(&["users"]);
        let filter = format!(
            "proxyAddresses/any(x:x eq {})",
            odata_string(&format!("smtp:{}", mailbox.as_str()))
        );
        let url = with_query(
            url,
            &[("$filter", &filter), ("$count", "true"), ("$select", "id")],
        );
        let call = Call::get(url).header("ConsistencyLevel", "eventual");
        let page: DirectoryPage = self.api.call(None, call).await?.json()?;
        Ok(page.value.into_iter().next().map(|u| u.id))
    }

    /// Reads the mailbox root: a user without an Exchange mailbox, or one
    /// the tenant's access policy keeps this application out of, is not a
    /// valid user.
    async fn probe_mailbox(&self, id: String) -> Result<Resolution, GraphError> {
        let url = self
            .api
            .url(&["users", &id, "mailFolders", "msgfolderroot"]);
        let url = with_query(url, &[("$select", "id")]);
        let gate = self.api.gate(&id);
        match self.api.call(Some(&gate), Call::get(url)).await {
            Ok(_) => Ok(Resolution::Valid(id)),
            Err(e) if e.is_not_found() || e.is_mailbox_refusal() => {
                Ok(Resolution::Invalid(e.to_string()))
            }
            Err(e) => Err(e),
        }
    }
}
