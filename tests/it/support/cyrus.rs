//! A real Cyrus IMAP for tests, as Debian ships it (`cyrus-imapd`): a
//! private instance under a temporary directory with its own `imapd.conf`
//! and `cyrus.conf` (`-C` on every command), virtual domains
//! (`virtdomains: userid`), `/` as separator (`unixhierarchysep: yes`), an
//! admin allowed to act for users (`proxyservers`) in its own `saslpasswd2`
//! database, and one mailbox per test user created by that admin. Runs in
//! either namespace mode: `altnamespace: no` (Debian's default: personal
//! folders under `INBOX/`) or `yes` (beside INBOX). Listens on a port the
//! kernel picks, read back from the master's socket. A missing Cyrus fails
//! the test.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use super::imap_reader::Fetched;
use super::imap_reader::{RawImap, quoted};

/// The Cyrus admin the writer logs in as (listed in `proxyservers`).
pub const ADMIN: &str = "archiver-admin";
/// Its password.
pub const ADMIN_PASSWORD: &str = "cyrus-admin-pw-91c2";

const BIN: &str = "/usr/lib/cyrus/bin";

/// A running Cyrus.
pub struct Cyrus {
    dir: tempfile::TempDir,
    pub port: u16,
    /// `altnamespace: yes`: personal folders beside INBOX, not under it.
    pub altnamespace: bool,
    child: Option<Child>,
}

impl Cyrus {
    /// Starts Cyrus with a mailbox for each of `users`.
    pub fn start(users: &[&str], altnamespace: bool) -> Cyrus {
        let master = Path::new(BIN).join("master");
        assert!(
            master.exists() && Path::new("/usr/sbin/saslpasswd2").exists(),
            "Cyrus IMAP is not installed, and this test needs it: run \
             scripts/install-test-deps.sh (apt-get install cyrus-imapd sasl2-bin)"
        );
        let dir = tempfile::Builder::new()
            .prefix("cyrus-")
            .tempdir()
            .expect("temp dir");
        for sub in ["conf", "spool", "sieve", "socket", "lock", "proc"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("cyrus dirs");
        }
        let user = run_as();
        std::fs::write(
            dir.path().join("imapd.conf"),
            imapd_conf(dir.path(), altnamespace, &user),
        )
        .expect("imapd.conf");
        std::fs::write(dir.path().join("cyrus.conf"), cyrus_conf(dir.path())).expect("cyrus.conf");
        make_admin(dir.path());
        chown_tree(dir.path(), &user);
        let mut cyrus = Cyrus {
            dir,
            port: 0,
            altnamespace,
            child: None,
        };
        cyrus.launch(&master);
        for user in users {
            cyrus.create_mailbox(user);
        }
        cyrus
    }

    fn launch(&mut self, master: &Path) {
        let log = std::fs::File::create(self.dir.path().join("master.log")).expect("log file");
        let child = Command::new(master)
            .arg("-C")
            .arg(self.dir.path().join("imapd.conf"))
            .arg("-M")
            .arg(self.dir.path().join("cyrus.conf"))
            .arg("-p")
            .arg(self.dir.path().join("master.pid"))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start Cyrus master");
        self.child = Some(child);
        self.port = self.wait_for_port();
    }

    /// The port the master listens on, once it does: the kernel chose it
    /// (`listen="127.0.0.1:0"`), so it is read from the master's socket.
    fn wait_for_port(&mut self) -> u16 {
        let child = self.child.as_mut().expect("started");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(port) = listening_port(child.id())
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("Cyrus master exited ({status}) at start:\n{}", self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "Cyrus did not listen within 30 s:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The master's own output (Cyrus logs the rest to syslog).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("master.log")).unwrap_or_default()
    }

    /// An IMAP session of the admin as itself.
    pub fn admin(&self) -> RawImap {
        let mut session = RawImap::connect(self.port);
        session.authenticate_plain("", ADMIN, ADMIN_PASSWORD);
        session
    }

    /// An IMAP session of the admin acting as `user`.
    pub fn session(&self, user: &str) -> RawImap {
        let mut session = RawImap::connect(self.port);
        session.authenticate_plain(user, ADMIN, ADMIN_PASSWORD);
        session
    }

    /// Creates `user`'s mailbox (`user/<address>`), as an admin would
    /// with cyradm.
    pub fn create_mailbox(&self, user: &str) {
        let done = self
            .admin()
            .command(&format!("CREATE {}", quoted(&format!("user/{user}"))));
        assert!(done.ok, "creating the mailbox of {user}: {}", done.status);
    }

    /// Lets `user` have no folder besides INBOX (a folder-count quota),
    /// so that creating the archive folder is refused.
    pub fn forbid_creating_folders(&self, user: &str) {
        let done = self.admin().command(&format!(
            "SETQUOTA {} (X-NUM-FOLDERS 1)",
            quoted(&format!("user/{user}"))
        ));
        assert!(done.ok, "SETQUOTA for {user}: {}", done.status);
    }

    /// The name `user` sees `folder` under: in the personal namespace,
    /// which is `INBOX/` unless `altnamespace` is on.
    pub fn personal(&self, folder: &str) -> String {
        if self.altnamespace {
            folder.to_owned()
        } else {
            format!("INBOX/{folder}")
        }
    }

    /// Everything in the personal `folder` of `user`; `None` when the
    /// folder does not exist.
    pub fn fetch_all(&self, user: &str, folder: &str) -> Option<Vec<Fetched>> {
        self.session(user).fetch_all(&self.personal(folder))
    }

    /// The folders `user` has, as the server names them.
    pub fn folders(&self, user: &str) -> Vec<String> {
        let listed = self.session(user).command("LIST \"\" \"*\"");
        assert!(listed.ok, "LIST: {}", listed.status);
        listed
            .lines
            .iter()
            .filter_map(|l| l.text.strip_prefix("* LIST "))
            .filter_map(|l| l.rsplit_once(" \"/\" "))
            .map(|(_, name)| name.trim_matches('"').to_owned())
            .collect()
    }

    /// Stops the server and every process of it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = format!("-{}", child.id());
        signal("-TERM", &group);
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        signal("-KILL", &group);
    }
}

