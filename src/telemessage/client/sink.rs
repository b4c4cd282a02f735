//! Where a download's bytes go: memory within a shared budget, or a spool
//! file, with a running SHA-256.

use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ClientError;
use crate::content::{Content, MEMORY_LIMIT};
use crate::telemessage::model::Item;

/// Where a download's bytes go while they arrive, with a running hash.
pub(super) struct Sink {
    hasher: Sha256,
    pub(super) received: u64,
    target: SinkTarget,
}

enum SinkTarget {
    Memory(BytesMut, Option<OwnedSemaphorePermit>),
    File {
        path: std::path::PathBuf,
        file: tokio::fs::File,
    },
}

impl Sink {
    pub(super) async fn new(
        item: &Item,
        spool_dir: &Path,
        memory: &MemoryBudget,
    ) -> Result<Sink, ClientError> {
        let reserved = (item.size <= MEMORY_LIMIT)
            .then(|| memory.try_reserve(item.size))
            .flatten();
        let target = if let Some(permit) = reserved {
            SinkTarget::Memory(BytesMut::with_capacity(item.size as usize), Some(permit))
        } else {
            let path = spool_dir.join(format!("{}-{}.part", item.id.tag(), rand::random::<u32>()));
            let spool_err = |source| ClientError::Spool {
                path: path.display().to_string(),
                source,
            };
            tokio::fs::create_dir_all(spool_dir)
                .await
                .map_err(spool_err)?;
            let file = tokio::fs::File::create(&path).await.map_err(spool_err)?;
            SinkTarget::File { path, file }
        };
        Ok(Sink {
            hasher: Sha256::new(),
            received: 0,
            target,
        })
    }

    pub(super) async fn write(&mut self, chunk: &Bytes) -> Result<(), ClientError> {
        self.hasher.update(chunk);
        self.received += chunk.len() as u64;
        match &mut self.target {
            SinkTarget::Memory(buf, _) => buf.extend_from_slice(chunk),
            SinkTarget::File { path, file } => {
                file.write_all(chunk)
                    .await
                    .map_err(|source| ClientError::Spool {
                        path: path.display().to_string(),
                        source,
                    })?
            }
        }
        Ok(())
    }

    pub(super) async fn reset(&mut self) -> Result<(), ClientError> {
        self.hasher = Sha256::new();
        self.received = 0;
        match &mut self.target {
            SinkTarget::Memory(buf, _) => buf.clear(),
            SinkTarget::File { path, file } => {
                let spool_err = |source| ClientError::Spool {
                    path: path.display().to_string(),
                    source,
                };
                file.set_len(0).await.map_err(spool_err)?;
                use tokio::io::AsyncSeekExt;
                file.seek(std::io::SeekFrom::Start(0))
                    .await
                    .map_err(spool_err)?;
            }
        }
        Ok(())
    }

    pub(super) fn verify(&self, item: &Item) -> Result<(), String> {
        if self.received != item.size {
            return Err(format!(
                "the content is {} bytes, the listing says {}",
                self.received, item.size
            ));
        }
        let digest = hex::encode(self.hasher.clone().finalize());
        if !digest.eq_ignore_ascii_case(&item.sha256) {
            return Err(format!(
                "the content's SHA-256 is {digest}, the listing says {}",
                item.sha256
            ));
        }
        Ok(())
    }

    pub(super) async fn finish(mut self) -> Result<Content, ClientError> {
        let target = std::mem::replace(&mut self.target, SinkTarget::Memory(BytesMut::new(), None));
        match target {
            SinkTarget::Memory(buf, permit) => Ok(Content::Memory(Bytes::from_owner(Budgeted {
                bytes: buf.freeze(),
                _permit: permit,
            }))),
            SinkTarget::File { path, mut file } => {
                let spool_err = |source| ClientError::Spool {
                    path: path.display().to_string(),
                    source,
                };
                file.flush().await.map_err(spool_err)?;
                drop(file);
                Ok(Content::Spooled {
                    path,
                    len: self.received,
                })
            }
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let SinkTarget::File { path, .. } = &self.target {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Memory for downloaded bodies, in KiB permits: the engine may hold many
/// items in flight without their bodies outgrowing the budget.
pub(super) struct MemoryBudget(Arc<Semaphore>);

impl MemoryBudget {
    pub(super) fn new(bytes: u64) -> MemoryBudget {
        let kib = (bytes / 1024).min(u64::from(u32::MAX >> 3)) as usize;
        MemoryBudget(Arc::new(Semaphore::new(kib)))
    }

    /// Room for a body of `bytes`, if the budget has it now.
    fn try_reserve(&self, bytes: u64) -> Option<OwnedSemaphorePermit> {
        let kib = u32::try_from(bytes.div_ceil(1024).max(1)).ok()?;
        Arc::clone(&self.0).try_acquire_many_owned(kib).ok()
    }
}

/// A body in memory with its share of the budget, returned when the last
/// reference to the bytes is dropped.
struct Budgeted {
    bytes: Bytes,
    _permit: Option<OwnedSemaphorePermit>,
}

impl AsRef<[u8]> for Budgeted {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}
