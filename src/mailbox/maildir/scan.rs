//! Finding the copies a Maildir folder already holds, for a ledger that
//! does not know them: one listing of `cur/` and `new/` per folder (the
//! item tag is in each of our file names), and a read of the trace
//! headers of each copy before it is adopted.

use std::fs;
use std::io::Read;
use std::path::Path;

use super::{MaildirWriter, location, tree, tree_error};
use crate::mailbox::existing::{self, CopyKey, FolderCopies, Found};
use crate::mailbox::{WriteError, Written};
use crate::telemessage::Item;
use crate::types::Mailbox;

/// The most of a copy read to find its trace headers (they come first).
const HEAD_BYTES: u64 = 8 * 1024;

impl MaildirWriter {
    /// The times, sizes and inodes of the folder's `cur/` and `new/`: a
    /// delivery (a rename or link into either) changes the time.
    pub(super) fn mark(&self, mailbox: &Mailbox) -> String {
        let folder = self.folder_path(mailbox);
        let parts: Vec<String> = ["cur", "new"]
            .iter()
            .map(|sub| dir_stamp(&folder.join(sub)))
            .collect();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        existing::mark_of(&parts)
    }

    /// Every copy of ours in the folder, by item tag, from one listing.
    /// A link planted in the folder's path is refused, as for a write: a
    /// copy outside the archive is never taken for an archived one.
    pub(super) fn copies_in(&self, mailbox: &Mailbox) -> Result<FolderCopies, WriteError> {
        let folder = self.folder_path(mailbox);
        let dir_name = mailbox.dir_name();
        for sub in ["cur", "new", "tmp"] {
            tree::check_dirs(&self.root, &self.components(&dir_name, sub)).map_err(tree_error)?;
        }
        let mut copies = FolderCopies::new(CopyKey::Tag);
        for (tag, relative) in self.scan(&folder) {
            let bytes = size_in_name(&relative).unwrap_or(0);
            let written = Written {
                location: location(mailbox, &self.folder_dir, &relative),
                bytes,
            };
            let found = Found {
                written,
                connector: None,
            };
            copies.insert(tag, found);
        }
        Ok(copies)
    }

    /// Reads the copy's trace headers: it is adopted only if it names the
    /// item exactly. Its directory is fsynced before the ledger records
    /// it, as for a copy written by this run.
    pub(super) fn confirm_copy(
        &self,
        item: &Item,
        found: Found,
    ) -> Result<Option<Found>, WriteError> {
        let path = self.root.join(&found.written.location);
        let head = read_head(&path).map_err(|e| {
            WriteError::Copy(format!("cannot read the copy {}: {e}", path.display()))
        })?;
        let (id, connector) = existing::trace_of(&head.0);
        if id.as_deref() != Some(item.id.as_str()) {
            return Ok(None);
        }
        if let Some(dir) = path.parent() {
            self.unsynced(dir.to_path_buf(), None);
        }
        Ok(Some(Found {
            written: Written {
                location: found.written.location,
                bytes: head.1,
            },
            connector,
        }))
    }
}

/// A directory's identity and time, or `absent`.
fn dir_stamp(dir: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    match fs::metadata(dir) {
        Ok(m) => format!("{}:{}.{}:{}", m.ino(), m.mtime(), m.mtime_nsec(), m.size()),
        Err(_) => "absent".to_owned(),
    }
}

/// The `,S=<size>` Dovecot and this tool put in a file name.
fn size_in_name(name: &str) -> Option<u64> {
    let after = name.split_once(",S=")?.1;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The first [`HEAD_BYTES`] of a regular file (never a link out of the
/// archive), and its size.
fn read_head(path: &Path) -> std::io::Result<(Vec<u8>, u64)> {
    let meta = fs::symlink_metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut head = Vec::new();
    fs::File::open(path)?
        .take(HEAD_BYTES)
        .read_to_end(&mut head)?;
    Ok((head, meta.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_read_from_file_names() {
        assert_eq!(
            size_in_name("cur/1.M1P2Q3R4_abc.host,S=1234:2,S"),
            Some(1234)
        );
        assert_eq!(size_in_name("cur/1.M1P2.host:2,S"), None);
    }
}
