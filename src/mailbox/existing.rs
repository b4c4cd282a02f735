//! The copies an archive folder already holds, found in one pass over the
//! folder, so a run whose ledger does not know them (lost, restored from an
//! older backup, a second home) adopts them instead of writing them again.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::{CONNECTOR_HEADER, ITEM_ID_HEADER, Written};
use crate::types::ItemId;

/// One copy found in a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub written: Written,
    /// The connector named in the copy's trace header, when the pass read it.
    pub connector: Option<String>,
}

/// How a folder's copies are keyed: by item id (read from the trace
/// header) or by the item tag in a Maildir file name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CopyKey {
    #[default]
    ItemId,
    Tag,
}

/// The copies in one archive folder, by item.
#[derive(Debug, Default)]
pub struct FolderCopies {
    key: CopyKey,
    copies: HashMap<String, Found>,
}

impl FolderCopies {
    pub fn new(key: CopyKey) -> FolderCopies {
        FolderCopies {
            key,
            copies: HashMap::new(),
        }
    }

    /// Adds a copy under its key (an item id, or a Maildir item tag); the
    /// first found for a key is kept (the lowest UID of an IMAP folder).
    pub fn insert(&mut self, key: String, found: Found) {
        self.copies.entry(key).or_insert(found);
    }

    /// Adds the copies another pass over the same mailbox found (the IMAP
    /// side of a Graph mailbox), keeping the ones already here.
    pub fn absorb(&mut self, other: FolderCopies) {
        for (key, found) in other.copies {
            self.insert(key, found);
        }
    }

    /// The copy of `item`, if the folder holds one.
    pub fn get(&self, item: &ItemId) -> Option<&Found> {
        match self.key {
            CopyKey::ItemId => self.copies.get(item.as_str()),
            CopyKey::Tag => self.copies.get(&item.tag()),
        }
    }

    pub fn len(&self) -> usize {
        self.copies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.copies.is_empty()
    }

    /// Every copy with its key, for `ledger rebuild` and `ledger check`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Found)> {
        self.copies.iter().map(|(k, f)| (k.as_str(), f))
    }

    pub fn key(&self) -> CopyKey {
        self.key
    }
}

/// The two trace headers of a message's header block: (item id, connector).
/// Header names compare case-insensitively, values exactly (trimmed).
pub fn trace_of(header: &[u8]) -> (Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(header);
    let mut item = None;
    let mut connector = None;
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.trim().eq_ignore_ascii_case(ITEM_ID_HEADER) {
            item.get_or_insert_with(|| value.to_owned());
        } else if name.trim().eq_ignore_ascii_case(CONNECTOR_HEADER) {
            connector.get_or_insert_with(|| value.to_owned());
        }
    }
    (item, connector)
}

/// A digest of a mark's parts, short enough to store per mailbox.
pub fn mark_of(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_headers_are_read_exactly_from_the_header_block_only() {
        let msg = b"X-WeChat-Archiver-Item-Id: itm_A\r\nx-wechat-archiver-connector:  prod \r\nSubject: s\r\n\r\nX-WeChat-Archiver-Connector: body\r\n";
        assert_eq!(trace_of(msg), (Some("itm_A".into()), Some("prod".into())));
        assert_eq!(trace_of(b"Subject: s\r\n\r\n"), (None, None));
    }

    #[test]
    fn maildir_copies_are_found_by_their_items_tag() {
        let id = ItemId::parse("itm_A").unwrap();
        let mut by_tag = FolderCopies::new(CopyKey::Tag);
        let found = Found {
            written: Written {
                location: "x".into(),
                bytes: 1,
            },
            connector: None,
        };
        by_tag.insert(id.tag(), found.clone());
        assert_eq!(by_tag.get(&id), Some(&found));
        assert_eq!(by_tag.get(&ItemId::parse("itm_B").unwrap()), None);
    }
}
