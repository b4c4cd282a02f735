//! Writing one copy: create the received message (with what fits of its
//! attachments), add the rest, and make sure a copy is either whole or
//! gone. Also the search for a copy a crashed run left behind.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::GraphWriter;
use super::client::{Auth, Body, Call, with_query};
use super::compose::{
    self, ATTACHMENT_COUNT_PROP, ATTACHMENT_LIMIT, Attachment, BYTES_PROP, ITEM_ID_PROP,
    named_property,
};
use super::elided;
use super::endpoints::require_secure;
use super::error::GraphError;
use super::ready::Ready;
use super::users::{User, odata_string};
use crate::mailbox::{Copy, WriteError, Written};
use crate::telemessage::Item;
use crate::types::Mailbox;

/// Upload-session chunks: a multiple of 320 KiB, as Graph asks, and under
/// the 4 MB request cap.
pub(crate) const CHUNK: usize = 10 * 320 * 1024;
/// Whole-copy attempts when a step's outcome is unknown.
const ROUNDS: u32 = 3;

#[derive(Deserialize)]
struct Created {
    id: String,
    #[serde(default, rename = "isDraft")]
    is_draft: Option<bool>,
}

#[derive(Deserialize)]
struct UploadSession {
    #[serde(rename = "uploadUrl")]
    upload_url: String,
}

#[derive(Deserialize)]
struct Property {
    id: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
struct Listed {
    id: String,
    #[serde(default, rename = "singleValueExtendedProperties")]
    properties: Vec<Property>,
}

#[derive(Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    #[serde(default, rename = "@odata.nextLink")]
    next_link: Option<String>,
}

/// Pages of a message's attachments read before giving up on a server
/// whose `@odata.nextLink` never ends.
const MAX_ATTACHMENT_PAGES: u32 = 1_000;

#[derive(Deserialize)]
struct AttachmentRef {
    #[allow(dead_code)]
    id: String,
}

/// Why adding the rest of the attachments failed.
enum AttachFailure {
    /// Graph will not add attachments to a received message.
    Refused(GraphError),
    Other(GraphError),
}

impl GraphWriter {
    /// Writes one copy; also returns the digest the manifest keeps for it
    /// (`None` when the fallback wrote it: its bytes' SHA-256 then).
    pub(crate) async fn write_copy(
        &self,
        mailbox: &Mailbox,
        copy: &Copy<'_>,
    ) -> Result<(Written, Option<String>), WriteError> {
        refuse_declared_oversize(copy.item)?;
        let large = self
            .memory
            .is_large(copy.content.len())
            .then(|| self.large_items.join(&copy.item.id));
        let user = self.user(mailbox).await?;
        let (ready, _slot, _memory) = match &large {
            Some(large) => {
                let slot = user.gate.large_copy_slot().await;
                let lane = self.memory.large_lane().await;
                let ready = large.ready(|| self.make_large_ready(copy)).await?;
                (ready, slot, Some(lane))
            }
            None => {
                let slot = user.gate.copy_slot().await;
                let memory = self.memory.reserve(copy.content.len()).await;
                let ready = Arc::new(self.make_ready(copy).await?);
                (ready, slot, Some(memory))
            }
        };
        if ready.needs_attachments_after_create() && self.attachments_refused() {
            return self.write_elsewhere(mailbox, copy, &ready, None).await;
        }
        let mut folder_retried = false;
        let mut round = 0;
        while round < ROUNDS {
            round += 1;
            let folder = self
                .folder(mailbox, &user)
                .await
                .map_err(|e| e.into_write_error(mailbox.as_str()))?;
            let id = match self.create(&user, &folder, &ready, copy.item).await {
                Ok(id) => id,
                Err(e) if e.is_not_found() && !folder_retried => {
                    tracing::info!(%mailbox, "archive folder {folder} is gone; looking it up again");
                    folder_retried = true;
                    round -= 1;
                    self.forget_folder(mailbox);
                    continue;
                }
                Err(e) => return Err(e.into_write_error(mailbox.as_str())),
            };
            match self.attach_rest(&user, &id, &ready).await {
                Ok(()) => {
                    let written = Written {
                        location: id,
                        bytes: copy.len(),
                    };
                    return Ok((written, Some(ready.digest.clone())));
                }
                Err(AttachFailure::Refused(e)) => {
                    self.delete(&user, &id).await;
                    self.attachments_refused.fetch_add(1, Ordering::Relaxed);
                    return self.write_elsewhere(mailbox, copy, &ready, Some(e)).await;
                }
                Err(AttachFailure::Other(e @ GraphError::Ambiguous(_))) => {
                    tracing::warn!(%mailbox, item = %copy.item.id, "{e}; writing the copy again");
                    self.delete(&user, &id).await;
                }
                Err(AttachFailure::Other(e)) => {
                    self.delete(&user, &id).await;
                    return Err(e.into_write_error(mailbox.as_str()));
                }
            }
        }
        Err(WriteError::Copy(format!(
            "item {}: {ROUNDS} attempts to write it to {mailbox} ended with an unknown outcome; the next run tries again",
            copy.item.id
        )))
    }