impl Drop for Cyrus {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Who Cyrus runs as: `cyrus` when the tests run as root (the master
/// drops to it), else the user running the tests.
struct RunAs {
    name: String,
    ids: Option<(u32, u32)>,
}

fn run_as() -> RunAs {
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX);
    if uid == 0 {
        let ids = passwd_ids("cyrus").expect("the cyrus user, which cyrus-common creates");
        RunAs {
            name: "cyrus".to_owned(),
            ids: Some(ids),
        }
    } else {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let name = passwd
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 3 && f[2].parse() == Ok(uid)).then(|| f[0].to_owned())
            })
            .expect("a named user for Cyrus's cyrus_user");
        RunAs { name, ids: None }
    }
}

fn passwd_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

fn imapd_conf(dir: &Path, altnamespace: bool, user: &RunAs) -> String {
    let d = dir.display();
    let alt = if altnamespace { "yes" } else { "no" };
    format!(
        "configdirectory: {d}/conf
defaultpartition: default
partition-default: {d}/spool
sievedir: {d}/sieve
idlesocket: {d}/socket/idle
notifysocket: {d}/socket/notify
lmtpsocket: {d}/socket/lmtp
mboxname_lockpath: {d}/lock
proc_path: {d}/proc
cyrus_user: {name}
admins: {ADMIN}
proxyservers: {ADMIN}
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {d}/sasldb2
sasl_mech_list: PLAIN
allowplaintext: yes
virtdomains: userid
unixhierarchysep: yes
altnamespace: {alt}
syslog_prefix: wechat-archiver-test-cyrus
",
        name = user.name
    )
}

fn cyrus_conf(dir: &Path) -> String {
    let conf = dir.join("imapd.conf");
    let c = conf.display();
    format!(
        "START {{
  recover cmd=\"{BIN}/ctl_cyrusdb -C {c} -r\"
}}
SERVICES {{
  imap cmd=\"{BIN}/imapd -C {c}\" listen=\"127.0.0.1:0\" prefork=0
}}
EVENTS {{
}}
DAEMON {{
}}
"
    )
}

/// The admin's entry in the instance's own SASL database.
fn make_admin(dir: &Path) {
    use std::io::Write;
    let mut child = Command::new("/usr/sbin/saslpasswd2")
        .args(["-p", "-c", "-f"])
        .arg(dir.join("sasldb2"))
        .arg(ADMIN)
        .stdin(Stdio::piped())
        .spawn()
        .expect("saslpasswd2 (sasl2-bin)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(ADMIN_PASSWORD.as_bytes())
        .expect("password to saslpasswd2");
    let status = child.wait().expect("saslpasswd2");
    assert!(status.success(), "saslpasswd2 failed: {status}");
}

fn chown_tree(dir: &Path, user: &RunAs) {
    let Some((uid, gid)) = user.ids else { return };
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).expect("chown test dir");
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read dir") {
                stack.push(entry.expect("dir entry").path());
            }
        }
    }
}

/// The TCP port process `pid` listens on, from its sockets in /proc.
fn listening_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let listening = f.get(3) == Some(&"0A");
        let inode = f.get(9)?;
        if !listening || !inodes.iter().any(|i| i == inode) {
            return None;
        }
        let (_, port) = f.get(1)?.split_once(':')?;
        u16::from_str_radix(port, 16).ok()
    })
}

fn signal(sig: &str, group: &str) -> bool {
    Command::new("kill")
        .args([sig, "--", group])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
