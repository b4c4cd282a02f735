//! The Maildir target (`maildir:DIR`): `DIR/<mailbox>/` is a Maildir++
//! root in Dovecot's layout and the archive folder is its subfolder
//! `.<folder>/`. Each copy is written to `tmp/`, fsynced, and renamed into
//! `cur/` as a seen message, so a reader never sees half a message. An
//! item's further copies are hard links to its first. The `cur/`
//! directories are fsynced once per ledger batch ([`MailboxWriter::sync_written`]),
//! before the batch records the copies in them. [`tree`] keeps writes
//! inside the archive (no planted link is followed) and gives new files
//! and directories the permissions of the directory above them; each
//! mailbox's folder is opened once ([`folder`]) and written relative to
//! its open `tmp/` and `cur/`.

mod folder;
mod tree;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

mod scan;

use folder::{FolderCache, OpenFolder, Source, folder_gone};

use super::imap::encode_mailbox_name;
use super::{Copy, FolderCopies, Found, MailboxWriter, ReadBack, WriteError, Written};
use crate::content::Content;
use crate::telemessage::Item;
use crate::types::{ItemId, Mailbox};
pub use tree::TreeError;

mod read;

/// Writes copies into a tree of Maildir++ mailboxes.
pub struct MaildirWriter {
    root: PathBuf,
    folder_dir: String,
    hostname: String,
    sequence: AtomicU64,
    /// Mailbox folders made and open for writing, until the next
    /// `sync_written`: a long-running `receive` sees the archive moved,
    /// replaced or unmounted within a batch, as a new `sync` would.
    folders: Mutex<FolderCache>,
    /// Per mailbox, after a crash: item tag to file name of copies on disk.
    on_disk: Mutex<HashMap<String, HashMap<String, String>>>,
    /// Directories given new entries since the last `sync_written`, with
    /// their descriptor when open.
    unsynced_dirs: Mutex<HashMap<PathBuf, Option<Arc<OwnedFd>>>>,
    /// Where copies are, per mailbox, for reading them back.
    read_index: read::IndexCache,
}

/// Why a folder name cannot be used with Maildir++.
#[derive(Debug, thiserror::Error)]
#[error(
    "folder name {0:?} cannot be used in a Maildir++ tree: it must be non-empty and contain no '.', '/' or control characters"
)]
pub struct InvalidFolderName(pub String);

impl MaildirWriter {
    pub fn new(root: &Path, folder: &str) -> Result<MaildirWriter, InvalidFolderName> {
        Ok(MaildirWriter {
            root: root.to_path_buf(),
            folder_dir: format!(".{}", maildir_folder_name(folder)?),
            hostname: safe_hostname(),
            sequence: AtomicU64::new(0),
            folders: Mutex::new(FolderCache::new()),
            on_disk: Mutex::new(HashMap::new()),
            unsynced_dirs: Mutex::new(HashMap::new()),
            read_index: Default::default(),
        })
    }

    /// Checks that the archive root exists or can be created and written,
    /// so a bad target fails before anything is downloaded.
    pub fn check_root(&self) -> Result<(), WriteError> {
        let fail = |e: io::Error| {
            WriteError::Target(format!(
                "the archive directory {} is not usable: {e}",
                self.root.display()
            ))
        };
        tree::ensure_root(&self.root)
            .map_err(|e| WriteError::Target(format!("the archive directory is not usable: {e}")))?;
        let name = format!(".write-test-{}", std::process::id());
        let probe = self.root.join(&name);
        let created = tree::create_file(&self.root, &name).or_else(|e| {
            if e.kind() != io::ErrorKind::AlreadyExists {
                return Err(e);
            }
            // Left by a crash, or planted: removing a link never touches its target.
            fs::remove_file(&probe)?;
            tree::create_file(&self.root, &name)
        });
        created.map_err(fail)?;
        fs::remove_file(&probe).map_err(fail)
    }

