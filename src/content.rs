//! A downloaded, verified item body. Small bodies stay in memory; large
//! ones are spooled to a file under the home so memory does not grow with
//! item size.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::io::AsyncRead;

/// Bodies up to this size are kept in memory.
pub const MEMORY_LIMIT: u64 = 1024 * 1024;

/// The verified content of one item.
#[derive(Debug)]
pub enum Content {
    Memory(Bytes),
    /// A spool file, removed when the value is dropped.
    Spooled { path: PathBuf, len: u64 },
}

impl Content {
    pub fn len(&self) -> u64 {
        match self {
            Content::Memory(b) => b.len() as u64,
            Content::Spooled { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Streams the content from the start.
    pub async fn reader(&self) -> std::io::Result<Box<dyn AsyncRead + Unpin + Send + '_>> {
        match self {
            Content::Memory(b) => Ok(Box::new(std::io::Cursor::new(b.as_ref()))),
            Content::Spooled { path, .. } => Ok(Box::new(tokio::fs::File::open(path).await?)),
        }
    }

    /// The whole content in memory; for writers that must parse it. Reads
    /// a spooled body from disk.
    pub async fn to_bytes(&self) -> std::io::Result<Bytes> {
        match self {
            Content::Memory(b) => Ok(b.clone()),
            Content::Spooled { path, .. } => Ok(Bytes::from(tokio::fs::read(path).await?)),
        }
    }

    /// The spool file, if the content lives on disk.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Content::Spooled { path, .. } => Some(path),
            Content::Memory(_) => None,
        }
    }
}

impl Drop for Content {
    fn drop(&mut self) {
        if let Content::Spooled { path, .. } = self {
            let _ = std::fs::remove_file(path);
        }
    }
}