    /// A large item's copy, with its long base64 runs left in the spool
    /// file when it has one (`elided.rs`); else composed whole.
    async fn make_large_ready(&self, copy: &Copy<'_>) -> Result<Ready, WriteError> {
        let Some(path) = copy.content.path().map(std::path::Path::to_owned) else {
            return self.make_ready(copy).await;
        };
        let skeleton = tokio::task::spawn_blocking(move || elided::skeleton(&path))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|read| read)
            .map_err(|e| {
                WriteError::Copy(format!(
                    "item {}: cannot read its content: {e}",
                    copy.item.id
                ))
            })?;
        let planned = match &skeleton {
            Some(skeleton) => compose::plan_elided(copy, skeleton)
                .map_err(|e| WriteError::Copy(format!("item {}: {e}", copy.item.id)))?,
            None => None,
        };
        match planned {
            Some(plan) => Ok(Ready::of(plan, &copy.item.id)),
            None => self.make_ready(copy).await,
        }
    }

    /// Reads the copy's content and composes what Graph is sent.
    async fn make_ready(&self, copy: &Copy<'_>) -> Result<Ready, WriteError> {
        let raw = copy.content.to_bytes().await.map_err(|e| {
            WriteError::Copy(format!(
                "item {}: cannot read its content: {e}",
                copy.item.id
            ))
        })?;
        let plan = compose::plan(copy, &raw)
            .map_err(|e| WriteError::Copy(format!("item {}: {e}", copy.item.id)))?;
        drop(raw);
        Ok(Ready::of(plan, &copy.item.id))
    }

    /// Creates the message; when the outcome of the POST is unknown, looks
    /// for it by its dedupe key before trying again.
    async fn create(
        &self,
        user: &User,
        folder: &str,
        ready: &Ready,
        item: &Item,
    ) -> Result<String, GraphError> {
        let url = self
            .api
            .url(&["users", &user.id, "mailFolders", folder, "messages"]);
        let mut last = None;
        for _ in 0..2 {
            let call = Call::post_json_bytes(url.clone(), ready.create.clone())
                .header("Prefer", "IdType=\"ImmutableId\"");
            match self.api.call(Some(&user.gate), call).await {
                Ok(reply) => {
                    let created: Created = reply.json()?;
                    if created.is_draft == Some(true) {
                        self.delete(user, &created.id).await;
                        return Err(GraphError::Protocol(
                            "Graph created the copy as a draft despite PidTagMessageFlags; it was removed".into(),
                        ));
                    }
                    return Ok(created.id);
                }
                Err(e @ GraphError::Ambiguous(_)) => {
                    if let Some(found) = self.lookup(user, folder, item).await? {
                        return Ok(found.location);
                    }
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("the loop ran"))
    }

    async fn attach_rest(&self, user: &User, id: &str, ready: &Ready) -> Result<(), AttachFailure> {
        let mut first = true;
        for a in &ready.separate {
            let result = self.post_attachment(user, id, a).await;
            check_first(&mut first, result)?;
        }
        for a in &ready.sessions {
            let session = self.create_session(user, id, a).await;
            let url = check_first(&mut first, session)?;
            self.upload(user, &url, a)
                .await
                .map_err(AttachFailure::Other)?;
        }
        Ok(())
    }

    async fn post_attachment(
        &self,
        user: &User,
        id: &str,
        a: &Attachment,
    ) -> Result<(), GraphError> {
        let url = self
            .api
            .url(&["users", &user.id, "messages", id, "attachments"]);
        self.api
            .call(Some(&user.gate), Call::post_json(url, &a.file_attachment()))
            .await
            .map(drop)
    }

    async fn create_session(
        &self,
        user: &User,
        id: &str,
        a: &Attachment,
    ) -> Result<reqwest::Url, GraphError> {
        let url = self.api.url(&[
            "users",
            &user.id,
            "messages",
            id,
            "attachments",
            "createUploadSession",
        ]);
        let body = json!({"AttachmentItem": a.attachment_item()});
        let session: UploadSession = self
            .api
            .call(Some(&user.gate), Call::post_json(url, &body))
            .await?
            .json()?;
        let upload = reqwest::Url::parse(&session.upload_url)
            .map_err(|e| GraphError::Protocol(format!("upload URL is not a URL: {e}")))?;
        require_secure("upload URL", &upload).map_err(GraphError::Protocol)?;
        Ok(upload)
    }

    /// PUTs the bytes in order, in [`CHUNK`]-sized ranges, to the
    /// pre-authenticated URL (no `Authorization` header); an attachment
    /// left in the spool file is read from it a chunk at a time.
    async fn upload(
        &self,
        user: &User,
        url: &reqwest::Url,
        attachment: &Attachment,
    ) -> Result<(), GraphError> {
        let total = attachment.len();
        let mut chunks = Chunks::of(attachment)?;
        let mut start = 0;
        while start < total {
            let chunk;
            (chunks, chunk) = chunks.next().await?;
            let end = start + chunk.len();
            if chunk.is_empty() || end > total {
                return Err(GraphError::Protocol(format!(
                    "attachment {:?} changed in the spool while it was uploaded",
                    attachment.name
                )));
            }
            let call = Call {
                method: Method::PUT,
                url: url.clone(),
                body: Body::Octets(chunk),
                headers: vec![(
                    "Content-Range",
                    format!("bytes {start}-{}/{total}", end - 1),
                )],
                auth: Auth::PreAuthenticated,
            };
            let reply = self.api.call(Some(&user.gate), call).await?;
            let finished = reply.status.as_u16() == 201;
            if finished != (end == total) {
                return Err(GraphError::Protocol(format!(
                    "upload session answered {} after bytes {start}-{} of {total}",
                    reply.status,
                    end - 1
                )));
            }
            start = end;
        }
        Ok(())
    }

    /// Best effort: a copy left half-written is also found and removed by
    /// [`GraphWriter::find_copy`] later.
    async fn delete(&self, user: &User, id: &str) {
        let url = self.api.url(&["users", &user.id, "messages", id]);
        if let Err(e) = self.api.call(Some(&user.gate), Call::delete(url)).await {
            tracing::warn!(user = %user.id, "could not remove an incomplete copy ({e}); the next run removes it");
        }
    }

    /// Graph will not take this copy whole: the fallback writer gets it, or
    /// the copy fails with the reason.
    async fn write_elsewhere(
        &self,
        mailbox: &Mailbox,
        copy: &Copy<'_>,
        ready: &Ready,
        refusal: Option<GraphError>,
    ) -> Result<(Written, Option<String>), WriteError> {
        if let Some(fallback) = &self.fallback {
            return fallback.write(mailbox, copy).await.map(|w| (w, None));
        }
        let why = refusal.map_or_else(String::new, |e| format!(" ({e})"));
        Err(WriteError::Copy(format!(
            "item {}: Microsoft Graph refuses to add attachments to a received message{why}, and {} of this item's attachments do not fit in the 4 MB create request; no fallback target is configured for such items",
            copy.item.id,
            ready.separate.len() + ready.sessions.len()
        )))
    }

    /// The copy of `item` in the archive folder, if a whole one exists;
    /// half-written ones (a crash between the create and the last
    /// attachment) are removed so the item is written again.
    pub(crate) async fn find_copy(
        &self,
        mailbox: &Mailbox,
        item: &Item,
    ) -> Result<Option<Written>, GraphError> {
        let user = match self.resolve(mailbox).await? {
            super::users::Resolution::Valid(id) => User {
                gate: self.api.gate(&id),
                id,
            },
            super::users::Resolution::Invalid(_) => return Ok(None),
        };
        let Some(folder) = self.existing_folder(mailbox, &user).await? else {
            return Ok(None);
        };
        self.lookup(&user, &folder, item).await
    }

    async fn lookup(
        &self,
        user: &User,
        folder: &str,
        item: &Item,
    ) -> Result<Option<Written>, GraphError> {
        let url = self
            .api
            .url(&["users", &user.id, "mailFolders", folder, "messages"]);
        let filter = format!(
            "singleValueExtendedProperties/Any(ep: ep/id eq {} and ep/value eq {})",
            odata_string(&named_property(ITEM_ID_PROP)),
            odata_string(item.id.as_str())
        );
        let expand = format!(
            "singleValueExtendedProperties($filter=id eq {} or id eq {} or id eq {})",
            odata_string(&named_property(ITEM_ID_PROP)),
            odata_string(&named_property(ATTACHMENT_COUNT_PROP)),
            odata_string(&named_property(BYTES_PROP))
        );
        let url = with_query(
            url,
            &[
                ("$filter", &filter),
                ("$select", "id"),
                ("$expand", &expand),
                ("$top", "10"),
            ],
        );
        let call = Call::get(url).header("Prefer", "IdType=\"ImmutableId\"");
        let page: Page<Listed> = self.api.call(Some(&user.gate), call).await?.json()?;
        for listed in page.value {
            let prop = |name: &str| {
                let id = named_property(name);
                listed
                    .properties
                    .iter()
                    .find(|p| p.id.eq_ignore_ascii_case(&id))
                    .map(|p| p.value.as_str())
            };
            // Graph compares the value case-insensitively; item ids are not.
            if prop(ITEM_ID_PROP) != Some(item.id.as_str()) {
                continue;
            }
            let number = |name: &str| prop(name).and_then(|v| v.parse::<u64>().ok());
            let expected = number(ATTACHMENT_COUNT_PROP).unwrap_or(0);
            let bytes = number(BYTES_PROP).unwrap_or(item.size);
            if self.attachment_count(user, &listed.id).await? >= expected {
                return Ok(Some(Written {
                    location: listed.id,
                    bytes,
                }));
            }
            tracing::warn!(user = %user.id, item = %item.id, "removing a half-written copy left by an interrupted run");
            self.delete(user, &listed.id).await;
        }
        Ok(None)
    }

    pub(super) async fn attachment_count(&self, user: &User, id: &str) -> Result<u64, GraphError> {
        let url = self
            .api
            .url(&["users", &user.id, "messages", id, "attachments"]);
        // No `$top`: the v1.0 metadata marks it unsupported on message
        // attachments (`TopSupported = false`); Graph pages instead.
        let mut url = with_query(url, &[("$select", "id")]);
        let mut count = 0u64;
        for _ in 0..MAX_ATTACHMENT_PAGES {
            let page: Page<AttachmentRef> = self
                .api
                .call(Some(&user.gate), Call::get(url))
                .await?
                .json()?;
            count += page.value.len() as u64;
            match page.next_link {
                None => return Ok(count),
                Some(link) => url = self.next_link(&link)?,
            }
        }
        Err(GraphError::Protocol(format!(
            "message {id} lists attachments over more than {MAX_ATTACHMENT_PAGES} pages"
        )))
    }

    /// An `@odata.nextLink`, accepted only under this writer's Graph root:
    /// the token must not go to another host.
    pub(super) fn next_link(&self, link: &str) -> Result<reqwest::Url, GraphError> {
        let root = self.api.url(&[]);
        match reqwest::Url::parse(link) {
            Ok(url)
                if url.origin() == root.origin()
                    && url.path().starts_with(&format!("{}/", root.path())) =>
            {
                Ok(url)
            }
            _ => Err(GraphError::Protocol(
                "Graph answered with an @odata.nextLink outside its service root".into(),
            )),
        }
    }
}

/// An attachment's bytes in [`CHUNK`]s: slices of its bytes in memory, or
/// decoded from the spool file off the async threads.
enum Chunks {
    Memory(Bytes),
    Spooled(Box<elided::RunReader>),
}

impl Chunks {
    fn of(attachment: &Attachment) -> Result<Chunks, GraphError> {
        match &attachment.elided {
            None => Ok(Chunks::Memory(attachment.bytes.clone())),
            Some(run) => run
                .open()
                .map(|reader| Chunks::Spooled(Box::new(reader)))
                .map_err(|e| GraphError::Protocol(format!("cannot read the spooled content: {e}"))),
        }
    }

    async fn next(self) -> Result<(Chunks, Bytes), GraphError> {
        match self {
            Chunks::Memory(mut rest) => {
                let chunk = rest.split_to(CHUNK.min(rest.len()));
                Ok((Chunks::Memory(rest), chunk))
            }
            Chunks::Spooled(mut reader) => {
                let read = tokio::task::spawn_blocking(move || {
                    let chunk = reader.next_chunk(CHUNK);
                    (reader, chunk)
                })
                .await;
                let (reader, chunk) = read
                    .map_err(|e| GraphError::Protocol(format!("reading the spool failed: {e}")))?;
                let chunk = chunk.map_err(|e| {
                    GraphError::Protocol(format!("cannot read the spooled content: {e}"))
                })?;
                Ok((Chunks::Spooled(reader), chunk))
            }
        }
    }
}

/// The first step after the create tells whether Graph adds attachments to
/// a received message at all: a 400, 403 or 405 there is read as "no".
fn check_first<T>(first: &mut bool, result: Result<T, GraphError>) -> Result<T, AttachFailure> {
    let was_first = std::mem::replace(first, false);
    match result {
        Ok(v) => Ok(v),
        Err(e) if was_first && matches!(e.status(), Some(400 | 403 | 405)) && !e.is_not_found() => {
            Err(AttachFailure::Refused(e))
        }
        Err(e) => Err(AttachFailure::Other(e)),
    }
}

/// Refuses, before anything is read or sent, an item whose listing already
/// declares an attachment larger than Graph accepts.
fn refuse_declared_oversize(item: &Item) -> Result<(), WriteError> {
    match item.attachments.iter().find(|a| a.size > ATTACHMENT_LIMIT) {
        Some(a) => Err(WriteError::Copy(format!(
            "item {}: attachment {:?} is {} bytes; Microsoft Graph accepts attachments up to {ATTACHMENT_LIMIT} bytes (150 MB)",
            item.id, a.name, a.size
        ))),
        None => Ok(()),
    }
}
