//! A private, real Postfix (Debian's `postfix`) in front of `receive`:
//! its own `config_directory` and `queue_directory` under a temp dir,
//! started with `postfix -c DIR start` (the tests run as root), SMTP on a
//! reserved loopback port, and every message for the relay domain handed
//! over LMTP to `127.0.0.1:PORT`. Its log goes to a file of its own under
//! `/var/log` (Postfix refuses a `maillog_file` outside
//! `maillog_file_prefixes`), which the tests read to wait on deliveries.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::ports::ReservedPort;

const POSTFIX: &str = "/usr/sbin/postfix";
const POSTQUEUE: &str = "/usr/sbin/postqueue";
/// Where the instances' logs go: under `/var`, as Postfix requires.
const LOG_DIR: &str = "/var/log/wechat-archiver-tests";
/// How long a delivery may take before a wait gives up.
const PATIENCE: Duration = Duration::from_secs(60);

/// A running private Postfix instance; stopped and removed on drop.
pub struct Postfix {
    dir: tempfile::TempDir,
    /// The SMTP port on 127.0.0.1.
    pub smtp_port: u16,
    log: PathBuf,
    _reserved: ReservedPort,
}

/// Where the instance hands the relay domain's mail.
pub enum Relay<'a> {
    /// Over LMTP to `receive` on 127.0.0.1:PORT.
    Lmtp(u16),
    /// To a `pipe` service running this command (Postfix's `argv=`, which
    /// may use `${recipient}`) as user `nobody`, one recipient per run, as
    /// the README's `deliver` set-up does.
    Pipe(&'a str),
}

/// Configuration added to an instance; see [`Postfix::start_configured`].
#[derive(Default)]
pub struct Extra {
    pub main_cf: String,
    /// Lookup tables by file name, in the configuration directory.
    pub tables: Vec<(String, String)>,
}

/// What one SMTP transaction got back.
#[derive(Debug)]
pub struct Queued {
    /// Postfix's queue ID, as its log lines name the message.
    pub queue_id: String,
}

impl Postfix {
    /// Starts an instance relaying `domain` to an LMTP server on
    /// 127.0.0.1:`lmtp_port`. A missing Postfix fails the test.
    pub fn start(domain: &str, lmtp_port: u16) -> Postfix {
        Postfix::start_relaying(domain, Relay::Lmtp(lmtp_port))
    }

    /// Starts an instance relaying `domain` as `relay` says.
    pub fn start_relaying(domain: &str, relay: Relay<'_>) -> Postfix {
        Postfix::start_configured(domain, relay, |_| Extra::default())
    }

    /// Starts an instance relaying `domain` as `relay` says, with what
    /// `extra` returns (given the configuration directory) added: lines
    /// for `main.cf` (later ones win) and lookup tables, each `postmap`ed.
    pub fn start_configured(
        domain: &str,
        relay: Relay<'_>,
        extra: impl FnOnce(&Path) -> Extra,
    ) -> Postfix {
        assert!(
            Path::new(POSTFIX).exists(),
            "Postfix is not installed ({POSTFIX} is missing): run scripts/install-test-deps.sh"
        );
        let dir = tempfile::Builder::new()
            .prefix("postfix-")
            .tempdir()
            .expect("temp dir");
        // Postfix's daemons run as the `postfix` user inside the queue.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(LOG_DIR).unwrap();
        let name = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let log = Path::new(LOG_DIR).join(format!("{name}.log"));
        let reserved = ReservedPort::new();
        let postfix = Postfix {
            smtp_port: reserved.port,
            log,
            dir,
            _reserved: reserved,
        };
        postfix.write_config(domain, &relay);
        let extra = extra(&postfix.config_dir());
        postfix.add_config(&extra);
        let started = postfix.postfix(&["start"]);
        assert!(
            started.status.success(),
            "postfix start failed: {}{}\nlog:\n{}",
            String::from_utf8_lossy(&started.stdout),
            String::from_utf8_lossy(&started.stderr),
            postfix.logs()
        );
        postfix.wait_listening();
        postfix
    }

    fn config_dir(&self) -> PathBuf {
        self.dir.path().join("conf")
    }

