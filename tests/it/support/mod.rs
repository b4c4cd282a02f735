//! The test environment: a private home and HOME per test, and the real
//! binary run as a subprocess.

#![allow(dead_code)]

pub mod cyrus;
pub mod dovecot;
pub mod graph_sim;
pub mod imap_reader;
pub mod ports;
pub mod postfix;
pub mod terminal;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_wechat-archiver")
}

/// An isolated place for one test: its own `--home`, `$HOME` and a
/// scratch directory. Environment secrets of the caller never leak in.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
}

/// What a run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON object ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}, got {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::tempdir().expect("temp dir");
        let home = dir.path().join("home");
        std::fs::create_dir_all(dir.path().join("user")).unwrap();
        TestEnv { dir, home }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A `WECHAT_ARCHIVER_PASSWORD_FILE` only its owner can read: the
    /// TeleMessage password, then the target's secret.
    pub fn password_file(&self, password: &str, target_secret: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let file = self.path("secrets");
        std::fs::write(&file, format!("{password}\n{target_secret}\n")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        file
    }

    /// A command for the binary with `--home` set and a clean environment.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(binary());
        cmd.arg("--home").arg(&self.home);
        cmd.args(args);
        cmd.env("HOME", self.dir.path().join("user"));
        for var in [
            "WECHAT_ARCHIVER_HOME",
            "WECHAT_ARCHIVER_PASSWORD",
            "WECHAT_ARCHIVER_PASSWORD_FILE",
            "WECHAT_ARCHIVER_LOG",
        ] {
            cmd.env_remove(var);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command(args).output().expect("run the binary").into()
    }

    /// Runs with the TeleMessage password in the environment.
    pub fn run_with_password<I, S>(&self, password: &str, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command(args)
            .env("WECHAT_ARCHIVER_PASSWORD", password)
            .output()
            .expect("run the binary")
            .into()
    }

    /// Creates a connector writing into a Maildir under the test dir.
    pub fn create_maildir_connector(&self, name: &str, endpoint: &str, extra: &[&str]) -> PathBuf {
        let archive = self.path("archive");
        let target = format!("maildir:{}", archive.display());
        let mut args = vec![
            "create",
            name,
            "--endpoint",
            endpoint,
            "--username",
            "admin@contoso.com",
            "--target",
            &target,
            "--accept-terms",
        ];
        args.extend_from_slice(extra);
        self.run(&args).assert_code(0);
        archive
    }
}

/// Every regular file below a directory.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