    /// The directories from the root to a folder's `sub`directory.
    fn components<'a>(&'a self, mailbox_dir: &'a str, sub: &'a str) -> [&'a str; 3] {
        [mailbox_dir, self.folder_dir.as_str(), sub]
    }

    /// The mailbox directory and file name of a copy in a folder's `cur/`,
    /// from its location.
    fn in_cur<'a>(&self, location: &'a str) -> Option<(&'a str, &'a str)> {
        let (dir_name, rest) = location.split_once('/')?;
        let name = rest.strip_prefix(&self.folder_dir)?.strip_prefix("/cur/")?;
        (!name.contains('/')).then_some((dir_name, name))
    }

    /// The archive folder of a mailbox.
    pub fn folder_path(&self, mailbox: &Mailbox) -> PathBuf {
        self.root.join(mailbox.dir_name()).join(&self.folder_dir)
    }

    /// The mailbox's archive folder, open for writing: opened once per
    /// batch, and made (with its mailbox) when it is missing.
    fn folder(&self, dir_name: &str) -> Result<Arc<OpenFolder>, WriteError> {
        let mut folders = self.folders.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(open) = folders.get(dir_name) {
            return Ok(open);
        }
        let components = [dir_name, self.folder_dir.as_str()];
        let open = match OpenFolder::open(&self.root, &components) {
            Err(e) if e.is_missing() => {
                self.make_folder(dir_name)?;
                OpenFolder::open(&self.root, &components)
            }
            opened => opened,
        };
        let open = Arc::new(open.map_err(tree_error)?);
        folders.insert(dir_name.to_owned(), Arc::clone(&open));
        Ok(open)
    }

    /// Creates the mailbox and its archive folder, each a Maildir.
    fn make_folder(&self, dir_name: &str) -> Result<(), WriteError> {
        for sub in ["cur", "new", "tmp"] {
            tree::ensure_dirs(&self.root, &[dir_name, sub]).map_err(tree_error)?;
            tree::ensure_dirs(&self.root, &self.components(dir_name, sub)).map_err(tree_error)?;
        }
        Ok(())
    }

    /// Closes a folder that went away while open, so the next write makes
    /// (or refuses) it afresh.
    fn forget(&self, dir_name: &str) {
        let mut folders = self.folders.lock().unwrap_or_else(|p| p.into_inner());
        folders.remove(dir_name);
    }

    /// Notes a directory to fsync before its new entries are recorded.
    fn unsynced(&self, dir: PathBuf, fd: Option<Arc<OwnedFd>>) {
        let mut unsynced = self.unsynced_dirs.lock().unwrap_or_else(|p| p.into_inner());
        let slot = unsynced.entry(dir).or_default();
        if slot.is_none() {
            *slot = fd;
        }
    }

    /// A copy now in `cur/`: its directory awaits `sync_written`.
    fn delivered(
        &self,
        mailbox: &Mailbox,
        folder: &OpenFolder,
        final_name: &str,
        len: u64,
    ) -> Written {
        self.unsynced(folder.path.join("cur"), Some(folder.cur()));
        Written {
            location: location(mailbox, &self.folder_dir, &format!("cur/{final_name}")),
            bytes: len,
        }
    }

    fn unique_name(&self, item: &Item) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        format!(
            "{}.M{}P{}Q{}R{:08x}_{}.{}",
            now.as_secs(),
            now.subsec_micros(),
            std::process::id(),
            self.sequence.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>(),
            item.id.tag(),
            self.hostname
        )
    }

    /// Scans the folder once for copies (by the item tag in the file name)
    /// and removes `tmp/` files a dead process of ours left behind.
    fn scan(&self, folder: &Path) -> HashMap<String, String> {
        clean_stale_tmp(&folder.join("tmp"));
        let mut found = HashMap::new();
        for sub in ["cur", "new"] {
            let Ok(entries) = fs::read_dir(folder.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(tag) = tag_of(&name) {
                    found.insert(tag.to_owned(), format!("{sub}/{name}"));
                }
            }
        }
        found
    }
}

#[async_trait]
impl MailboxWriter for MaildirWriter {
    fn describe(&self) -> String {
        format!("maildir:{}", self.root.display())
    }

    async fn is_valid_user(&self, _mailbox: &Mailbox) -> Result<bool, WriteError> {
        Ok(true)
    }

