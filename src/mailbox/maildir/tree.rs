//! The archive tree's safety and privacy rules.
//!
//! - Nothing is written through a symbolic link inside the archive: a link
//!   planted at `DIR/<address>`, at a folder, or at `cur/`/`tmp/` would
//!   send every copy (or the write-test probe, or the `maildirfolder`
//!   marker) somewhere else. Every directory below the root is opened one
//!   component at a time without following links ([`open_dirs`]), copies
//!   are created relative to the open directory, and files are created
//!   with `O_CREAT|O_EXCL|O_NOFOLLOW`, which never follows nor truncates.
//!   The root itself may be a link: the admin chose it.
//! - New directories take the mode of the directory above them, and new
//!   files that mode without the execute bits, as Dovecot does: a root of
//!   0700 keeps mail private, a group-shared 0770 or 2770 root stays
//!   shared. A root the tool creates is 0700.

use std::fs::{self, DirBuilder, File, Permissions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

/// Mode of an archive root the tool creates: private to its user.
pub const NEW_ROOT_MODE: u32 = 0o700;

/// Why a path inside the archive cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error(
        "{path} is a symbolic link (to {target}); nothing is written through a link inside the archive: replace it with a real directory, or remove it, and run sync again"
    )]
    Link { path: PathBuf, target: PathBuf },
    #[error("{path} is not a directory; move it out of the archive and run sync again")]
    NotDirectory { path: PathBuf },
    #[error("cannot create {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl TreeError {
    /// A directory on the way does not exist (yet).
    pub fn is_missing(&self) -> bool {
        matches!(self, TreeError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

pub(super) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> TreeError + '_ {
    move |source| TreeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates the archive root (mode 0700) when it is missing; its parents
/// are created as any directory is. Fails when it is not a directory.
pub fn ensure_root(root: &Path) -> Result<(), TreeError> {
    match fs::metadata(root) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(TreeError::NotDirectory {
                path: root.to_path_buf(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(root)(e)),
    }
    if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(io_error(parent))?;
    }
    match DirBuilder::new().mode(NEW_ROOT_MODE).create(root) {
        Ok(()) => set_mode(root, NEW_ROOT_MODE),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && root.is_dir() => Ok(()),
        Err(e) => Err(io_error(root)(e)),
    }
}

/// `root/a/b/...`, each component created with its parent's mode when
/// missing and required to be a real directory (not a link) when present.
pub fn ensure_dirs(root: &Path, components: &[&str]) -> Result<PathBuf, TreeError> {
    let mut dir = root.to_path_buf();
    for name in components {
        let parent_mode = dir_mode(&dir)?;
        let path = dir.join(name);
        match DirBuilder::new().mode(parent_mode).create(&path) {
            Ok(()) => set_mode(&path, parent_mode)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => real_dir(&path)?,
            Err(e) => return Err(io_error(&path)(e)),
        }
        dir = path;
    }
    Ok(dir)
}

/// Checks that every existing component of `root/a/b/...` is a real
/// directory. `Ok(false)` when one is missing (nothing written there yet).
pub fn check_dirs(root: &Path, components: &[&str]) -> Result<bool, TreeError> {
    let mut dir = root.to_path_buf();
    for name in components {
        dir.push(name);
        match fs::symlink_metadata(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_error(&dir)(e)),
            Ok(meta) => require_real_dir(&dir, &meta)?,
        }
    }
    Ok(true)
}

/// A new file `dir/name`, `dir` being the archive root (opened as named):
/// never follows a link nor touches an existing file, and gets `dir`'s
/// mode without execute (and set-id) bits.
pub fn create_file(dir: &Path, name: &str) -> io::Result<File> {
    let fd = rustix::fs::open(dir, ROOT_FLAGS, Mode::empty())?;
    let mode = fd_mode(&fd, dir).map_err(|e| io::Error::other(e.to_string()))? & 0o666;
    create_file_at(fd.as_fd(), name, mode)
}

/// The process's umask, read once from `/proc/self/status` (the tool never
/// changes it); `None` when it cannot be read, and modes are then always
/// set. Spares a `fchmod` per copy when the umask leaves the mode whole.
fn umask() -> Option<u32> {
    static UMASK: OnceLock<Option<u32>> = OnceLock::new();
    *UMASK.get_or_init(|| {
        let status = fs::read_to_string("/proc/self/status").ok()?;
        let value = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
        u32::from_str_radix(value.trim(), 8).ok()
    })
}

/// Opens `root/a/b/...` one component at a time, none through a link
/// (the root itself may be one: the admin chose it); returns the last
/// directory and its path.
pub fn open_dirs(root: &Path, components: &[&str]) -> Result<(OwnedFd, PathBuf), TreeError> {
    let mut dir =
        rustix::fs::open(root, ROOT_FLAGS, Mode::empty()).map_err(|e| io_error(root)(e.into()))?;
    let mut path = root.to_path_buf();
    for name in components {
        dir = open_dir_at(&dir, &path, name)?;
        path.push(name);
    }
    Ok((dir, path))
}

/// Opens `parent/name` (`parent_path` names it in errors) as a directory,
/// refusing a link or anything else by name.
pub fn open_dir_at(parent: &OwnedFd, parent_path: &Path, name: &str) -> Result<OwnedFd, TreeError> {
    let path = parent_path.join(name);
    match rustix::fs::openat(parent, name, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(e) if e == Errno::LOOP || e == Errno::NOTDIR => match link_at(parent, name, &path)? {
            Some(link) => Err(link),
            None => Err(TreeError::NotDirectory { path }),
        },
        Err(e) => Err(io_error(&path)(e.into())),
    }
}

/// When `parent/name` (called `path` in errors) is a symbolic link: the
/// error that names it and where it points.
pub fn link_at(parent: &OwnedFd, name: &str, path: &Path) -> Result<Option<TreeError>, TreeError> {
    let stat = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| io_error(path)(e.into()))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::Symlink {
        return Ok(None);
    }
    let target = rustix::fs::readlinkat(parent, name, Vec::new())
        .map(|t| PathBuf::from(std::ffi::OsString::from_vec(t.into_bytes())))
        .unwrap_or_default();
    Ok(Some(TreeError::Link {
        path: path.to_path_buf(),
        target,
    }))
}

