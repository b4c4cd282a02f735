//! A real Dovecot for tests: started unprivileged on a free loopback port
//! with its own configuration, users, master user and Maildirs under a
//! temporary directory, stopped when dropped. When the tests run as root,
//! Dovecot runs as `nobody` (Dovecot never lets mail processes run as
//! root). A missing `dovecot` binary fails the test: it must not pass
//! without having checked anything.
//! What the tests read back goes through [`super::imap_reader`], not the
//! crate's own client.

use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use super::imap_reader::Fetched;
use super::imap_reader::RawImap;
use super::ports::ReservedPort;

/// The Dovecot master user the writer logs in as.
pub const ADMIN: &str = "archiver-admin";
/// Its password.
pub const ADMIN_PASSWORD: &str = "master-pw-5e3a";
/// Dovecot's `auth_master_user_separator`.
pub const SEPARATOR: char = '*';

/// A mail user of the test server.
#[derive(Clone)]
pub struct User {
    pub address: String,
    /// A storage quota in KiB (`quota_rule=*:storage=`), to provoke
    /// `NO [OVERQUOTA]` on APPEND.
    pub quota_kib: Option<u64>,
}

impl User {
    pub fn new(address: &str) -> User {
        User {
            address: address.to_owned(),
            quota_kib: None,
        }
    }

    pub fn with_quota_kib(address: &str, kib: u64) -> User {
        User {
            address: address.to_owned(),
            quota_kib: Some(kib),
        }
    }
}

/// A running Dovecot.
pub struct Dovecot {
    dir: tempfile::TempDir,
    pub port: u16,
    /// The `imaps` port, when started with TLS.
    pub tls_port: Option<u16>,
    owner: (u32, u32),
    child: Option<Child>,
    /// The ports, held bound (not listening) for Dovecot's lifetime.
    _reserved: (ReservedPort, Option<ReservedPort>),
}

impl Dovecot {
    /// Starts Dovecot with these users and plain IMAP only.
    pub fn start(users: &[&str]) -> Dovecot {
        let users: Vec<User> = users.iter().map(|u| User::new(u)).collect();
        Dovecot::start_with(&users, false)
    }

    /// Starts Dovecot; with `tls`, also an `imaps` listener whose
    /// certificate (for `localhost` and 127.0.0.1) is signed by a test CA,
    /// see [`Dovecot::ca_file`].
    pub fn start_with(users: &[User], tls: bool) -> Dovecot {
        Dovecot::start_full(users, tls, None)
    }

    /// Starts Dovecot that also takes SASL XOAUTH2, checking each bearer
    /// token with its `oauth2` passdb against the token-introspection
    /// endpoint at `introspection_url` (RFC 7662, POST): it must be active
    /// and for Exchange Online's scope. As with Exchange Online's app-only
    /// tokens, a token names the application, not a user, so any mailbox
    /// may log in with it (`username_format` is a constant, the same on
    /// both sides of Dovecot's comparison); the mailbox must exist (userdb).
    pub fn start_oauth2(users: &[&str], introspection_url: &str) -> Dovecot {
        let users: Vec<User> = users.iter().map(|u| User::new(u)).collect();
        Dovecot::start_full(&users, false, Some(introspection_url))
    }

    fn start_full(users: &[User], tls: bool, introspection_url: Option<&str>) -> Dovecot {
        let binary = dovecot_binary();
        let dir = tempfile::Builder::new()
            .prefix("dovecot-")
            .tempdir()
            .expect("temp dir");
        let owner = run_as(dir.path());
        // Kept bound while Dovecot runs, so no other test's server gets them.
        let reserved = ReservedPort::new();
        let reserved_tls = tls.then(ReservedPort::new);
        let (port, tls_port) = (reserved.port, reserved_tls.as_ref().map(|r| r.port));
        for sub in ["run", "state", "mail", "home"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("dovecot dirs");
        }
        if tls {
            make_certificates(dir.path());
        }
        write_users(dir.path(), users, owner);
        let mut config = config_text(dir.path(), port, tls_port, owner);
        if let Some(url) = introspection_url {
            config = with_oauth2(dir.path(), &config, url);
        }
        std::fs::write(dir.path().join("dovecot.conf"), config).expect("dovecot.conf");
        chown_tree(dir.path(), owner);
        let mut dovecot = Dovecot {
            dir,
            port,
            tls_port,
            _reserved: (reserved, reserved_tls),
            owner,
            child: None,
        };
        dovecot.launch(&binary);
        dovecot
    }