    async fn find_existing(
        &self,
        mailbox: &Mailbox,
        item: &Item,
    ) -> Result<Option<Written>, WriteError> {
        let folder = self.folder_path(mailbox);
        let dir_name = mailbox.dir_name();
        for sub in ["cur", "new", "tmp"] {
            tree::check_dirs(&self.root, &self.components(&dir_name, sub)).map_err(tree_error)?;
        }
        let mut on_disk = self.on_disk.lock().unwrap_or_else(|p| p.into_inner());
        let found = on_disk
            .entry(mailbox.key().to_owned())
            .or_insert_with(|| self.scan(&folder));
        let Some(relative) = found.get(&item.id.tag()) else {
            return Ok(None);
        };
        let path = folder.join(relative);
        let bytes = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if let Some(dir) = path.parent() {
            self.unsynced(dir.to_path_buf(), None);
        }
        Ok(Some(Written {
            location: location(mailbox, &self.folder_dir, relative),
            bytes,
        }))
    }

    async fn write(&self, mailbox: &Mailbox, copy: &Copy<'_>) -> Result<Written, WriteError> {
        let dir_name = mailbox.dir_name();
        let headers = copy.trace_headers();
        let source = match copy.content {
            Content::Memory(bytes) => Source::Memory(bytes.clone()),
            Content::Spooled { path, .. } => Source::File(path.clone()),
        };
        let delivery = Arc::new((headers, source));
        let len = copy.len();
        let mut first = true;
        loop {
            let folder = self.folder(&dir_name)?;
            let name = self.unique_name(copy.item);
            let final_name = format!("{name},S={len}:2,S");
            let delivered = tokio::task::spawn_blocking({
                let (folder, delivery, final_name) = (
                    Arc::clone(&folder),
                    Arc::clone(&delivery),
                    final_name.clone(),
                );
                move || folder.deliver(&name, &final_name, &delivery.0, &delivery.1)
            })
            .await
            .map_err(|e| WriteError::Copy(format!("the write task failed: {e}")))?;
            match delivered {
                Ok(()) => return Ok(self.delivered(mailbox, &folder, &final_name, len)),
                Err(e) if first && folder_gone(&e) => self.forget(&dir_name),
                Err(e) => {
                    return Err(WriteError::Copy(format!(
                        "cannot write into {}: {e}",
                        folder.path.display()
                    )));
                }
            }
            first = false;
        }
    }

    async fn write_again(
        &self,
        mailbox: &Mailbox,
        copy: &Copy<'_>,
        earlier: &Written,
    ) -> Result<Written, WriteError> {
        let Some((earlier_dir, earlier_name)) = self.in_cur(&earlier.location) else {
            return self.write(mailbox, copy).await;
        };
        let folder = self.folder(&mailbox.dir_name())?;
        let source = self.folder(earlier_dir)?;
        let len = copy.len();
        let final_name = format!("{},S={len}:2,S", self.unique_name(copy.item));
        let linked = tokio::task::spawn_blocking({
            let (folder, earlier_name, final_name) = (
                Arc::clone(&folder),
                earlier_name.to_owned(),
                final_name.clone(),
            );
            move || folder.link_from(&source, &earlier_name, &final_name, len)
        })
        .await
        .map_err(|e| WriteError::Copy(format!("the write task failed: {e}")))?;
        match linked {
            Ok(()) => Ok(self.delivered(mailbox, &folder, &final_name, len)),
            Err(e) => {
                tracing::debug!(
                    "cannot hard-link item {} into {mailbox} ({e}); writing it",
                    copy.item.id
                );
                self.write(mailbox, copy).await
            }
        }
    }

    async fn folder_mark(&self, mailbox: &Mailbox) -> Result<Option<String>, WriteError> {
        Ok(Some(self.mark(mailbox)))
    }

    async fn existing_copies(&self, mailbox: &Mailbox) -> Result<FolderCopies, WriteError> {
        self.copies_in(mailbox)
    }

    async fn confirm(&self, item: &Item, found: Found) -> Result<Option<Found>, WriteError> {
        self.confirm_copy(item, found)
    }