/// Permission bits of an open directory (`path` names it in errors), as
/// [`dir_mode`] reads them.
pub fn fd_mode(dir: &OwnedFd, path: &Path) -> Result<u32, TreeError> {
    let stat = rustix::fs::fstat(dir).map_err(|e| io_error(path)(e.into()))?;
    Ok(stat.st_mode & 0o2777)
}

/// A new file `name` in the open directory `dir`, as [`create_file`]
/// makes it: `mode` is set whatever the umask.
pub fn create_file_at(dir: BorrowedFd<'_>, name: &str, mode: u32) -> io::Result<File> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(mode))?;
    if umask().is_none_or(|umask| mode & umask != 0) {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
    }
    Ok(File::from(fd))
}

/// How a directory the admin named (the root) is opened.
const ROOT_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

/// How directories below the root are opened: never through a link.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// `path` is a directory and not a link to one.
fn real_dir(path: &Path) -> Result<(), TreeError> {
    let meta = fs::symlink_metadata(path).map_err(io_error(path))?;
    require_real_dir(path, &meta)
}

/// `meta`, read without following links, is a directory's.
fn require_real_dir(path: &Path, meta: &fs::Metadata) -> Result<(), TreeError> {
    if meta.file_type().is_symlink() {
        let target = fs::read_link(path).unwrap_or_default();
        return Err(TreeError::Link {
            path: path.to_path_buf(),
            target,
        });
    }
    if !meta.is_dir() {
        return Err(TreeError::NotDirectory {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Permission bits of a directory, with set-group-id (so group sharing
/// carries down) but without the sticky and set-user-id bits.
fn dir_mode(dir: &Path) -> Result<u32, TreeError> {
    let meta = fs::metadata(dir).map_err(io_error(dir))?;
    Ok(meta.mode() & 0o2777)
}

/// Sets the mode explicitly: the umask must not narrow a shared tree.
fn set_mode(path: &Path, mode: u32) -> Result<(), TreeError> {
    fs::set_permissions(path, Permissions::from_mode(mode)).map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_new_root_is_private_and_its_tree_stays_private() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("srv/archive");
        ensure_root(&root).unwrap();
        assert_eq!(mode(&root), 0o700);
        let cur = ensure_dirs(&root, &["a@x.com", ".Archive", "cur"]).unwrap();
        assert_eq!(mode(&root.join("a@x.com")), 0o700);
        assert_eq!(mode(&cur), 0o700);
        create_file(&cur, "m").unwrap();
        assert_eq!(mode(&cur.join("m")), 0o600);
    }

    #[test]
    fn a_group_shared_root_stays_shared_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::set_permissions(root, Permissions::from_mode(0o2770)).unwrap();
        let cur = ensure_dirs(root, &["a@x.com", "cur"]).unwrap();
        assert_eq!(mode(&cur), 0o2770);
        create_file(&cur, "m").unwrap();
        assert_eq!(mode(&cur.join("m")), 0o660);
    }

    #[test]
    fn a_link_inside_the_archive_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let (root, elsewhere) = (dir.path().join("root"), dir.path().join("elsewhere"));
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&elsewhere).unwrap();
        symlink(&elsewhere, root.join("a@x.com")).unwrap();
        let e = ensure_dirs(&root, &["a@x.com", "cur"]).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("a@x.com is a symbolic link"), "{text}");
        assert!(text.contains("replace it with a real directory"), "{text}");
        assert!(check_dirs(&root, &["a@x.com"]).is_err());
        assert!(fs::read_dir(&elsewhere).unwrap().next().is_none());
    }

    #[test]
    fn a_new_file_never_follows_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        symlink(&victim, dir.path().join("probe")).unwrap();
        assert!(create_file(dir.path(), "probe").is_err());
        symlink(dir.path().join("absent"), dir.path().join("dangling")).unwrap();
        assert!(create_file(dir.path(), "dangling").is_err());
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(!dir.path().join("absent").exists());
    }
}
