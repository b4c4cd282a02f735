//! Mailbox targets. Every target (Maildir, IMAP, Microsoft Graph) writes
//! copies through the one [`MailboxWriter`] trait, so the sync engine and
//! the ledger treat them alike.

pub mod existing;
pub mod graph;
pub mod imap;
pub mod maildir;
pub(crate) mod oauth;
pub mod readback;
pub mod target;

use async_trait::async_trait;
use tokio::io::AsyncRead;

use crate::content::Content;
use crate::telemessage::Item;
use crate::types::{ItemId, Mailbox};

pub use existing::{CopyKey, FolderCopies, Found};
pub use readback::ReadBack;
pub use target::Target;

/// The header that carries the item id in every copy: the dedupe key a
/// writer searches for after a crash.
pub const ITEM_ID_HEADER: &str = "X-WeChat-Archiver-Item-Id";
/// The header that names the connector that wrote the copy.
pub const CONNECTOR_HEADER: &str = "X-WeChat-Archiver-Connector";

/// One item's content on its way into one mailbox: the TeleMessage message
/// unchanged, after two trace headers.
pub struct Copy<'a> {
    pub item: &'a Item,
    pub connector: &'a str,
    pub content: &'a Content,
    /// The `Message-ID` (angle brackets included) of the message this one
    /// follows: a recalled item's original, named in `In-Reply-To` and
    /// `References` so that a mail client shows the two together.
    pub in_reply_to: Option<&'a str>,
}

impl Copy<'_> {
    /// The trace headers prepended to the message, CRLF-terminated; then
    /// the link to the original, if any.
    pub fn trace_headers(&self) -> Vec<u8> {
        let mut headers = format!(
            "{ITEM_ID_HEADER}: {}\r\n{CONNECTOR_HEADER}: {}\r\n",
            self.item.id, self.connector
        );
        if let Some(id) = self.in_reply_to {
            headers.push_str(&format!("In-Reply-To: {id}\r\nReferences: {id}\r\n"));
        }
        headers.into_bytes()
    }

    /// The exact byte length of what [`Copy::reader`] yields.
    pub fn len(&self) -> u64 {
        self.trace_headers().len() as u64 + self.content.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole message to write, streamed (a large item is never read
    /// whole into memory).
    pub async fn reader(&self) -> std::io::Result<impl AsyncRead + Unpin + Send + use<'_>> {
        let headers = std::io::Cursor::new(self.trace_headers());
        Ok(tokio::io::AsyncReadExt::chain(
            headers,
            self.content.reader().await?,
        ))
    }
}

/// Where a written copy is, as the target names it (a file name, an IMAP
/// UID, a Graph message id); stored in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub location: String,
    pub bytes: u64,
}

/// How a write failed, which decides what the run does next.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// This copy could not be written; the item is recorded as failed and
    /// retried by the next run.
    #[error("{0}")]
    Copy(String),
    /// The mailbox is not usable (not a user of the target, access denied).
    #[error("mailbox {mailbox}: {reason}")]
    Mailbox { mailbox: String, reason: String },
    /// The target as a whole is unusable (disk gone, server down, bad
    /// credentials); the copies fail and the run reports it.
    #[error("{0}")]
    Target(String),
}

/// A place copies can be written to.
#[async_trait]
pub trait MailboxWriter: Send + Sync {
    /// A short description for messages, e.g. `maildir:/srv/archive`.
    fn describe(&self) -> String;

    /// Whether the address is a user of this target (the mapping rules
    /// only map to valid users).
    async fn is_valid_user(&self, mailbox: &Mailbox) -> Result<bool, WriteError>;

    /// After a crash: the location of a copy of `item` already in the
    /// mailbox's archive folder that the ledger does not know about.
    async fn find_existing(
        &self,
        mailbox: &Mailbox,
        item: &Item,
    ) -> Result<Option<Written>, WriteError>;

    /// Gets a mailbox ready for copies while their item downloads (Graph
    /// creates the archive folder); best effort, as `write` does it again
    /// if it failed.
    async fn prepare(&self, _mailbox: &Mailbox) {}