    async fn read_back(
        &self,
        mailbox: &Mailbox,
        location: &str,
        item: &ItemId,
    ) -> Result<ReadBack, WriteError> {
        self.read_copy(mailbox, location, item).await
    }

    fn read_parallelism(&self) -> usize {
        8
    }

    fn sync_written(&self) -> Result<(), WriteError> {
        self.folders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let dirs =
            std::mem::take(&mut *self.unsynced_dirs.lock().unwrap_or_else(|p| p.into_inner()));
        let mut dirs = dirs.into_iter();
        while let Some((dir, fd)) = dirs.next() {
            let synced = match &fd {
                Some(fd) => rustix::fs::fsync(&**fd).map_err(io::Error::from),
                None => File::open(&dir).and_then(|d| d.sync_all()),
            };
            if let Err(e) = synced {
                let mut unsynced = self.unsynced_dirs.lock().unwrap_or_else(|p| p.into_inner());
                unsynced.insert(dir.clone(), fd);
                unsynced.extend(dirs);
                return Err(WriteError::Target(format!(
                    "cannot fsync {}: {e}",
                    dir.display()
                )));
            }
        }
        Ok(())
    }
}

/// A refused path in the archive fails the copy, naming the path.
fn tree_error(e: TreeError) -> WriteError {
    WriteError::Copy(e.to_string())
}

fn location(mailbox: &Mailbox, folder_dir: &str, relative: &str) -> String {
    format!("{}/{folder_dir}/{relative}", mailbox.dir_name())
}

/// The item tag in one of our file names (`..._<tag>.<host>...`).
fn tag_of(name: &str) -> Option<&str> {
    let after = name.split_once('_')?.1;
    let tag = after.split('.').next()?;
    (tag.len() == 20 && tag.bytes().all(|b| b.is_ascii_hexdigit())).then_some(tag)
}

