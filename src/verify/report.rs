//! What `verify` found, in the shape `verify --json` prints.

use serde::Serialize;

use crate::custody::Head;
use crate::custody::chain::{ChainProblem, ChainProblemKind};

/// Findings kept in full; beyond this only counted (a badly damaged
/// archive must not exhaust memory).
pub const FINDINGS_KEPT: usize = 10_000;

/// What kind of thing does not check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    ManifestMissing,
    ManifestAltered,
    HeadMissing,
    HeadUnknown,
    /// A ledger row says something other than the manifests recorded.
    LedgerRowEdited,
    /// A row the manifests recorded is not in the ledger.
    LedgerRowDeleted,
    /// A ledger row no manifest recorded (added, or edited beyond recognition).
    LedgerRowUnrecorded,
    /// A run of the ledger that wrote copies has no manifest.
    RunWithoutManifest,
    /// TeleMessage holds an item the ledger never saw.
    ItemMissing,
    /// An archived item lacks a copy in a mailbox it belongs in.
    ItemIncomplete,
    CopyGone,
    CopyAltered,
    CopyMoved,
    /// A recalled item whose original is not archived.
    RecallOriginalMissing,
    /// A copy or item that could not be checked (a read or lookup failed).
    Unchecked,
}

impl FindingKind {
    /// Whether the finding means the check could not be made, rather than
    /// that something does not check.
    pub fn is_unchecked(self) -> bool {
        matches!(self, FindingKind::Unchecked)
    }
}

impl From<ChainProblemKind> for FindingKind {
    fn from(k: ChainProblemKind) -> Self {
        match k {
            ChainProblemKind::ManifestMissing => FindingKind::ManifestMissing,
            ChainProblemKind::ManifestAltered => FindingKind::ManifestAltered,
            ChainProblemKind::HeadMissing => FindingKind::HeadMissing,
            ChainProblemKind::HeadUnknown => FindingKind::HeadUnknown,
        }
    }
}

/// One thing that does not check, named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    pub detail: String,
}

impl Finding {
    pub fn new(kind: FindingKind, detail: impl Into<String>) -> Finding {
        Finding {
            kind,
            item: None,
            mailbox: None,
            manifest: None,
            detail: detail.into(),
        }
    }

    pub fn item(mut self, item: impl Into<String>) -> Finding {
        self.item = Some(item.into());
        self
    }

    pub fn mailbox(mut self, mailbox: impl Into<String>) -> Finding {
        self.mailbox = Some(mailbox.into());
        self
    }
}

impl From<ChainProblem> for Finding {
    fn from(p: ChainProblem) -> Self {
        Finding {
            kind: p.kind.into(),
            item: None,
            mailbox: None,
            manifest: p.manifest,
            detail: p.detail,
        }
    }
}

/// The chain of manifests.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChainFigures {
    pub manifests: u64,
    pub head: Option<Head>,
    /// Copies the ledger held before the chain began (older versions kept
    /// no manifests): not covered by the ledger or integrity checks.
    pub copies_before_chain: u64,
    /// Copies a crashed run's manifest names but whose ledger record was
    /// lost with the run; the next sync finds and records them.
    pub unrecorded_after_crash: u64,
}

/// The ledger compared with the manifests.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LedgerFigures {
    pub copies: u64,
    pub items: u64,
    pub runs: u64,
}

/// Every item TeleMessage lists in the window, accounted for.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Completeness {
    pub listed: u64,
    pub archived: u64,
    pub incomplete: u64,
    pub unmapped: u64,
    pub failed: u64,
    pub gone: u64,
    pub missing: u64,
    pub recalls: u64,
    pub recalls_without_original: u64,
}

/// Copies read back from the target.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Integrity {
    /// Copies the check covered (all in scope, or the sample).
    pub checked: u64,
    pub intact: u64,
    pub altered: u64,
    pub gone: u64,
    pub moved: u64,
    pub unreadable: u64,
    /// Intact copies whose hash was never known (found after a crash):
    /// checked by size only.
    pub size_only: u64,
    pub bytes_read: u64,
}

/// How a verify ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Everything checked.
    Ok,
    /// Something does not check (exit 3).
    Problems,
    /// Something could not be checked (exit 1).
    Unchecked,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub connector: String,
    pub started_at: String,
    pub duration_ms: u64,
    /// The window of items covered; `null` for every copy recorded.
    pub since: Option<String>,
    pub until: Option<String>,
    pub sample: Option<u64>,
    pub outcome: Outcome,
    pub chain: ChainFigures,
    pub ledger: LedgerFigures,
    /// `null` for a connector with no archive API to list.
    pub completeness: Option<Completeness>,
    pub integrity: Integrity,
    /// Findings by kind.
    pub counts: std::collections::BTreeMap<String, u64>,
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    pub fn new(connector: &str, started_at: String) -> VerifyReport {
        VerifyReport {
            connector: connector.to_owned(),
            started_at,
            duration_ms: 0,
            since: None,
            until: None,
            sample: None,
            outcome: Outcome::Ok,
            chain: ChainFigures::default(),
            ledger: LedgerFigures::default(),
            completeness: None,
            integrity: Integrity::default(),
            counts: Default::default(),
            findings: Vec::new(),
        }
    }

    /// Adds a finding (kept in full up to [`FINDINGS_KEPT`], counted always).
    pub fn add(&mut self, finding: Finding) {
        let key = serde_json::to_value(finding.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        *self.counts.entry(key).or_default() += 1;
        if finding.kind.is_unchecked() {
            if self.outcome == Outcome::Ok {
                self.outcome = Outcome::Unchecked;
            }
        } else {
            self.outcome = Outcome::Problems;
        }
        if self.findings.len() < FINDINGS_KEPT {
            self.findings.push(finding);
        }
    }
}
