//! The lines of a manifest, one JSON object each, told apart by `type`.

use serde::{Deserialize, Serialize};

/// One line of a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    Begin(Begin),
    Copy(CopyLine),
    Item(ItemLine),
    End(End),
}

/// The first line: which chain, which run, and the hash of the manifest
/// before this one ([`super::GENESIS`] for the first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Begin {
    pub format: u32,
    pub connector: String,
    pub seq: u64,
    pub prev: String,
    /// `sync`, `receive` or `import`.
    pub kind: String,
    /// The run's id in the ledger, when it has one.
    #[serde(default)]
    pub run_id: Option<i64>,
    pub started_at: String,
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
    /// Copies of this connector the ledger held when the chain began
    /// (recorded by a version without manifests); first manifest only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_copies: Option<u64>,
}

/// A copy recorded in the ledger: what its row must say, and the SHA-256
/// of the bytes handed to the target (`null` for a copy found on the target
/// after a crash, whose bytes this run did not have).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CopyLine {
    pub item: String,
    pub mailbox: String,
    pub location: String,
    pub bytes: u64,
    pub sha256: Option<String>,
}

/// An item state recorded in the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemLine {
    pub item: String,
    pub state: String,
}

/// The last line: how the run ended, its counts, and how many copy and
/// item lines the manifest holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct End {
    pub finished_at: String,
    /// `ok`, `incomplete`, `failed`, or `crashed` (sealed by the next run).
    pub outcome: String,
    pub copies: u64,
    pub items: u64,
    #[serde(default)]
    pub counts: serde_json::Value,
}
