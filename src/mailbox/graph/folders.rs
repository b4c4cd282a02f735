//! The archive folder, created once per mailbox directly under the mailbox
//! root. An existing folder of that name is the one to use: Graph answers
//! `ErrorFolderExists` (400 or 409, reports differ) and the folder is then
//! looked up by its display name.

use std::collections::HashSet;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use super::GraphWriter;
use super::client::{Call, with_query};
use super::error::GraphError;
use super::users::{User, odata_string};
use crate::types::Mailbox;

#[derive(Deserialize)]
struct Folder {
    id: String,
    #[serde(default, rename = "displayName")]
    display_name: String,
}

#[derive(Deserialize)]
struct FolderPage {
    #[serde(default)]
    value: Vec<Folder>,
}

impl GraphWriter {
    fn folder_cell(&self, mailbox: &Mailbox) -> Arc<tokio::sync::OnceCell<String>> {
        self.folders
            .lock()
            .expect("folder map lock")
            .entry(mailbox.clone())
            .or_default()
            .clone()
    }

    /// The archive folder's id, created on first use; concurrent writers to
    /// the same mailbox wait for the one creation.
    pub(crate) async fn folder(
        &self,
        mailbox: &Mailbox,
        user: &User,
    ) -> Result<String, GraphError> {
        let cell = self.folder_cell(mailbox);
        cell.get_or_try_init(|| self.create_folder(user))
            .await
            .cloned()
    }

    /// The archive folder's id if it exists, without creating it. A
    /// folder found missing stays missing until this writer creates it:
    /// a first run would otherwise look for it once more per mailbox.
    pub(crate) async fn existing_folder(
        &self,
        mailbox: &Mailbox,
        user: &User,
    ) -> Result<Option<String>, GraphError> {
        let cell = self.folder_cell(mailbox);
        if let Some(id) = cell.get() {
            return Ok(Some(id.clone()));
        }
        if self.missing_folders().contains(mailbox) {
            return Ok(None);
        }
        let found = self.find_folder(user).await?;
        match &found {
            Some(id) => {
                let _ = cell.set(id.clone());
            }
            None => {
                self.missing_folders().insert(mailbox.clone());
            }
        }
        Ok(found)
    }

    fn missing_folders(&self) -> std::sync::MutexGuard<'_, HashSet<Mailbox>> {
        self.missing_folders
            .lock()
            .expect("missing folder set lock")
    }

    /// Drops a folder id Graph no longer knows (deleted, or a stale id from
    /// the ledger).
    pub(crate) fn forget_folder(&self, mailbox: &Mailbox) {
        self.folders
            .lock()
            .expect("folder map lock")
            .remove(mailbox);
    }

    async fn create_folder(&self, user: &User) -> Result<String, GraphError> {
        let url = self.api.url(&["users", &user.id, "mailFolders"]);
        let body = json!({"displayName": self.folder});
        match self
            .api
            .call(Some(&user.gate), Call::post_json(url, &body))
            .await
        {
            Ok(reply) => Ok(reply.json::<Folder>()?.id),
            Err(e) if e.code() == Some("ErrorFolderExists") => {
                self.find_folder(user).await?.ok_or_else(|| {
                    GraphError::Protocol(format!(
                        "Graph says folder {:?} exists but a search by its name finds nothing",
                        self.folder
                    ))
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn find_folder(&self, user: &User) -> Result<Option<String>, GraphError> {
        let filter = format!("displayName eq {}", odata_string(&self.folder));
        let url = with_query(
            self.api.url(&["users", &user.id, "mailFolders"]),
            &[("$filter", &filter), ("$select", "id,displayName")],
        );
        let page: FolderPage = self
            .api
            .call(Some(&user.gate), Call::get(url))
            .await?
            .json()?;
        Ok(page
            .value
            .into_iter()
            .find(|f| f.display_name.to_lowercase() == self.folder.to_lowercase())
            .map(|f| f.id))
    }
}
