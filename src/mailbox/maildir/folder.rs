//! A mailbox's archive folder held open for writing: its `tmp/` and
//! `cur/` directories are opened once, one path component at a time and
//! never through a link, and every copy is created, renamed and linked
//! relative to them. So a link planted after the folder was opened is
//! never followed (the descriptors name the real directories), and a write
//! does not walk and check the whole path again.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType};
use rustix::process::Resource;

use super::tree::{self, TreeError};
use crate::faultpoint;

/// What a copy's body is written from.
pub(super) enum Source {
    Memory(bytes::Bytes),
    File(PathBuf),
}

/// A mailbox's archive folder, its `tmp/` and `cur/` open.
pub(super) struct OpenFolder {
    /// `root/<mailbox>/<folder>`, for messages.
    pub(super) path: PathBuf,
    tmp: OwnedFd,
    cur: Arc<OwnedFd>,
    /// New files get `tmp/`'s mode without execute and set-id bits.
    file_mode: u32,
}

impl OpenFolder {
    /// Opens `root/<components>` and its `tmp/` and `cur/`, failing
    /// by name at any link or non-directory on the way, and gives it the
    /// `maildirfolder` marker of a Maildir++ subfolder.
    pub(super) fn open(root: &Path, components: &[&str]) -> Result<OpenFolder, TreeError> {
        let (folder, path) = tree::open_dirs(root, components)?;
        mark(&folder, &path)?;
        let tmp = tree::open_dir_at(&folder, &path, "tmp")?;
        let cur = tree::open_dir_at(&folder, &path, "cur")?;
        let file_mode = tree::fd_mode(&tmp, &path.join("tmp"))? & 0o666;
        Ok(OpenFolder {
            path,
            tmp,
            cur: Arc::new(cur),
            file_mode,
        })
    }

    /// `cur/`, to fsync once its new entries are to be recorded.
    pub(super) fn cur(&self) -> Arc<OwnedFd> {
        Arc::clone(&self.cur)
    }

    /// The Maildir delivery: writes `tmp/NAME` completely, fsyncs it and
    /// renames it to `cur/FINAL` (whose directory is fsynced later). On any
    /// error the tmp file goes.
    pub(super) fn deliver(
        &self,
        name: &str,
        final_name: &str,
        headers: &[u8],
        source: &Source,
    ) -> io::Result<()> {
        let result = self.write_tmp(name, headers, source).and_then(|()| {
            faultpoint::hit(faultpoint::AFTER_TMP_WRITE);
            rustix::fs::renameat(&self.tmp, name, &*self.cur, final_name)?;
            faultpoint::hit(faultpoint::AFTER_RENAME);
            Ok(())
        });
        if result.is_err() {
            let _ = rustix::fs::unlinkat(&self.tmp, name, AtFlags::empty());
        }
        result
    }

    fn write_tmp(&self, name: &str, headers: &[u8], source: &Source) -> io::Result<()> {
        let mut file = tree::create_file_at(self.tmp.as_fd(), name, self.file_mode)?;
        file.write_all(headers)?;
        match source {
            Source::Memory(bytes) => file.write_all(bytes)?,
            Source::File(path) => {
                let mut body = File::open(path)?;
                let half = body.metadata()?.len() / 2;
                // In two halves, so the crash tests can stop a copy half on disk.
                io::copy(&mut Read::by_ref(&mut body).take(half), &mut file)?;
                faultpoint::hit(faultpoint::MID_TMP_WRITE);
                io::copy(&mut body, &mut file)?;
            }
        }
        file.sync_all()
    }

    /// A further copy as a hard link to `earlier`'s `cur/SOURCE`, whose
    /// content is already durable. Fails, with no link made, when linking
    /// is not possible (another file system, the earlier copy moved or
    /// changed).
    pub(super) fn link_from(
        &self,
        earlier: &OpenFolder,
        source: &str,
        final_name: &str,
        len: u64,
    ) -> io::Result<()> {
        let stat = rustix::fs::statat(&*earlier.cur, source, AtFlags::SYMLINK_NOFOLLOW)?;
        let is_file = FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile;
        if !is_file || u64::try_from(stat.st_size).ok() != Some(len) {
            return Err(io::Error::other("the earlier copy is no longer as written"));
        }
        rustix::fs::linkat(
            &*earlier.cur,
            source,
            &*self.cur,
            final_name,
            AtFlags::empty(),
        )?;
        faultpoint::hit(faultpoint::AFTER_RENAME);
        Ok(())
    }
}

/// Whether a write failed because its folder went away (removed, or
/// replaced, after it was opened): opening it again tells which.
pub(super) fn folder_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

/// Creates the folder's `maildirfolder` marker unless it is there; a link
/// in its place is refused, never followed.
fn mark(folder: &OwnedFd, path: &Path) -> Result<(), TreeError> {
    const MARKER: &str = "maildirfolder";
    let marker = path.join(MARKER);
    let mode = tree::fd_mode(folder, path)? & 0o666;
    match tree::create_file_at(folder.as_fd(), MARKER, mode) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            match tree::link_at(folder, MARKER, &marker)? {
                Some(link) => Err(link),
                None => Ok(()),
            }
        }
        Err(e) => Err(tree::io_error(&marker)(e)),
    }
}

/// Open folders by mailbox directory name. Each holds two descriptors, so
/// beyond a bound set by the process's open-file limit the least recently
/// used is closed (and opened again, checked, when next needed).
pub(super) struct FolderCache {
    open: HashMap<String, (Arc<OpenFolder>, u64)>,
    clock: u64,
    capacity: usize,
}

impl FolderCache {
    pub(super) fn new() -> FolderCache {
        let soft = rustix::process::getrlimit(Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        let capacity = usize::try_from(soft.saturating_sub(256) / 4).unwrap_or(usize::MAX);
        FolderCache::with_capacity(capacity.clamp(8, 4096))
    }

    pub(super) fn with_capacity(capacity: usize) -> FolderCache {
        FolderCache {
            open: HashMap::new(),
            clock: 0,
            capacity,
        }
    }

    pub(super) fn get(&mut self, dir_name: &str) -> Option<Arc<OpenFolder>> {
        self.clock += 1;
        let (folder, used) = self.open.get_mut(dir_name)?;
        *used = self.clock;
        Some(Arc::clone(folder))
    }

    pub(super) fn insert(&mut self, dir_name: String, folder: Arc<OpenFolder>) {
        if self.open.len() >= self.capacity {
            let oldest = self.open.iter().min_by_key(|(_, (_, used))| *used);
            if let Some(oldest) = oldest.map(|(name, _)| name.clone()) {
                self.open.remove(&oldest);
            }
        }
        self.clock += 1;
        self.open.insert(dir_name, (folder, self.clock));
    }

    pub(super) fn remove(&mut self, dir_name: &str) {
        self.open.remove(dir_name);
    }

    pub(super) fn clear(&mut self) {
        self.open.clear();
    }
}
