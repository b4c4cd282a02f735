//! The SHA-256 of a copy's bytes: the trace headers, then the content.

use sha2::{Digest, Sha256};

use crate::content::Content;
use crate::mailbox::Copy;

/// The SHA-256, hex, of exactly the bytes [`Copy::reader`] yields: what
/// `sha256sum` prints for the copy's Maildir file. A spooled body is read
/// off the runtime's threads.
pub async fn copy_sha256(copy: &Copy<'_>) -> std::io::Result<String> {
    let mut hash = Sha256::new();
    hash.update(copy.trace_headers());
    match copy.content {
        Content::Memory(bytes) => hash.update(bytes),
        Content::Spooled { path, .. } => {
            let path = path.clone();
            hash = tokio::task::spawn_blocking(move || {
                let mut file = std::fs::File::open(path)?;
                std::io::copy(&mut file, &mut hash)?;
                Ok::<_, std::io::Error>(hash)
            })
            .await
            .map_err(std::io::Error::other)??;
        }
    }
    Ok(hex::encode(hash.finalize()))
}
