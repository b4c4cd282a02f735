//! The copies a Graph archive folder already holds, for a ledger that does
//! not know them (see `sync::adopt`). The folder's mark is its
//! `totalItemCount` and the id of its newest message by `createdDateTime`
//! (two small requests); its copies come from one paged listing of the
//! folder's messages with the item-id, byte and attachment-count extended
//! properties expanded and the trace headers selected, [`PAGE`] at a time.
//! The v1.0 metadata makes `singleValueExtendedProperties` reachable only
//! through `$expand` (its navigability is `None`), with a `$filter` on the
//! property id, as the lookup after a crash already asks for it.

use serde::Deserialize;

use super::GraphWriter;
use super::client::{Call, with_query};
use super::compose::{ATTACHMENT_COUNT_PROP, BYTES_PROP, ITEM_ID_PROP, named_property};
use super::error::GraphError;
use super::users::{Resolution, User, odata_string};
use crate::mailbox::existing::{self, CopyKey, FolderCopies, Found};
use crate::mailbox::{CONNECTOR_HEADER, WriteError, Written};
use crate::types::Mailbox;

/// Messages asked for per page (Graph serves at most 1,000).
const PAGE: &str = "500";
/// Pages read before giving up on a server whose `@odata.nextLink` never
/// ends (10 million messages at [`PAGE`]).
const MAX_PAGES: u32 = 20_000;

#[derive(Deserialize)]
struct Property {
    id: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
struct Header {
    name: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
struct Listed {
    id: String,
    #[serde(default, rename = "hasAttachments")]
    has_attachments: bool,
    #[serde(default, rename = "singleValueExtendedProperties")]
    properties: Vec<Property>,
    #[serde(default, rename = "internetMessageHeaders")]
    headers: Vec<Header>,
}

#[derive(Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    #[serde(default, rename = "@odata.nextLink")]
    next_link: Option<String>,
}

#[derive(Deserialize)]
struct FolderCount {
    #[serde(default, rename = "totalItemCount")]
    total: u64,
}

#[derive(Deserialize)]
struct Newest {
    id: String,
}

impl GraphWriter {
    /// The folder's item count and newest message, or `absent`. The two
    /// requests go together: a run reads every mailbox's mark at its end,
    /// and one after the other they added a round trip per mailbox.
    pub(super) async fn mark(&self, mailbox: &Mailbox) -> Result<Option<String>, WriteError> {
        self.read_mark(mailbox)
            .await
            .map(Some)
            .map_err(|e| e.into_write_error(mailbox.as_str()))
    }

    async fn read_mark(&self, mailbox: &Mailbox) -> Result<String, GraphError> {
        for _ in 0..2 {
            let Some((user, folder)) = self.archive_folder_id(mailbox).await? else {
                break;
            };
            let (total, newest) = tokio::join!(
                self.folder_total(&user, &folder),
                self.newest_message(&user, &folder)
            );
            match total {
                Ok(total) => return Ok(existing::mark_of(&[&total.to_string(), &newest?])),
                Err(e) if e.is_not_found() => self.forget_folder(mailbox),
                Err(e) => return Err(e),
            }
        }
        Ok(existing::mark_of(&["absent"]))
    }

    async fn newest_message(&self, user: &User, folder: &str) -> Result<String, GraphError> {
        let url = with_query(
            self.messages_url(user, folder),
            &[
                ("$orderby", "createdDateTime desc"),
                ("$top", "1"),
                ("$select", "id"),
            ],
        );
        let call = Call::get(url).header("Prefer", "IdType=\"ImmutableId\"");
        let newest: Page<Newest> = self.api.call(Some(&user.gate), call).await?.json()?;
        Ok(newest
            .value
            .into_iter()
            .next()
            .map_or_else(String::new, |m| m.id))
    }

    /// Every whole copy in the archive folder, by item id. A copy with
    /// fewer attachments than it should have (a write cut short) is left
    /// out: it is not the archived item.
    pub(super) async fn copies_in(&self, mailbox: &Mailbox) -> Result<FolderCopies, WriteError> {
        self.list_copies(mailbox)
            .await
            .map_err(|e| e.into_write_error(mailbox.as_str()))
    }

