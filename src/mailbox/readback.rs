//! Reading a recorded copy back (`verify`): where it is now, and the
//! SHA-256 of its bytes, computed as they stream past (a copy is never
//! held whole in memory).

use std::io::Read;

use sha2::{Digest, Sha256};

/// What a target holds where the ledger recorded a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadBack {
    /// In the archive folder, at `location` (a new name when only its
    /// flags changed), with these bytes.
    Found {
        sha256: String,
        bytes: u64,
        location: String,
    },
    /// No longer in the archive folder but in another folder of the same
    /// mailbox (a user moved it).
    Moved { folder: String, location: String },
    /// Nowhere in the mailbox.
    Gone,
}

/// The SHA-256 (hex) and length of everything a reader yields.
pub fn hash_reader(mut reader: impl Read) -> std::io::Result<(String, u64)> {
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hash.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hash.finalize()), total))
}

/// The SHA-256 (hex) and length of bytes already in memory.
pub fn hash_bytes(bytes: &[u8]) -> (String, u64) {
    (hex::encode(Sha256::digest(bytes)), bytes.len() as u64)
}
