//! `ledger check`: the copies the target holds against the copies the
//! ledger records, in every mailbox the ledger has copies of the connector
//! in; each archive folder is listed once (the pass adoption uses).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures_util::StreamExt;
use serde::Serialize;

use super::Progress;
use crate::ledger::{Ledger, LedgerError};
use crate::mailbox::{CopyKey, FolderCopies, MailboxWriter};
use crate::types::{ItemId, Mailbox};

/// Archive folders listed at once.
const FOLDERS_AT_ONCE: usize = 8;

/// One copy on one side only.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OneSided {
    pub mailbox: String,
    /// The item id, where the target's pass reads it (IMAP, Graph, and
    /// every ledger copy); a Maildir copy is known by its file name.
    pub item: Option<String>,
    pub location: String,
    /// The connector named in the copy's trace header, when read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written_by: Option<String>,
}

/// A mailbox whose folder could not be listed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Unchecked {
    pub mailbox: String,
    pub reason: String,
}

/// What `ledger check` found.
#[derive(Debug, Clone, Serialize, Default)]
pub struct CheckReport {
    pub connector: String,
    pub mailboxes: u64,
    pub target_copies: u64,
    pub ledger_copies: u64,
    /// Copies the target holds and the ledger lacks (`ledger rebuild` or
    /// the next sync adopts those of items in its window).
    pub target_only: Vec<OneSided>,
    /// Copies the ledger records and the target no longer holds.
    pub ledger_only: Vec<OneSided>,
    pub unchecked: Vec<Unchecked>,
}

impl CheckReport {
    /// Whether both sides agree in every mailbox that could be listed.
    pub fn agrees(&self) -> bool {
        self.target_only.is_empty() && self.ledger_only.is_empty()
    }
}

/// A mailbox's copies in the ledger: location by item id.
type LedgerCopies = BTreeMap<String, String>;

/// Compares the connector's copies in the ledger with the target's.
pub async fn check(
    ledger: &Ledger,
    writer: &dyn MailboxWriter,
    connector: &str,
    progress: Option<Arc<dyn Progress>>,
) -> Result<CheckReport, LedgerError> {
    let mut by_mailbox: BTreeMap<String, LedgerCopies> = BTreeMap::new();
    for (mailbox, item, location) in ledger.copies_by_mailbox(connector)? {
        by_mailbox
            .entry(mailbox)
            .or_default()
            .insert(item, location);
    }
    if let Some(p) = &progress {
        p.listed(by_mailbox.len() as u64, 0);
    }
    let mut report = CheckReport {
        connector: connector.to_owned(),
        ..CheckReport::default()
    };
    let listed: Vec<_> = futures_util::stream::iter(by_mailbox)
        .map(|(key, copies)| async {
            let folder = match Mailbox::parse(&key) {
                Ok(mailbox) => writer
                    .existing_copies(&mailbox)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(format!("not a mailbox address: {e}")),
            };
            if let Some(p) = &progress {
                p.item_done(0);
            }
            (key, copies, folder)
        })
        .buffer_unordered(FOLDERS_AT_ONCE)
        .collect()
        .await;
    for (mailbox, copies, folder) in listed {
        report.mailboxes += 1;
        report.ledger_copies += copies.len() as u64;
        match folder {
            Ok(folder) => compare(&mut report, &mailbox, &copies, &folder),
            Err(reason) => report.unchecked.push(Unchecked { mailbox, reason }),
        }
    }
    for list in [&mut report.target_only, &mut report.ledger_only] {
        list.sort_by(|a, b| {
            (&a.mailbox, &a.item, &a.location).cmp(&(&b.mailbox, &b.item, &b.location))
        });
    }
    report.unchecked.sort_by(|a, b| a.mailbox.cmp(&b.mailbox));
    Ok(report)
}

/// One mailbox: the ledger's copies against its folder's.
fn compare(report: &mut CheckReport, mailbox: &str, ledger: &LedgerCopies, folder: &FolderCopies) {
    report.target_copies += folder.len() as u64;
    let key_of = |item: &str| match folder.key() {
        CopyKey::ItemId => Some(item.to_owned()),
        CopyKey::Tag => ItemId::parse(item).ok().map(|id| id.tag()),
    };
    let known: HashSet<String> = ledger.keys().filter_map(|i| key_of(i)).collect();
    for (key, found) in folder.iter() {
        if !known.contains(key) {
            report.target_only.push(OneSided {
                mailbox: mailbox.to_owned(),
                item: (folder.key() == CopyKey::ItemId).then(|| key.to_owned()),
                location: found.written.location.clone(),
                written_by: found.connector.clone(),
            });
        }
    }
    for (item, location) in ledger {
        let held = ItemId::parse(item)
            .ok()
            .is_some_and(|id| folder.get(&id).is_some());
        if !held {
            report.ledger_only.push(OneSided {
                mailbox: mailbox.to_owned(),
                item: Some(item.clone()),
                location: location.clone(),
                written_by: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::{Found, Written};

    fn found(location: &str) -> Found {
        Found {
            written: Written {
                location: location.into(),
                bytes: 1,
            },
            connector: None,
        }
    }

    #[test]
    fn each_side_names_what_the_other_lacks_whatever_the_folders_key() {
        let ledger: LedgerCopies = [("itm_A", "a"), ("itm_B", "b")]
            .into_iter()
            .map(|(i, l)| (i.to_owned(), l.to_owned()))
            .collect();
        let tag = |i: &str| ItemId::parse(i).unwrap().tag();
        for key in [CopyKey::ItemId, CopyKey::Tag] {
            let mut folder = FolderCopies::new(key);
            let k = |i: &str| {
                if key == CopyKey::Tag {
                    tag(i)
                } else {
                    i.to_owned()
                }
            };
            folder.insert(k("itm_A"), found("a"));
            folder.insert(k("itm_C"), found("c"));
            let mut report = CheckReport::default();
            compare(&mut report, "li@contoso.com", &ledger, &folder);
            assert_eq!(report.target_copies, 2);
            assert_eq!(report.target_only.len(), 1, "{key:?}");
            assert_eq!(report.target_only[0].location, "c");
            assert_eq!(
                report.target_only[0].item.as_deref(),
                (key == CopyKey::ItemId).then_some("itm_C")
            );
            assert_eq!(report.ledger_only.len(), 1);
            assert_eq!(report.ledger_only[0].item.as_deref(), Some("itm_B"));
            assert!(!report.agrees());
        }
    }
}
