//! The password file named by `WECHAT_ARCHIVER_PASSWORD_FILE`: the fallback
//! for cron jobs and containers, which have no keyring to reach.

use std::io::Read;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::Secret;

/// More than enough for a few secrets; a bigger file is surely the wrong one.
const MAX_LEN: u64 = 64 * 1024;

/// Why the password file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PasswordFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "refused {path}: other users have access to it (mode {mode:04o}); run `chmod 600 {path}`"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("refused {path}: not a regular file")]
    NotAFile { path: PathBuf },
    #[error(
        "refused {path}: it belongs to user id {owner}, not to the user running wechat-archiver (id {me}); run `chown {me} {path}` or use your own file"
    )]
    NotOwned { path: PathBuf, owner: u32, me: u32 },
    #[error("refused {path}: larger than 64 KiB; it should hold one secret per line")]
    TooLarge { path: PathBuf },
    #[error("refused {path}: not UTF-8 text")]
    NotText { path: PathBuf },
}

/// The secrets of a password file, one per line, in the order of `cli.md`.
pub struct PasswordFile {
    lines: Vec<Secret>,
}

impl PasswordFile {
    /// Line `number` (1-based), if present and not empty.
    pub fn line(&self, number: usize) -> Option<&Secret> {
        self.lines
            .get(number.checked_sub(1)?)
            .filter(|s| !s.is_empty())
    }
}

/// Reads a password file, refusing one that other users may read or write,
/// or that another user owns (as ssh refuses such a key): a secret others
/// can read is already leaked, and one they can replace is not ours. It is
/// opened non-blocking and checked to be a regular file before anything is
/// read, so a FIFO or device in its place cannot hang a cron run.
pub fn read_password_file(path: &Path) -> Result<PasswordFile, PasswordFileError> {
    let read_err = |source| PasswordFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = open_nonblocking(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    check_metadata(path, &meta)?;
    // Sized up front so the buffer never reallocates, leaving no copy behind.
    let mut text = Zeroizing::new(String::with_capacity(meta.len().min(MAX_LEN) as usize + 1));
    file.take(MAX_LEN + 1)
        .read_to_string(&mut text)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => PasswordFileError::NotText {
                path: path.to_path_buf(),
            },
            _ => read_err(e),
        })?;
    if text.len() as u64 > MAX_LEN {
        return Err(PasswordFileError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(PasswordFile {
        lines: split_lines(&text),
    })
}

fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

fn check_metadata(path: &Path, meta: &std::fs::Metadata) -> Result<(), PasswordFileError> {
    if !meta.is_file() {
        return Err(PasswordFileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(PasswordFileError::NotOwned {
                path: path.to_path_buf(),
                owner: meta.uid(),
                me,
            });
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(PasswordFileError::TooOpen {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    Ok(())
}

/// Splits on `\n`, dropping one `\r` before it; nothing else is trimmed,
/// since spaces may be part of a password.
fn split_lines(text: &str) -> Vec<Secret> {
    text.split('\n')
        .map(|line| Secret::new(line.strip_suffix('\r').unwrap_or(line)))
        .collect()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let path = dir.join("secrets");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn owner_only_file_gives_its_lines_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "tm pass \r\nimap-secret\n", 0o600);
        let file = read_password_file(&path).unwrap();
        assert_eq!(file.line(1).unwrap().expose(), "tm pass ");
        assert_eq!(file.line(2).unwrap().expose(), "imap-secret");
        assert!(file.line(3).is_none());
        assert!(file.line(0).is_none());
    }

    #[test]
    fn file_others_can_read_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o644, 0o640, 0o602] {
            let path = write(dir.path(), "pw\n", mode);
            let err = read_password_file(&path).err().expect("refused");
            let text = err.to_string();
            assert!(text.contains(&format!("{mode:04o}")), "{text}");
            assert!(text.contains("chmod 600"), "{text}");
            assert!(!text.contains("pw\n"));
        }
    }

    #[test]
    fn missing_directory_and_binary_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_password_file(&dir.path().join("nope")),
            Err(PasswordFileError::Read { .. })
        ));
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(matches!(
            read_password_file(dir.path()),
            Err(PasswordFileError::NotAFile { .. })
        ));
        let path = dir.path().join("bin");
        std::fs::write(&path, [0xff, 0xfe, b'\n']).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            read_password_file(&path),
            Err(PasswordFileError::NotText { .. })
        ));
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        // Without O_NONBLOCK this open would wait forever for a writer.
        assert!(matches!(
            read_password_file(&fifo),
            Err(PasswordFileError::NotAFile { .. })
        ));
    }

    #[test]
    fn a_file_owned_by_another_user_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "pw\n", 0o600);
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        let other = if me == 65534 { 0 } else { 65534 };
        let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; -1 keeps the group.
        if unsafe { libc::chown(c_path.as_ptr(), other, u32::MAX) } != 0 {
            // Only root may give a file away; as another user, a file
            // root owns stands in (the tests run as root in CI).
            assert_ne!(me, 0, "root could not chown to nobody");
            let err = read_password_file(Path::new("/etc/hostname"))
                .err()
                .expect("refused");
            assert!(
                matches!(err, PasswordFileError::NotOwned { owner: 0, .. }),
                "{err}"
            );
            return;
        }
        let err = read_password_file(&path).err().expect("refused");
        let text = err.to_string();
        assert!(text.contains("belongs to user id 65534"), "{text}");
        assert!(text.contains(&format!("chown {me}")), "{text}");
    }
}
