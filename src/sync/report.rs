//! What a run did, in the shape `sync --json` prints.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::SyncPlan;
use crate::ledger::RunFigures;
use crate::telemessage::Item;
use crate::types::Mailbox;

/// Figures for one mailbox.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct MailboxFigures {
    pub written: u64,
    pub already_archived: u64,
    pub failed: u64,
    pub bytes_written: u64,
}

/// One copy (or a whole item, when `mailbox` is empty) that failed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CopyFailure {
    pub item_id: String,
    pub mailbox: Option<String>,
    pub reason: String,
}

/// A copy a dry run would write.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PlannedCopy {
    pub item_id: String,
    pub item_type: String,
    pub mailbox: String,
    pub size: u64,
}

/// The run's figures. `written` and `already_archived` count (item,
/// mailbox) copies; `unmapped` and `failed` count items.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub connector: String,
    pub since: String,
    pub until: String,
    pub dry_run: bool,
    pub listed: u64,
    pub written: u64,
    pub already_archived: u64,
    /// Of `already_archived`: copies found on the target that the ledger
    /// did not know, recorded instead of written again.
    pub adopted: u64,
    pub unmapped: u64,
    pub failed: u64,
    pub bytes_written: u64,
    pub duration_ms: u64,
    pub mailboxes: BTreeMap<String, MailboxFigures>,
    pub failures: Vec<CopyFailure>,
    pub unmapped_items: Vec<String>,
    /// Items whose type or platform this version does not know (archived anyway).
    pub unknown_values: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_write: Vec<PlannedCopy>,
    /// The connector's manifest chain after this run (see `custody`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_head: Option<crate::custody::Head>,
}

pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl SyncReport {
    pub fn new(plan: &SyncPlan) -> SyncReport {
        SyncReport {
            connector: plan.connector.clone(),
            since: time(plan.since),
            until: time(plan.until),
            dry_run: plan.dry_run,
            listed: 0,
            written: 0,
            already_archived: 0,
            adopted: 0,
            unmapped: 0,
            failed: 0,
            bytes_written: 0,
            duration_ms: 0,
            mailboxes: BTreeMap::new(),
            failures: Vec::new(),
            unmapped_items: Vec::new(),
            unknown_values: Vec::new(),
            would_write: Vec::new(),
            manifest_head: None,
        }
    }

    pub fn figures(&self) -> RunFigures {
        RunFigures {
            listed: self.listed,
            written: self.written,
            already_archived: self.already_archived,
            unmapped: self.unmapped,
            failed: self.failed,
            bytes_written: self.bytes_written,
        }
    }

    fn mailbox(&mut self, mailbox: &Mailbox) -> &mut MailboxFigures {
        self.mailboxes.entry(mailbox.key().to_owned()).or_default()
    }

    pub(super) fn written(&mut self, mailbox: &Mailbox, bytes: u64) {
        self.written += 1;
        self.bytes_written += bytes;
        let m = self.mailbox(mailbox);
        m.written += 1;
        m.bytes_written += bytes;
    }

    pub(super) fn already_archived(&mut self, mailbox: &Mailbox) {
        self.already_archived += 1;
        self.mailbox(mailbox).already_archived += 1;
    }

    pub(super) fn copy_failed(&mut self, item: &Item, mailbox: Option<&Mailbox>, reason: &str) {
        if let Some(m) = mailbox {
            self.mailbox(m).failed += 1;
        }
        self.failures.push(CopyFailure {
            item_id: item.id.to_string(),
            mailbox: mailbox.map(|m| m.key().to_owned()),
            reason: reason.to_owned(),
        });
    }

    pub(super) fn item_failed(&mut self) {
        self.failed += 1;
    }

    pub(super) fn unmapped_item(&mut self, item: &Item) {
        self.unmapped += 1;
        self.unmapped_items.push(item.id.to_string());
    }

    pub(super) fn note_unknown(&mut self, item: &Item) {
        self.unknown_values.push(format!(
            "{}: type {}, platform {}",
            item.id,
            item.kind.as_str(),
            item.platform.as_str()
        ));
    }

    pub(super) fn plan(&mut self, item: &Item, mailboxes: &[Mailbox]) {
        for mailbox in mailboxes {
            self.would_write.push(PlannedCopy {
                item_id: item.id.to_string(),
                item_type: item.kind.as_str().to_owned(),
                mailbox: mailbox.key().to_owned(),
                size: item.size,
            });
        }
    }
}