    async fn list_copies(&self, mailbox: &Mailbox) -> Result<FolderCopies, GraphError> {
        let mut copies = FolderCopies::new(CopyKey::ItemId);
        let Some((user, folder, _)) = self.archive_folder(mailbox).await? else {
            return Ok(copies);
        };
        let expand = format!(
            "singleValueExtendedProperties($filter=id eq {} or id eq {} or id eq {})",
            odata_string(&named_property(ITEM_ID_PROP)),
            odata_string(&named_property(ATTACHMENT_COUNT_PROP)),
            odata_string(&named_property(BYTES_PROP))
        );
        let mut url = with_query(
            self.messages_url(&user, &folder),
            &[
                ("$select", "id,hasAttachments,internetMessageHeaders"),
                ("$expand", &expand),
                ("$top", PAGE),
            ],
        );
        for _ in 0..MAX_PAGES {
            let call = Call::get(url).header("Prefer", "IdType=\"ImmutableId\"");
            let page: Page<Listed> = self.api.call(Some(&user.gate), call).await?.json()?;
            for listed in page.value {
                if let Some((item, found)) = self.whole_copy(&user, listed).await? {
                    copies.insert(item, found);
                }
            }
            match page.next_link {
                None => return Ok(copies),
                Some(link) => url = self.next_link(&link)?,
            }
        }
        Err(GraphError::Protocol(format!(
            "the archive folder of {mailbox} lists messages over more than {MAX_PAGES} pages"
        )))
    }

    /// A listed message as a copy of an item, if it carries an item id and
    /// every attachment it was written with.
    async fn whole_copy(
        &self,
        user: &User,
        listed: Listed,
    ) -> Result<Option<(String, Found)>, GraphError> {
        let prop = |name: &str| {
            let id = named_property(name);
            listed
                .properties
                .iter()
                .find(|p| p.id.eq_ignore_ascii_case(&id))
                .map(|p| p.value.clone())
        };
        let Some(item) = prop(ITEM_ID_PROP).filter(|i| !i.is_empty()) else {
            return Ok(None);
        };
        let number = |name: &str| prop(name).and_then(|v| v.parse::<u64>().ok());
        let expected = number(ATTACHMENT_COUNT_PROP).unwrap_or(0);
        let bytes = number(BYTES_PROP).unwrap_or(0);
        if expected > 0
            && (!listed.has_attachments
                || self.attachment_count(user, &listed.id).await? < expected)
        {
            tracing::warn!(
                user = %user.id,
                "a copy of item {item} lacks attachments (a write cut short); it is not adopted"
            );
            return Ok(None);
        }
        let connector = listed
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(CONNECTOR_HEADER))
            .map(|h| h.value.trim().to_owned());
        let found = Found {
            written: Written {
                location: listed.id,
                bytes,
            },
            connector,
        };
        Ok(Some((item, found)))
    }

    /// The mailbox's user, archive folder id and item count, if both
    /// exist; the folder is not created. A folder id Graph no longer knows
    /// (deleted, or stale from the ledger) is looked up again by name.
    async fn archive_folder(
        &self,
        mailbox: &Mailbox,
    ) -> Result<Option<(User, String, u64)>, GraphError> {
        for _ in 0..2 {
            let Some((user, folder)) = self.archive_folder_id(mailbox).await? else {
                return Ok(None);
            };
            match self.folder_total(&user, &folder).await {
                Ok(total) => return Ok(Some((user, folder, total))),
                Err(e) if e.is_not_found() => self.forget_folder(mailbox),
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// The mailbox's user and archive folder id, if both exist.
    async fn archive_folder_id(
        &self,
        mailbox: &Mailbox,
    ) -> Result<Option<(User, String)>, GraphError> {
        let user = match self.resolve(mailbox).await? {
            Resolution::Valid(id) => User {
                gate: self.api.gate(&id),
                id,
            },
            Resolution::Invalid(_) => return Ok(None),
        };
        Ok(self
            .existing_folder(mailbox, &user)
            .await?
            .map(|folder| (user, folder)))
    }

    async fn folder_total(&self, user: &User, folder: &str) -> Result<u64, GraphError> {
        let url = with_query(
            self.api.url(&["users", &user.id, "mailFolders", folder]),
            &[("$select", "id,totalItemCount")],
        );
        let count: FolderCount = self
            .api
            .call(Some(&user.gate), Call::get(url))
            .await?
            .json()?;
        Ok(count.total)
    }

    fn messages_url(&self, user: &User, folder: &str) -> reqwest::Url {
        self.api
            .url(&["users", &user.id, "mailFolders", folder, "messages"])
    }
}