/// Removes our tmp files whose writing process is gone (a crash).
fn clean_stale_tmp(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if tag_of(&name).is_none() {
            continue;
        }
        let pid = name
            .split_once('P')
            .and_then(|(_, rest)| rest.split('Q').next())
            .and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| p == std::process::id() || process_alive(p));
        if !alive {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// A host name safe in a Maildir file name (`/` and `:` escaped as the
/// Maildir spec says).
fn safe_hostname() -> String {
    let raw = fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    raw.trim()
        .replace('/', "\\057")
        .replace(':', "\\072")
        .replace('_', "-")
}

/// Encodes a folder name as Dovecot's Maildir++ layout does: modified
/// UTF-7 (RFC 3501) for non-ASCII, no hierarchy separator inside.
fn maildir_folder_name(folder: &str) -> Result<String, InvalidFolderName> {
    let bad =
        folder.is_empty() || folder.contains(['.', '/']) || folder.chars().any(|c| c.is_control());
    if bad {
        return Err(InvalidFolderName(folder.to_owned()));
    }
    Ok(encode_mailbox_name(folder))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_follow_dovecot() {
        assert_eq!(
            maildir_folder_name("WeChat Archiver").unwrap(),
            "WeChat Archiver"
        );
        assert_eq!(maildir_folder_name("微信").unwrap(), "&X65P4Q-");
        assert_eq!(maildir_folder_name("A&B").unwrap(), "A&-B");
        assert!(maildir_folder_name("a.b").is_err());
        assert!(maildir_folder_name("../x").is_err());
    }

    fn item() -> Item {
        serde_json::from_value(serde_json::json!({
            "id": "itm_1", "platform": "wechat", "type": "message",
            "conversation": {"id": "c", "kind": "direct", "title": ""},
            "sent_at": "2026-11-22T08:15:00Z", "archived_at": "2026-11-22T09:00:00Z",
            "sender": {"name": "", "mobile": null, "email": null, "wechat_id": "w"},
            "participants": [], "size": 1, "sha256": "00"
        }))
        .unwrap()
    }

    fn mailbox(address: &str) -> Mailbox {
        Mailbox::parse(address).unwrap()
    }

    fn fixture() -> (tempfile::TempDir, MaildirWriter, Item, Content) {
        let dir = tempfile::tempdir().unwrap();
        let writer = MaildirWriter::new(dir.path(), "Archive").unwrap();
        let content = Content::Memory(bytes::Bytes::from_static(b"Subject: s\r\n\r\nbody\r\n"));
        (dir, writer, item(), content)
    }

    /// The copy every test writes: connector `c`, no recall link.
    fn copy_of<'a>(item: &'a Item, content: &'a Content) -> Copy<'a> {
        Copy {
            item,
            connector: "c",
            content,
            in_reply_to: None,
        }
    }

    fn inode_and_links(root: &Path, written: &Written) -> (u64, u64) {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(root.join(&written.location)).unwrap();
        (meta.ino(), meta.nlink())
    }

    #[tokio::test]
    async fn a_further_copy_shares_the_earlier_copys_file() {
        let (dir, writer, item, content) = fixture();
        let copy = copy_of(&item, &content);
        let first = writer.write(&mailbox("a@x.com"), &copy).await.unwrap();
        let second = writer
            .write_again(&mailbox("b@x.com"), &copy, &first)
            .await
            .unwrap();

        assert_ne!(first.location, second.location);
        assert!(second.location.starts_with("b@x.com/.Archive/cur/"));
        let (inode, links) = inode_and_links(dir.path(), &first);
        assert_eq!(inode_and_links(dir.path(), &second), (inode, 2));
        assert_eq!(links, 2);
        let text = fs::read(dir.path().join(&second.location)).unwrap();
        assert!(text.starts_with(b"X-WeChat-Archiver-Item-Id: itm_1\r\n"));
        assert!(text.ends_with(b"\r\nbody\r\n"));
    }

    #[tokio::test]
    async fn a_further_copy_is_written_anew_when_the_earlier_one_changed() {
        let (dir, writer, item, content) = fixture();
        let copy = copy_of(&item, &content);
        let first = writer.write(&mailbox("a@x.com"), &copy).await.unwrap();
        fs::write(dir.path().join(&first.location), b"edited").unwrap();
        let second = writer
            .write_again(&mailbox("b@x.com"), &copy, &first)
            .await
            .unwrap();
        assert_eq!(inode_and_links(dir.path(), &second).1, 1);
        assert_eq!(
            fs::metadata(dir.path().join(&second.location))
                .unwrap()
                .len(),
            copy.len()
        );

        fs::remove_file(dir.path().join(&first.location)).unwrap();
        let third = writer
            .write_again(&mailbox("c@x.com"), &copy, &first)
            .await
            .unwrap();
        assert_eq!(inode_and_links(dir.path(), &third).1, 1);
        assert_eq!(
            fs::read(dir.path().join(&third.location)).unwrap(),
            fs::read(dir.path().join(&second.location)).unwrap()
        );
    }

    /// A writer whose `a@x.com` has a link planted at `planted` (relative
    /// to the root, e.g. `a@x.com/.Archive/tmp`) pointing to a directory
    /// outside the archive: the write fails naming the link, and nothing
    /// lands outside.
    async fn refused_through(planted: &str, prepared_first: bool) {
        let (dir, writer, item, content) = fixture();
        let copy = copy_of(&item, &content);
        let outside = tempfile::tempdir().unwrap();
        if prepared_first {
            writer.write(&mailbox("a@x.com"), &copy).await.unwrap();
        }
        let link = dir.path().join(planted);
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        if link.exists() {
            fs::remove_dir_all(&link).unwrap();
        }
        std::os::unix::fs::symlink(outside.path(), &link).unwrap();
        let e = writer.write(&mailbox("a@x.com"), &copy).await.unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains(&format!("{} is a symbolic link", link.display())),
            "{planted}: {text}"
        );
        assert!(files_below(outside.path()).is_empty(), "{planted}");
    }

    fn files_below(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_below(&p));
            }
            out.push(p);
        }
        out
    }

    #[tokio::test]
    async fn a_planted_link_anywhere_in_a_mailboxs_path_is_refused() {
        for planted in ["a@x.com", "a@x.com/.Archive", "a@x.com/cur"] {
            refused_through(planted, false).await;
        }
        for planted in ["a@x.com/.Archive/tmp", "a@x.com/.Archive/cur", "a@x.com"] {
            refused_through(planted, true).await;
        }
    }

    #[tokio::test]
    async fn a_link_swapped_in_while_the_folder_is_open_is_never_followed() {
        let (dir, writer, item, content) = fixture();
        let copy = copy_of(&item, &content);
        let outside = tempfile::tempdir().unwrap();
        writer.write(&mailbox("a@x.com"), &copy).await.unwrap();
        let folder = dir.path().join("a@x.com/.Archive");
        for sub in ["tmp", "cur"] {
            fs::rename(folder.join(sub), folder.join(format!("{sub}-aside"))).unwrap();
            std::os::unix::fs::symlink(outside.path(), folder.join(sub)).unwrap();
        }
        let again = writer.write(&mailbox("a@x.com"), &copy).await.unwrap();
        let linked = writer.write_again(&mailbox("a@x.com"), &copy, &again).await;
        assert!(files_below(outside.path()).is_empty(), "{linked:?}");
        let aside = fs::read_dir(folder.join("cur-aside")).unwrap().count();
        assert_eq!(aside, 3, "the copies went into the directory opened");
    }

    #[tokio::test]
    async fn more_mailboxes_than_open_folders_are_all_written() {
        let (dir, mut writer, item, content) = fixture();
        writer.folders = Mutex::new(FolderCache::with_capacity(2));
        let copy = copy_of(&item, &content);
        let names = ["a@x.com", "b@x.com", "c@x.com", "d@x.com"];
        let first = writer.write(&mailbox(names[0]), &copy).await.unwrap();
        for name in names.iter().skip(1).chain(&names) {
            let written = writer
                .write_again(&mailbox(name), &copy, &first)
                .await
                .unwrap();
            assert_eq!(
                inode_and_links(dir.path(), &written).0,
                inode_and_links(dir.path(), &first).0
            );
        }
        writer.sync_written().unwrap();
        assert_eq!(inode_and_links(dir.path(), &first).1, 8);
    }

    #[tokio::test]
    async fn the_marker_and_the_write_probe_never_follow_a_link() {
        let (dir, writer, item, content) = fixture();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let probe = dir
            .path()
            .join(format!(".write-test-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &probe).unwrap();
        writer.check_root().unwrap();
        assert!(!probe.exists() && fs::symlink_metadata(&probe).is_err());

        let folder = dir.path().join("a@x.com/.Archive");
        fs::create_dir_all(&folder).unwrap();
        std::os::unix::fs::symlink(&victim, folder.join("maildirfolder")).unwrap();
        let copy = copy_of(&item, &content);
        let e = writer.write(&mailbox("a@x.com"), &copy).await.unwrap_err();
        assert!(
            e.to_string().contains("maildirfolder is a symbolic link"),
            "{e}"
        );
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
    }

    #[tokio::test]
    async fn copies_take_the_permissions_of_the_archive_root() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let (dir, writer, item, content) = fixture();
        let copy = copy_of(&item, &content);
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let private = writer.write(&mailbox("a@x.com"), &copy).await.unwrap();
        assert_eq!(mode(&dir.path().join("a@x.com/.Archive/cur")), 0o700);
        assert_eq!(mode(&dir.path().join(&private.location)), 0o600);

        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o2770)).unwrap();
        let shared = writer.write(&mailbox("b@x.com"), &copy).await.unwrap();
        assert_eq!(mode(&dir.path().join("b@x.com")), 0o2770);
        assert_eq!(mode(&dir.path().join(&shared.location)), 0o660);
    }

    #[test]
    fn a_new_archive_root_is_private() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("new/archive");
        MaildirWriter::new(&root, "Archive")
            .unwrap()
            .check_root()
            .unwrap();
        assert_eq!(fs::metadata(&root).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn tags_are_found_in_our_file_names_only() {
        let name = "1732.M5P9Q1R0000abcd_0123456789abcdef0123.host,S=10:2,S";
        assert_eq!(tag_of(name), Some("0123456789abcdef0123"));
        assert_eq!(tag_of("1732.M5P9.host:2,S"), None);
    }
}
