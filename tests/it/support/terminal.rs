//! A real pseudo-terminal for tests that type at a prompt: the program
//! runs with the terminal's slave side as its controlling terminal, and
//! the test reads what it shows, waits for it to turn echo off, and types.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for what a terminal program shows; generous, as
/// it only bounds a hang.
const PATIENCE: Duration = Duration::from_secs(60);

pub struct Terminal {
    master: File,
    text: Arc<Mutex<String>>,
}

impl Terminal {
    /// Starts `command` on a new pseudo-terminal, in a session of its own
    /// whose controlling terminal it is (as a login shell would be).
    pub fn spawn(mut command: Command) -> (Child, Terminal) {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty writes two descriptors into the given integers;
        // null name, termios and window size ask for defaults.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened and are owned here alone.
        let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        command
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("start the program on a terminal");
        // The parent's copies of the slave go with the command, so reading
        // the master ends when the program has exited.
        drop(command);
        let text = Arc::new(Mutex::new(String::new()));
        let sink = text.clone();
        let mut reader = master.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        (child, Terminal { master, text })
    }

    /// Everything the program has shown so far.
    pub fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// Waits until the terminal shows `needle`.
    pub fn wait_for(&self, needle: &str) {
        self.wait_until(&format!("{needle:?} on the terminal"), || {
            self.text().contains(needle)
        });
    }

    /// Waits until the program has turned echo off (a password prompt
    /// reading), so what is typed next is not shown.
    pub fn wait_for_echo_off(&self) {
        self.wait_until("echo turned off", || !self.echoes());
    }

    /// Types `text` as a person would, then Enter.
    pub fn type_line(&self, text: &str) {
        let mut master = &self.master;
        master.write_all(format!("{text}\n").as_bytes()).unwrap();
        master.flush().unwrap();
    }

    /// Whether the terminal echoes what is typed (the line discipline's
    /// ECHO flag, shared by both sides of a pseudo-terminal).
    fn echoes(&self) -> bool {
        // SAFETY: termios is plain data; tcgetattr fills it or fails.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::tcgetattr(self.master.as_raw_fd(), &mut t) };
        assert_eq!(rc, 0, "tcgetattr: {}", std::io::Error::last_os_error());
        t.c_lflag & libc::ECHO != 0
    }

    fn wait_until(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !done() {
            assert!(
                !self.text().contains("error:"),
                "the program failed while waiting for {what}:\n{}",
                self.text()
            );
            assert!(
                Instant::now() < deadline,
                "no {what} in {PATIENCE:?}:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
