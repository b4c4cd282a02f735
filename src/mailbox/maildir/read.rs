//! Reading copies back from a Maildir tree (`verify`): by the file the
//! ledger recorded; else by the item's tag in the file names of the
//! mailbox's folders, which finds a copy whose flags changed (a new name in
//! the archive folder) or that a user moved to another folder.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{MaildirWriter, tag_of};
use crate::mailbox::WriteError;
use crate::mailbox::readback::{ReadBack, hash_reader};
use crate::types::{ItemId, Mailbox};

/// Per mailbox: item tag to where a copy of ours is (folder, path below
/// the mailbox's root). Built once per mailbox, when a copy is not where
/// the ledger recorded it.
pub(super) type IndexCache = Arc<Mutex<HashMap<String, Arc<MailboxIndex>>>>;

#[derive(Default)]
pub(super) struct MailboxIndex {
    by_tag: HashMap<String, (Option<String>, String)>,
}

/// What a blocking read needs, detached from the writer.
struct Reader {
    root: PathBuf,
    folder_dir: String,
    cache: IndexCache,
}

impl MaildirWriter {
    pub(super) async fn read_copy(
        &self,
        mailbox: &Mailbox,
        location: &str,
        item: &ItemId,
    ) -> Result<ReadBack, WriteError> {
        let reader = Reader {
            root: self.root.clone(),
            folder_dir: self.folder_dir.clone(),
            cache: Arc::clone(&self.read_index),
        };
        let (mailbox, location, tag) = (mailbox.clone(), location.to_owned(), item.tag());
        tokio::task::spawn_blocking(move || reader.read(&mailbox, &location, &tag))
            .await
            .map_err(|e| WriteError::Copy(format!("the read task failed: {e}")))?
    }
}

impl Reader {
    fn read(&self, mailbox: &Mailbox, location: &str, tag: &str) -> Result<ReadBack, WriteError> {
        self.check_location(mailbox, location)?;
        let path = self.root.join(location);
        if let Some((sha256, bytes)) = hash_file(&path)? {
            return Ok(ReadBack::Found {
                sha256,
                bytes,
                location: location.to_owned(),
            });
        }
        let index = self.index(mailbox);
        let dir = mailbox.dir_name();
        let Some((folder, relative)) = index.by_tag.get(tag) else {
            return Ok(ReadBack::Gone);
        };
        let location = format!("{dir}/{relative}");
        match folder {
            Some(folder) => Ok(ReadBack::Moved {
                folder: folder.clone(),
                location,
            }),
            None => match hash_file(&self.root.join(&location))? {
                Some((sha256, bytes)) => Ok(ReadBack::Found {
                    sha256,
                    bytes,
                    location,
                }),
                None => Ok(ReadBack::Gone),
            },
        }
    }

    /// A recorded location must name a message file of this mailbox's
    /// archive folder: the ledger is not trusted to stay inside the tree.
    fn check_location(&self, mailbox: &Mailbox, location: &str) -> Result<(), WriteError> {
        let parts: Vec<_> = Path::new(location).components().collect();
        let normal = |i: usize, want: Option<&str>| match parts.get(i) {
            Some(Component::Normal(p)) => want.is_none_or(|w| *p == w),
            _ => false,
        };
        let sub_ok =
            matches!(parts.get(2), Some(Component::Normal(p)) if *p == "cur" || *p == "new");
        let dir = mailbox.dir_name();
        if parts.len() == 4
            && normal(0, Some(&dir))
            && normal(1, Some(&self.folder_dir))
            && sub_ok
            && normal(3, None)
        {
            return Ok(());
        }
        Err(WriteError::Copy(format!(
            "the recorded location {location:?} is not a message of {mailbox}'s archive folder"
        )))
    }

    fn index(&self, mailbox: &Mailbox) -> Arc<MailboxIndex> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let found = cache.entry(mailbox.key().to_owned()).or_insert_with(|| {
            Arc::new(scan_mailbox(
                &self.root.join(mailbox.dir_name()),
                &self.folder_dir,
            ))
        });
        Arc::clone(found)
    }
}

/// The hash and length of a file; `None` when there is no such file.
fn hash_file(path: &Path) -> Result<Option<(String, u64)>, WriteError> {
    let unreadable =
        |e: io::Error| WriteError::Copy(format!("cannot read {}: {e}", path.display()));
    use std::os::unix::fs::OpenOptionsExt;
    let opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path);
    match opened {
        Ok(file) => hash_reader(file).map(Some).map_err(unreadable),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(unreadable(e)),
    }
}

/// Every copy of ours in a Maildir++ root: INBOX (`cur/`, `new/`) and each
/// `.Folder/`. Copies in the archive folder win over copies elsewhere.
fn scan_mailbox(mailbox_root: &Path, folder_dir: &str) -> MailboxIndex {
    let mut index = MailboxIndex::default();
    let mut folders = vec![(Some("INBOX".to_owned()), PathBuf::new())];
    if let Ok(entries) = fs::read_dir(mailbox_root) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name != folder_dir && name.len() > 1 {
                folders.push((Some(name[1..].to_owned()), PathBuf::from(&name)));
            }
        }
    }
    folders.push((None, PathBuf::from(folder_dir)));
    for (folder, dir) in folders {
        for sub in ["cur", "new"] {
            let Ok(entries) = fs::read_dir(mailbox_root.join(&dir).join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(tag) = tag_of(&name) {
                    let relative = dir.join(sub).join(&name).to_string_lossy().into_owned();
                    index
                        .by_tag
                        .insert(tag.to_owned(), (folder.clone(), relative));
                }
            }
        }
    }
    index
}