    fn launch(&mut self, binary: &Path) {
        let log = std::fs::File::create(self.dir.path().join("stdout.log")).expect("log file");
        let mut command = Command::new(binary);
        command
            .arg("-F")
            .arg("-c")
            .arg(self.dir.path().join("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .process_group(0);
        if current_uid() == 0 {
            command.uid(self.owner.0).gid(self.owner.1);
        }
        let child = command.spawn().expect("start dovecot");
        self.child = Some(child);
        self.wait_until_listening();
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("Dovecot exited ({status}) at start:\n{}", self.logs());
            }
            if Instant::now() > deadline {
                panic!(
                    "Dovecot did not listen on port {} within 15s:\n{}",
                    self.port,
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server as an admin restarting it would (SIGTERM), and
    /// waits until every Dovecot process of this instance, open IMAP
    /// sessions included, is gone: a client connection must not outlive it.
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
        let deadline = Instant::now() + Duration::from_secs(5);
        while signal("-0", &group) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        signal("-KILL", &group);
    }

    /// Starts the stopped server again on the same port with the same mail.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "Dovecot is still running");
        self.launch(&dovecot_binary());
    }

    /// Dovecot's own log, for failure messages.
    pub fn logs(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("stdout.log"), read("dovecot.log"))
    }

    /// The PEM file of the CA that signed the `imaps` certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Everything in `folder` of `user`, read over IMAP as the master
    /// user; `None` when the folder does not exist.
    pub fn fetch_all(&self, user: &str, folder: &str) -> Option<Vec<Fetched>> {
        self.session(user).fetch_all(folder)
    }

    /// Whether `user` has `folder` among its subscriptions.
    pub fn is_subscribed(&self, user: &str, folder: &str) -> bool {
        self.session(user).is_subscribed(folder)
    }

    /// A session of `user`, logged in as the master user.
    pub fn session(&self, user: &str) -> RawImap {
        let mut session = RawImap::connect(self.port);
        session.login(&format!("{user}{SEPARATOR}{ADMIN}"), ADMIN_PASSWORD);
        session
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends a signal to a process group; whether one was there to get it.
fn signal(sig: &str, group: &str) -> bool {
    Command::new("kill")
        .args([sig, "--", group])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn dovecot_binary() -> PathBuf {
    for candidate in ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    let found = Command::new("sh")
        .args(["-c", "command -v dovecot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match found {
        Some(path) if !path.is_empty() => path.into(),
        _ => panic!(
            "Dovecot is not installed, and this test needs a real IMAP server: \
             apt-get install -y dovecot-imapd dovecot-core"
        ),
    }
}

fn current_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

/// The uid and gid Dovecot and its mail run as: this user, or `nobody`
/// when the tests run as root.
fn run_as(dir: &Path) -> (u32, u32) {
    let meta = std::fs::metadata(dir).expect("temp dir metadata");
    if meta.uid() == 0 {
        (65534, 65534)
    } else {
        (meta.uid(), meta.gid())
    }
}

fn name_of(file: &str, id: u32) -> String {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let found: u32 = fields.nth(1)?.parse().ok()?;
            (found == id).then(|| name.to_owned())
        })
        .unwrap_or_else(|| panic!("no entry for id {id} in {file}; Dovecot needs named users"))
}

fn write_users(dir: &Path, users: &[User], owner: (u32, u32)) {
    std::fs::write(
        dir.join("masters"),
        format!("{ADMIN}:{{PLAIN}}{ADMIN_PASSWORD}\n"),
    )
    .expect("masters");
    let mut text = String::new();
    for user in users {
        let extra = user
            .quota_kib
            .map(|kib| format!("userdb_quota_rule=*:storage={kib}K"))
            .unwrap_or_default();
        // The users' own passwords are random: only the master user logs in.
        text.push_str(&format!(
            "{}:{{PLAIN}}{}:{}:{}::{}::{extra}\n",
            user.address,
            rand_password(),
            owner.0,
            owner.1,
            dir.join("home").join(&user.address).display()
        ));
    }
    std::fs::write(dir.join("users"), text).expect("users");
}

fn rand_password() -> String {
    format!("{:x}", rand::random::<u128>())
}

fn config_text(dir: &Path, port: u16, tls_port: Option<u16>, owner: (u32, u32)) -> String {
    let user = name_of("/etc/passwd", owner.0);
    let group = name_of("/etc/group", owner.1);
    let d = dir.display();
    let imapd = imapd_dir();
    let services = imap_services(&imapd);
    let ssl = match tls_port {
        Some(_) => format!("ssl = yes\nssl_cert = <{d}/server.pem\nssl_key = <{d}/server.key\n"),
        None => "ssl = no\n".to_owned(),
    };
    let imaps = match tls_port {
        Some(p) => format!(
            "  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {p}\n    ssl = yes\n  }}\n"
        ),
        None => "  inet_listener imaps {\n    port = 0\n  }\n".to_owned(),
    };
    format!(
        r#"protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
{ssl}disable_plaintext_auth = no
auth_mechanisms = plain login
auth_master_user_separator = {SEPARATOR}
auth_failure_delay = 0
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:{d}/mail/%u
mail_plugins = quota
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/masters
  master = yes
  pass = yes
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/users
}}
plugin {{
  quota = maildir:User quota
}}
{services}service imap-login {{
  executable = {imapd}/imap-login
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
{imaps}  chroot =
}}
service pop3-login {{
  chroot =
}}
service anvil {{
  chroot =
}}
"#,
        uid = owner.0,
        gid = owner.1,
        imapd = imapd.display(),
    )
}

/// Adds the XOAUTH2 mechanism and an `oauth2` passdb for it (the users'
/// own passdb keeps to PLAIN and LOGIN).
fn with_oauth2(dir: &Path, config: &str, introspection_url: &str) -> String {
    let d = dir.display();
    std::fs::write(
        dir.join("dovecot-oauth2.conf.ext"),
        format!(
            "introspection_mode = post\nintrospection_url = {introspection_url}\n\
             username_attribute = username\nusername_format = app-only\n\
             active_attribute = active\nactive_value = true\n\
             scope = https://outlook.office365.com/.default\n"
        ),
    )
    .expect("dovecot-oauth2.conf.ext");
    config
        .replace(
            "auth_mechanisms = plain login\n",
            "auth_mechanisms = plain login xoauth2\n",
        )
        .replace(
            &format!("  args = scheme=PLAIN username_format=%u {d}/users\n}}"),
            &format!(
                "  args = scheme=PLAIN username_format=%u {d}/users\n  mechanisms = plain login\n}}\n\
                 passdb {{\n  driver = oauth2\n  mechanisms = xoauth2\n  args = {d}/dovecot-oauth2.conf.ext\n}}"
            ),
        )
}

/// Where the IMAP half of Dovecot is: unpacked beside Cyrus by
/// `scripts/install-test-deps.sh` (Debian's `dovecot-imapd` and
/// `cyrus-imapd` conflict), else where `dovecot-imapd` installs it.
pub const UNPACKED_IMAPD: &str = "/var/cache/wechat-archiver-tests/dovecot-imapd/usr/lib/dovecot";

fn imapd_dir() -> PathBuf {
    for dir in [UNPACKED_IMAPD, "/usr/lib/dovecot"] {
        if Path::new(dir).join("imap").exists() && Path::new(dir).join("imap-login").exists() {
            return dir.into();
        }
    }
    panic!(
        "Dovecot's IMAP server (dovecot-imapd) is missing, and this test needs a real IMAP \
         server: run scripts/install-test-deps.sh"
    )
}

/// `service` sections running the IMAP processes from `imapd`.
fn imap_services(imapd: &Path) -> String {
    [
        "imap",
        "imap-hibernate",
        "imap-urlauth",
        "imap-urlauth-login",
        "imap-urlauth-worker",
    ]
    .iter()
    .map(|name| {
        format!(
            "service {name} {{\n  executable = {}/{name}\n}}\n",
            imapd.display()
        )
    })
    .collect()
}

/// A test CA (`ca.pem`) and a server certificate it signed for `localhost`
/// and 127.0.0.1 (`server.pem`, `server.key`), made in `dir`.
pub fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is needed to make the test certificates");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=wechat-archiver test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("server.ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
}

fn chown_tree(dir: &Path, owner: (u32, u32)) {
    if current_uid() != 0 {
        return;
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        std::os::unix::fs::chown(&path, Some(owner.0), Some(owner.1)).expect("chown test dir");
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read dir") {
                stack.push(entry.expect("dir entry").path());
            }
        }
    }
}
