//! Integrity: every copy the manifests recorded (or a random sample) read
//! back from the target and compared with the SHA-256 of the bytes that
//! were written. Reads run in parallel within the target's limit, a page
//! of copies at a time, so memory does not grow with the archive.

use futures_util::StreamExt;

use super::VerifyError;
use super::audit::{Audit, ExpectedCopy, Scope};
use super::report::{Finding, FindingKind, VerifyReport};
use crate::mailbox::{MailboxWriter, ReadBack, WriteError};
use crate::sync::Progress;
use crate::types::{ItemId, Mailbox};

/// Copies fetched from the scratch database at once.
const PAGE: u64 = 2000;

/// Reads back the copies in scope and adds a finding for each that is
/// gone, altered, moved or unreadable.
pub async fn check(
    audit: &Audit,
    writer: &dyn MailboxWriter,
    scope: Scope,
    sample: Option<u64>,
    progress: Option<&dyn Progress>,
    report: &mut VerifyReport,
) -> Result<(), VerifyError> {
    let in_scope = audit.copies_in_scope(scope)?;
    let total = sample.map_or(in_scope, |n| n.min(in_scope));
    if let Some(p) = progress {
        p.listed(total, 0);
    }
    let parallel = writer.read_parallelism().max(1);
    let mut after = 0;
    loop {
        let page = match sample {
            Some(n) if after == 0 => audit.copies(scope, 0, n, true)?,
            Some(_) => Vec::new(),
            None => audit.copies(scope, after, PAGE, false)?,
        };
        let Some(last) = page.last() else {
            break;
        };
        after = last.id.max(1);
        let mut reads = futures_util::stream::iter(page)
            .map(|copy| async move {
                let read = read_one(writer, &copy).await;
                (copy, read)
            })
            .buffer_unordered(parallel);
        while let Some((copy, read)) = reads.next().await {
            if let Some(p) = progress {
                p.item_done(copy.bytes);
            }
            judge(&copy, read, report);
        }
    }
    Ok(())
}

async fn read_one(writer: &dyn MailboxWriter, copy: &ExpectedCopy) -> Result<ReadBack, WriteError> {
    let mailbox = Mailbox::parse(&copy.mailbox)
        .map_err(|e| WriteError::Copy(format!("the recorded mailbox is not valid: {e}")))?;
    let item = ItemId::parse(&copy.item)
        .map_err(|e| WriteError::Copy(format!("the recorded item id is not valid: {e}")))?;
    writer.read_back(&mailbox, &copy.location, &item).await
}

/// Compares what was read back with what was recorded.
fn judge(copy: &ExpectedCopy, read: Result<ReadBack, WriteError>, report: &mut VerifyReport) {
    let integrity = &mut report.integrity;
    integrity.checked += 1;
    let finding = match read {
        Ok(ReadBack::Found {
            sha256,
            bytes,
            location,
        }) => {
            integrity.bytes_read += bytes;
            let same = match &copy.sha256 {
                Some(recorded) => *recorded == sha256,
                None => bytes == copy.bytes,
            };
            if same {
                integrity.intact += 1;
                if copy.sha256.is_none() {
                    integrity.size_only += 1;
                }
                return;
            }
            integrity.altered += 1;
            Finding::new(
                FindingKind::CopyAltered,
                format!(
                    "{location}: {bytes} bytes with SHA-256 {sha256}; written: {} bytes with SHA-256 {}",
                    copy.bytes,
                    copy.sha256.as_deref().unwrap_or("unknown")
                ),
            )
        }
        Ok(ReadBack::Moved { folder, location }) => {
            integrity.moved += 1;
            Finding::new(
                FindingKind::CopyMoved,
                format!("moved out of the archive folder into {folder:?} ({location})"),
            )
        }
        Ok(ReadBack::Gone) => {
            integrity.gone += 1;
            Finding::new(
                FindingKind::CopyGone,
                format!("no longer in the mailbox (written at {})", copy.location),
            )
        }
        Err(e) => {
            integrity.unreadable += 1;
            Finding::new(FindingKind::Unchecked, format!("cannot read it back: {e}"))
        }
    };
    report.add(finding.item(&copy.item).mailbox(&copy.mailbox));
}
