//! Chain of custody: every run that writes copies (a `sync`, a `receive`
//! session, an `import`) appends one manifest per connector, a file of JSON
//! lines under `HOME/manifests/NAME/` naming each copy it recorded (mailbox,
//! location, size, SHA-256 of its bytes), each item state it recorded, and
//! the run's counts. Each manifest's first line carries the SHA-256 of the
//! manifest before it, so the files form a hash chain an auditor can check
//! with `sha256sum` alone; `HEAD` names the newest one and its hash, which
//! `sync.log` and `status` print so that an admin can keep it elsewhere.
//!
//! The manifests record what the ledger should say: `verify` replays them
//! and reports any ledger row that differs, and any manifest edited,
//! replaced or deleted.
//!
//! The caller holds the connector's lock while writing one.

pub mod chain;
mod digest;
mod format;
mod writer;

use std::path::{Path, PathBuf};

pub use digest::copy_sha256;
pub use format::{Begin, CopyLine, End, ItemLine, Line};
pub use writer::ManifestWriter;

/// The version of the manifest format, in each `begin` line.
pub const FORMAT: u32 = 1;

/// What the first manifest of a chain names as the one before it.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The file naming the newest manifest: `SEQ SHA256`.
pub const HEAD_FILE: &str = "HEAD";

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("the manifest {path} cannot be written: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("the manifests in {path} cannot be read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the manifest writer was used after an earlier failure: {0}")]
    Broken(String),
}

/// The newest manifest of a chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Head {
    pub seq: u64,
    pub sha256: String,
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", manifest_name(self.seq), self.sha256)
    }
}

/// The directory of a connector's manifests under the home.
pub fn dir(home: &Path, connector: &str) -> PathBuf {
    home.join("manifests").join(connector)
}

/// A manifest's file name: its sequence number, six digits or more.
pub fn manifest_name(seq: u64) -> String {
    format!("{seq:06}.jsonl")
}

/// The sequence number of a manifest file name, if it is one.
fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".jsonl")?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The head as `HEAD` records it, if the file exists and reads.
pub fn read_head(dir: &Path) -> Option<Head> {
    let text = std::fs::read_to_string(dir.join(HEAD_FILE)).ok()?;
    let (seq, sha256) = text.trim().split_once(' ')?;
    let valid = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
    let seq = seq.parse().ok()?;
    valid.then(|| Head {
        seq,
        sha256: sha256.to_owned(),
    })
}

/// The highest ledger run id the newest manifests name (the last few are
/// read, as an e-mail session's names none): a ledger that lost its rows
/// (deleted, an older backup) must not give a new run an id the chain
/// already holds, or `verify` would compare two runs as one.
pub fn last_run_id(dir: &Path) -> Option<i64> {
    use std::io::BufRead;
    let seqs = list(dir).ok()?;
    seqs.iter().rev().take(16).find_map(|seq| {
        let file = std::fs::File::open(dir.join(manifest_name(*seq))).ok()?;
        let mut first = String::new();
        std::io::BufReader::new(file).read_line(&mut first).ok()?;
        serde_json::from_str::<format::Begin>(&first).ok()?.run_id
    })
}

/// The sequence numbers of the manifest files present, ascending.
pub fn list(dir: &Path) -> Result<Vec<u64>, ManifestError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ManifestError::Read {
                path: dir.display().to_string(),
                source,
            });
        }
    };
    let mut seqs: Vec<u64> = entries
        .flatten()
        .filter_map(|e| parse_name(&e.file_name().to_string_lossy()))
        .collect();
    seqs.sort_unstable();
    Ok(seqs)
}

/// The SHA-256 of a file, hex: what `sha256sum` prints.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(hex::encode(hash.finalize()))
}

#[cfg(test)]
mod tests;
