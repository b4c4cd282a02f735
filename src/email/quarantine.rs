//! Messages that cannot be parsed are accepted (so the MTA does not bounce
//! them back to TeleMessage) and kept whole here, under the home, with why:
//! nothing is dropped. `status` counts them and says what to do.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A connector's quarantine directory.
#[derive(Debug, Clone)]
pub struct Quarantine {
    dir: PathBuf,
}

impl Quarantine {
    /// `HOME/quarantine/CONNECTOR/`.
    pub fn new(home: &Path, connector: &str) -> Quarantine {
        Quarantine {
            dir: home.join("quarantine").join(connector),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keeps a message durably (file and directory fsynced) as
    /// `<sha256>.eml`, with the reason in `<sha256>.txt`; the same bytes
    /// twice are kept once. Returns the message's path.
    pub fn keep(&self, raw: &[u8], reason: &str) -> io::Result<PathBuf> {
        fs::create_dir_all(&self.dir)?;
        let name = hex::encode(Sha256::digest(raw));
        let path = self.dir.join(format!("{name}.eml"));
        if !path.exists() {
            write_durably(&self.dir, &path, raw)?;
        }
        let note = format!(
            "{}: {reason}\n",
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        write_durably(
            &self.dir,
            &self.dir.join(format!("{name}.txt")),
            note.as_bytes(),
        )?;
        Ok(path)
    }

    /// How many messages are kept.
    pub fn count(&self) -> u64 {
        fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .count() as u64
            })
            .unwrap_or(0)
    }
}

fn write_durably(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_message_is_counted_once() {
        let home = tempfile::tempdir().unwrap();
        let q = Quarantine::new(home.path(), "tm");
        assert_eq!(q.count(), 0);
        let path = q.keep(b"\x00garbage", "not a message").unwrap();
        q.keep(b"\x00garbage", "not a message").unwrap();
        assert_eq!(q.count(), 1);
        assert_eq!(fs::read(path).unwrap(), b"\x00garbage");
    }
}