    fn write_config(&self, domain: &str, relay: &Relay<'_>) {
        let root = self.dir.path();
        let data = root.join("data");
        for d in [self.config_dir(), root.join("queue"), data.clone()] {
            std::fs::create_dir_all(d).unwrap();
        }
        let chown = Command::new("chown")
            .arg("postfix")
            .arg(&data)
            .status()
            .unwrap();
        assert!(chown.success(), "chown postfix {}", data.display());
        let main_cf = format!(
            "compatibility_level = 3.6\n\
             queue_directory = {queue}\n\
             data_directory = {data}\n\
             syslog_name = postfix-{name}\n\
             maillog_file = {log}\n\
             myhostname = mx.test.example\n\
             inet_interfaces = loopback-only\n\
             inet_protocols = ipv4\n\
             mydestination =\n\
             alias_maps =\n\
             alias_database =\n\
             local_recipient_maps =\n\
             mynetworks = 127.0.0.0/8\n\
             smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n\
             relay_domains = {domain}\n\
             relay_transport = {transport}\n\
             wechat_destination_recipient_limit = 1\n\
             biff = no\n",
            queue = root.join("queue").display(),
            data = data.display(),
            name = root.file_name().unwrap().to_string_lossy(),
            log = self.log.display(),
            transport = match relay {
                Relay::Lmtp(port) => format!("lmtp:inet:127.0.0.1:{port}"),
                Relay::Pipe(_) => "wechat:".to_owned(),
            },
        );
        std::fs::write(self.config_dir().join("main.cf"), main_cf).unwrap();
        let mut master_cf = format!(
            "127.0.0.1:{port} inet n - n - - smtpd\n{MASTER_SERVICES}",
            port = self.smtp_port
        );
        if let Relay::Pipe(argv) = relay {
            master_cf.push_str(&format!(
                "wechat unix - n n - 1 pipe\n  flags=Rq user=nobody argv={argv}\n"
            ));
        }
        std::fs::write(self.config_dir().join("master.cf"), master_cf).unwrap();
    }

    fn add_config(&self, extra: &Extra) {
        let conf = self.config_dir();
        let main_cf = conf.join("main.cf");
        let mut text = std::fs::read_to_string(&main_cf).unwrap();
        text.push_str(&extra.main_cf);
        std::fs::write(&main_cf, text).unwrap();
        for (name, table) in &extra.tables {
            let path = conf.join(name);
            std::fs::write(&path, table).unwrap();
            let out = Command::new("/usr/sbin/postmap")
                .arg("-c")
                .arg(&conf)
                .arg(&path)
                .output()
                .expect("run postmap");
            assert!(out.status.success(), "postmap {}: {out:?}", path.display());
        }
    }

    fn postfix(&self, args: &[&str]) -> std::process::Output {
        Command::new(POSTFIX)
            .arg("-c")
            .arg(self.config_dir())
            .args(args)
            .output()
            .expect("run postfix")
    }

