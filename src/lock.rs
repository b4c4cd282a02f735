//! One `sync` per connector at a time: an OS file lock (released by the
//! kernel when the holder dies, so a killed run never blocks the next).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another sync of connector '{connector}' is running ({holder})")]
    Held { connector: String, holder: String },
    #[error("cannot open the lock file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Held for the life of a run; dropping it releases the lock.
#[derive(Debug)]
pub struct ConnectorLock {
    _file: File,
}

impl ConnectorLock {
    /// Takes the lock without waiting, or says who holds it.
    pub fn acquire(path: &Path, connector: &str) -> Result<ConnectorLock, LockError> {
        let io_err = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Held {
                    connector: connector.to_owned(),
                    holder: if holder.is_empty() {
                        "holder unknown".to_owned()
                    } else {
                        holder.to_owned()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
        }
        let stamp = format!(
            "pid {} on {}, started {}",
            std::process::id(),
            hostname(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        file.set_len(0).map_err(io_err)?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        file.write_all(stamp.as_bytes()).map_err(io_err)?;
        Ok(ConnectorLock { _file: file })
    }
}

impl ConnectorLock {
    /// Takes the lock, waiting up to `patience` for its holder to finish.
    pub fn acquire_waiting(
        path: &Path,
        connector: &str,
        patience: std::time::Duration,
    ) -> Result<ConnectorLock, LockError> {
        let deadline = std::time::Instant::now() + patience;
        loop {
            match ConnectorLock::acquire(path, connector) {
                Err(LockError::Held { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                other => return other,
            }
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "this host".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_and_named_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.lock");
        let first = ConnectorLock::acquire(&path, "c").unwrap();
        let err = ConnectorLock::acquire(&path, "c").unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id()))
        );
        drop(first);
        ConnectorLock::acquire(&path, "c").unwrap();
    }
}
