//! A real Dovecot for tests: started unprivileged on a free loopback port
//! with its own configuration, users, master user and Maildirs under a
//! temporary directory, stopped when dropped. When the tests run as root,
//! Dovecot runs as `nobody` (Dovecot never lets mail processes run as
//! root). A missing `dovecot` binary fails the test: it must not pass
//! without having checked anything.
//!
//! Also a small blocking IMAP reader, written separately from the crate's
//! client so that what the tests read back does not depend on the code
//! under test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
        let binary = dovecot_binary();
        let dir = tempfile::Builder::new()
            .prefix("dovecot-")
            .tempdir()
            .expect("temp dir");
        let owner = run_as(dir.path());
        let port = free_port();
        let tls_port = tls.then(free_port);
        for sub in ["run", "state", "mail", "home"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("dovecot dirs");
        }
        if tls {
            make_certificates(dir.path());
        }
        write_users(dir.path(), users, owner);
        let config = config_text(dir.path(), port, tls_port, owner);
        std::fs::write(dir.path().join("dovecot.conf"), config).expect("dovecot.conf");
        chown_tree(dir.path(), owner);
        let mut dovecot = Dovecot {
            dir,
            port,
            tls_port,
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
        let mut session = RawImap::login(self.port, user);
        let examined = session.command(&format!("EXAMINE {}", quoted(folder)));
        if !examined.ok {
            return None;
        }
        let uid_validity = examined
            .lines
            .iter()
            .find_map(|l| between(&l.text, "[UIDVALIDITY ", "]"))
            .and_then(|v| v.parse().ok())
            .expect("UIDVALIDITY in EXAMINE answer");
        let fetched = session.command("UID FETCH 1:* (UID FLAGS INTERNALDATE BODY.PEEK[])");
        assert!(fetched.ok, "FETCH failed: {}", fetched.status);
        let mut messages: Vec<Fetched> = fetched
            .lines
            .into_iter()
            .filter(|l| l.text.contains(" FETCH ("))
            .map(|l| Fetched::parse(l, uid_validity))
            .collect();
        messages.sort_by_key(|m| m.uid);
        Some(messages)
    }

    /// Whether `user` has `folder` among its subscriptions.
    pub fn is_subscribed(&self, user: &str, folder: &str) -> bool {
        let mut session = RawImap::login(self.port, user);
        let listed = session.command(&format!("LSUB \"\" {}", quoted(folder)));
        listed.lines.iter().any(|l| l.text.starts_with("* LSUB"))
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One message as the server holds it.
#[derive(Debug)]
pub struct Fetched {
    pub uid: u32,
    pub uid_validity: u32,
    pub flags: Vec<String>,
    /// As the server reports it, e.g. `22-Nov-2026 08:15:00 +0000`.
    pub internal_date: String,
    pub body: Vec<u8>,
}

impl Fetched {
    fn parse(line: Answer, uid_validity: u32) -> Fetched {
        let text = &line.text;
        let uid = between(text, "UID ", " ")
            .or_else(|| between(text, "UID ", ")"))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no UID in {text:?}"));
        let flags = between(text, "FLAGS (", ")")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let internal_date = between(text, "INTERNALDATE \"", "\"")
            .unwrap_or_else(|| panic!("no INTERNALDATE in {text:?}"))
            .trim()
            .to_owned();
        let body = line.literals.into_iter().next().expect("BODY[] literal");
        Fetched {
            uid,
            uid_validity,
            flags,
            internal_date,
            body,
        }
    }

    /// The value of the item-id trace header.
    pub fn item_id(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.body);
        text.lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| l.strip_prefix("X-WeChat-Archiver-Item-Id: "))
            .map(|v| v.trim().to_owned())
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One server answer: its text with each literal replaced by `{}`, and the
/// literals.
struct Answer {
    text: String,
    literals: Vec<Vec<u8>>,
}

struct Completed {
    ok: bool,
    status: String,
    lines: Vec<Answer>,
}

struct RawImap {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    tag: u32,
}

impl RawImap {
    fn login(port: u16, user: &str) -> RawImap {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to Dovecot");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let mut session = RawImap {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
            tag: 0,
        };
        let greeting = session.answer();
        assert!(
            greeting.text.starts_with("* OK"),
            "greeting {:?}",
            greeting.text
        );
        let login = format!(
            "LOGIN {} {}",
            quoted(&format!("{user}{SEPARATOR}{ADMIN}")),
            quoted(ADMIN_PASSWORD)
        );
        let done = session.command(&login);
        assert!(done.ok, "master login as {user} failed: {}", done.status);
        session
    }

    fn command(&mut self, command: &str) -> Completed {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        write!(self.writer, "{tag} {command}\r\n").expect("send");
        let mut lines = Vec::new();
        loop {
            let answer = self.answer();
            if let Some(status) = answer.text.strip_prefix(&format!("{tag} ")) {
                return Completed {
                    ok: status.starts_with("OK"),
                    status: status.to_owned(),
                    lines,
                };
            }
            lines.push(answer);
        }
    }

    fn answer(&mut self) -> Answer {
        let mut text = String::new();
        let mut literals = Vec::new();
        loop {
            let mut line = Vec::new();
            self.reader
                .read_until(b'\n', &mut line)
                .expect("read from Dovecot");
            assert!(!line.is_empty(), "Dovecot closed the connection");
            let line = String::from_utf8_lossy(&line)
                .trim_end_matches(['\r', '\n'])
                .to_owned();
            let literal = line
                .strip_suffix('}')
                .and_then(|l| l.rsplit_once('{'))
                .and_then(|(_, n)| n.parse::<usize>().ok());
            text.push_str(&line);
            let Some(len) = literal else {
                return Answer { text, literals };
            };
            let mut bytes = vec![0; len];
            self.reader.read_exact(&mut bytes).expect("read literal");
            literals.push(bytes);
        }
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

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
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
service imap-login {{
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
    )
}

fn make_certificates(dir: &Path) {
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