    /// Postfix's master daemon listens once `postfix start` returns, but
    /// its smtpd may still be starting: the banner is the event.
    fn wait_listening(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", self.smtp_port)) {
                let mut banner = String::new();
                let _ = BufReader::new(stream).read_line(&mut banner);
                if banner.starts_with("220") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "Postfix did not answer on {}; log:\n{}",
                self.smtp_port,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything Postfix logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends one message over SMTP, as TeleMessage's forwarding does.
    pub fn send(&self, from: &str, recipients: &[&str], message: &str) -> Queued {
        let mut smtp = Smtp::connect(self.smtp_port);
        let queued = smtp.send(from, recipients, message);
        smtp.quit();
        queued
    }

    /// Waits until the log has a line about `queued` that contains `what`
    /// (say `status=sent`) for `count` recipients; returns those lines.
    pub fn wait_for(&self, queued: &Queued, what: &str, count: usize) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let lines: Vec<String> = self
                .logs()
                .lines()
                .filter(|l| l.contains(&format!("{}: to=<", queued.queue_id)) && l.contains(what))
                .map(str::to_owned)
                .collect();
            if lines.len() >= count {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "no {count} line(s) with '{what}' for {} in Postfix's log:\n{}",
                queued.queue_id,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The messages Postfix still holds: queue ID and queue name
    /// (`active`, `deferred`, ...).
    pub fn queue(&self) -> Vec<(String, String)> {
        let out = Command::new(POSTQUEUE)
            .arg("-c")
            .arg(self.config_dir())
            .arg("-j")
            .output()
            .expect("run postqueue");
        assert!(out.status.success(), "postqueue -j: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let field = |k: &str| v[k].as_str().unwrap().to_owned();
                (field("queue_id"), field("queue_name"))
            })
            .collect()
    }

    /// Waits until `queued` sits in the deferred queue: Postfix logs the
    /// deferral before its queue manager moves the message there, and
    /// `postqueue -f` only retries what is there by then.
    pub fn wait_deferred(&self, queued: &Queued) {
        let deadline = Instant::now() + PATIENCE;
        let wanted = (queued.queue_id.clone(), "deferred".to_owned());
        loop {
            let queue = self.queue();
            if queue.contains(&wanted) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} never reached the deferred queue: {queue:?}",
                queued.queue_id
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `postqueue -f`: retry every deferred message now.
    pub fn flush(&self) {
        let out = Command::new(POSTQUEUE)
            .arg("-c")
            .arg(self.config_dir())
            .arg("-f")
            .output()
            .expect("run postqueue");
        assert!(out.status.success(), "postqueue -f: {out:?}");
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = self.postfix(&["stop"]);
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The services besides `smtpd`, as Debian's `master.cf` has them but
/// not chrooted (the queue is a temp dir with no chroot files).
const MASTER_SERVICES: &str = "\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
";

/// A minimal SMTP client (RFC 5321, with STARTTLS: RFC 3207), as a
/// sending MTA talks.
pub struct Smtp {
    conn: BufReader<Conn>,
}

/// The connection, before and after STARTTLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    /// Only while changing from one to the other.
    Gone,
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
            Conn::Gone => Ok(0),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
            Conn::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
            Conn::Gone => Ok(()),
        }
    }
}

impl Smtp {
    pub fn connect(port: u16) -> Smtp {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to Postfix");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut smtp = Smtp {
            conn: BufReader::new(Conn::Plain(stream)),
        };
        smtp.expect("220");
        smtp.command("EHLO mail.telemessage.example", "250");
        smtp
    }

    /// STARTTLS, verifying the server as `localhost` against the CA in
    /// `ca_pem`; then EHLO again, as RFC 3207 requires.
    pub fn start_tls(&mut self, ca_pem: &Path) {
        use rustls::pki_types::pem::PemObject;
        self.command("STARTTLS", "220");
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca_pem).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let client = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
        let Conn::Plain(tcp) = std::mem::replace(self.conn.get_mut(), Conn::Gone) else {
            panic!("STARTTLS twice")
        };
        *self.conn.get_mut() = Conn::Tls(Box::new(rustls::StreamOwned::new(client, tcp)));
        self.command("EHLO mail.telemessage.example", "250");
    }

    fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            self.conn.read_line(&mut line).unwrap();
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }

    fn expect(&mut self, code: &str) -> String {
        let reply = self.reply();
        assert!(reply.starts_with(code), "expected {code}, got {reply}");
        reply
    }

    /// Sends one command line and returns the reply, which must start
    /// with `code`.
    pub fn command(&mut self, line: &str, code: &str) -> String {
        let conn = self.conn.get_mut();
        conn.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        conn.flush().unwrap();
        self.expect(code)
    }

    /// One transaction; Postfix's queue ID from its `250 ... queued as`.
    pub fn send(&mut self, from: &str, recipients: &[&str], message: &str) -> Queued {
        self.command(&format!("MAIL FROM:<{from}>"), "250");
        for r in recipients {
            self.command(&format!("RCPT TO:<{r}>"), "250");
        }
        self.command("DATA", "354");
        let mut data = Vec::new();
        for line in message.split_inclusive("\r\n") {
            if line.starts_with('.') {
                data.push(b'.');
            }
            data.extend_from_slice(line.as_bytes());
        }
        self.conn.get_mut().write_all(&data).unwrap();
        let reply = self.command(".", "250");
        let queue_id = reply
            .trim_end()
            .rsplit(' ')
            .next()
            .expect("a queue ID")
            .to_owned();
        Queued { queue_id }
    }

    pub fn quit(mut self) {
        self.command("QUIT", "221");
    }
}