    /// Writes one copy: complete when this returns, durable once
    /// [`MailboxWriter::sync_written`] has returned.
    async fn write(&self, mailbox: &Mailbox, copy: &Copy<'_>) -> Result<Written, WriteError>;

    /// Makes every copy written so far durable, for a target that defers
    /// part of that (Maildir fsyncs each directory once per ledger batch,
    /// not once per copy). The engine runs it before the ledger commits
    /// the copies it recorded.
    fn sync_written(&self) -> Result<(), WriteError> {
        Ok(())
    }

    /// Writes a further copy of an item this run already wrote into
    /// another mailbox of this target (at `earlier`). A target that can
    /// share stored content does (Maildir hard-links the file, as
    /// Dovecot does for copies); the others write it again.
    async fn write_again(
        &self,
        mailbox: &Mailbox,
        copy: &Copy<'_>,
        _earlier: &Written,
    ) -> Result<Written, WriteError> {
        self.write(mailbox, copy).await
    }

    /// Whether the copies of one item may be written into its mailboxes at
    /// once: true for a target whose mailboxes share nothing (Graph), so
    /// an item queued at one busy mailbox is not kept from the others.
    /// False (one after another) for one that writes later copies from
    /// the first ([`MailboxWriter::write_again`]).
    fn writes_mailboxes_independently(&self) -> bool {
        false
    }

    /// Items the engine should keep in flight for this target. Downloads
    /// stay bounded by the client; more items waiting to be written lets a
    /// writer batch them (IMAP `MULTIAPPEND` per mailbox).
    fn items_in_flight(&self) -> usize {
        16
    }

    /// Archive folder ids the target looked up this run (Graph), kept in
    /// the ledger so the next run saves a lookup per mailbox.
    fn folder_ids(&self) -> Vec<(Mailbox, String)> {
        Vec::new()
    }

    /// A folder id remembered by the ledger from an earlier run.
    fn preload_folder_id(&self, _mailbox: &Mailbox, _folder_id: String) {}

    /// Ends the run's sessions politely (IMAP `LOGOUT`); a later use
    /// opens new ones.
    async fn close(&self) {}

    /// A cheap summary of the mailbox's archive folder that changes
    /// whenever a copy is added to it (Maildir: its directories' times;
    /// IMAP: UIDVALIDITY and UIDNEXT; Graph: its item count and newest
    /// message). A run compares it with the mark the ledger stored after
    /// its last complete pass, and looks in the folder
    /// ([`MailboxWriter::existing_copies`]) when they differ. `None`: no
    /// cheap mark, so the folder is looked in on every run.
    async fn folder_mark(&self, _mailbox: &Mailbox) -> Result<Option<String>, WriteError> {
        Ok(None)
    }

    /// Every copy in the mailbox's archive folder, by item, in one pass
    /// (a directory listing, one FETCH of the trace headers, one paged
    /// listing). Empty for a target that cannot list its copies.
    async fn existing_copies(&self, _mailbox: &Mailbox) -> Result<FolderCopies, WriteError> {
        Ok(FolderCopies::default())
    }

    /// Checks a copy [`MailboxWriter::existing_copies`] found for `item`
    /// before it is adopted, filling in what the pass did not read (Maildir
    /// reads the copy's trace headers); `None` if it is not a copy of the
    /// item after all.
    async fn confirm(&self, _item: &Item, found: Found) -> Result<Option<Found>, WriteError> {
        Ok(Some(found))
    }

    /// Reads back the copy of `item` the ledger recorded at `location` in
    /// the mailbox (`verify`): where it is now and what its bytes hash to.
    async fn read_back(
        &self,
        _mailbox: &Mailbox,
        _location: &str,
        _item: &ItemId,
    ) -> Result<ReadBack, WriteError> {
        Err(WriteError::Target(format!(
            "{} cannot read copies back",
            self.describe()
        )))
    }

    /// Writes one copy, as [`MailboxWriter::write`], with the digest a
    /// manifest records for it when that is not the SHA-256 of the copy's
    /// bytes: a target that does not keep the message's bytes (Graph keeps
    /// properties and attachments) returns the digest its
    /// [`MailboxWriter::read_back`] computes from what it reads. `None`:
    /// the bytes' SHA-256.
    async fn write_with_digest(
        &self,
        mailbox: &Mailbox,
        copy: &Copy<'_>,
    ) -> Result<(Written, Option<String>), WriteError> {
        self.write(mailbox, copy)
            .await
            .map(|written| (written, None))
    }

    /// Copies `verify` reads back at once from this target.
    fn read_parallelism(&self) -> usize {
        4
    }
}
