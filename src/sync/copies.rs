//! Writing an item's pending copies. A target that writes later copies
//! from the first (Maildir links them) gets them one mailbox after
//! another; one whose mailboxes are independent (Graph) gets them all at
//! once, so an item waiting for a busy mailbox does not hold its copies
//! back from the others, which would leave those mailboxes idle.

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use super::{Run, SyncError};
use crate::content::Content;
use crate::custody;
use crate::faultpoint;
use crate::mailbox::{Copy, WriteError, Written};
use crate::telemessage::Item;
use crate::types::Mailbox;

impl Run<'_> {
    /// Writes each pending copy, recording each as it is written; returns
    /// the first failure's reason.
    pub(super) async fn write_copies(
        &self,
        item: &Item,
        content: &Content,
        pending: &[Mailbox],
    ) -> Result<Option<String>, SyncError> {
        let link = self.recall_link(item, content).await;
        let copy = Copy {
            item,
            connector: &self.plan.connector,
            content,
            in_reply_to: link.as_deref(),
        };
        let sha256 = match &self.manifest {
            Some(_) => match custody::copy_sha256(&copy).await {
                Ok(hash) => Some(hash),
                Err(e) => {
                    let reason = format!("cannot read the downloaded content: {e}");
                    self.report().copy_failed(item, None, &reason);
                    return Ok(Some(reason));
                }
            },
            None => None,
        };
        let writer = &self.engine.writer;
        let sha256 = sha256.as_deref();
        let mut failure = None;
        if writer.writes_mailboxes_independently() {
            let copy = &copy;
            let mut writes: FuturesUnordered<_> = pending
                .iter()
                .map(|mailbox| async move {
                    let (result, own) = match writer.write_with_digest(mailbox, copy).await {
                        Ok((written, own)) => (Ok(written), own),
                        Err(e) => (Err(e), None),
                    };
                    let digest = manifest_digest(&result, own, sha256);
                    (mailbox, result, digest)
                })
                .collect();
            while let Some((mailbox, result, digest)) = writes.next().await {
                self.settle_copy(item, mailbox, result, digest, &mut failure)?;
            }
            return Ok(failure);
        }
        let mut earlier: Option<Written> = None;
        for mailbox in pending {
            let result = match &earlier {
                Some(e) => writer.write_again(mailbox, &copy, e).await,
                None => writer.write(mailbox, &copy).await,
            };
            let digest = manifest_digest(&result, None, sha256);
            if let Some(written) = self.settle_copy(item, mailbox, result, digest, &mut failure)? {
                earlier.get_or_insert(written);
            }
        }
        Ok(failure)
    }

    /// Records a written copy with its manifest digest, or counts a failed
    /// one (keeping the first reason in `failure`); returns the copy
    /// written.
    fn settle_copy(
        &self,
        item: &Item,
        mailbox: &Mailbox,
        result: Result<Written, WriteError>,
        digest: Option<String>,
        failure: &mut Option<String>,
    ) -> Result<Option<Written>, SyncError> {
        match result {
            Ok(written) => {
                faultpoint::hit(faultpoint::BEFORE_LEDGER_COMMIT);
                self.record_copy(item, mailbox, &written, digest.as_deref())?;
                self.report().written(mailbox, written.bytes);
                Ok(Some(written))
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::warn!("item {} into {mailbox}: {reason}", item.id);
                self.report().copy_failed(item, Some(mailbox), &reason);
                failure.get_or_insert(reason);
                Ok(None)
            }
        }
    }
}

/// What the manifest keeps for a written copy: the target's own digest
/// where it does not keep the bytes (Graph), else the bytes' SHA-256;
/// nothing without a manifest.
fn manifest_digest(
    result: &Result<Written, WriteError>,
    own: Option<String>,
    sha256: Option<&str>,
) -> Option<String> {
    match (result, sha256) {
        (Ok(_), Some(sha256)) => Some(own.unwrap_or_else(|| sha256.to_owned())),
        _ => None,
    }
}
