//! Shared by the `login` and secret-fallback tests: a TeleMessage stand-in
//! that answers `POST /v1/auth/token` on loopback, a home with one
//! connector, the binary run with a controlled environment, and access to
//! the real Secret Service through `secret-tool`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};
use wechat_archiver::config::{Config, ConnectorConfig, Home};

pub const BIN: &str = env!("CARGO_BIN_EXE_wechat-archiver");

/// A D-Bus address where nothing listens: the process has no keyring, as
/// under cron.
pub const NO_BUS: &str = "unix:path=/nonexistent/wechat-archiver-test/bus";

/// How a TeleMessage account answers a correct password.
#[derive(Clone, Copy)]
pub enum AccountState {
    Active,
    Disabled,
    ProductNotEnabled,
}

struct ServerState {
    username: String,
    password: String,
    account_state: AccountState,
    /// Every password the server was sent, in order.
    seen: Mutex<Vec<String>>,
}

/// A minimal TeleMessage on 127.0.0.1 that knows one user.
pub struct AuthServer {
    pub url: String,
    state: Arc<ServerState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl AuthServer {
    pub fn start(username: &str, password: &str, account_state: AccountState) -> AuthServer {
        let state = Arc::new(ServerState {
            username: username.to_owned(),
            password: password.to_owned(),
            account_state,
            seen: Mutex::default(),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new()
            .route("/v1/auth/token", post(token))
            .with_state(state.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        AuthServer {
            url,
            state,
            shutdown: Some(tx),
        }
    }

    /// The passwords the server received, in order.
    pub fn passwords_seen(&self) -> Vec<String> {
        self.state.seen.lock().unwrap().clone()
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn token(
    State(state): State<Arc<ServerState>>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let username = body["username"].as_str().unwrap_or_default();
    let password = body["password"].as_str().unwrap_or_default();
    state.seen.lock().unwrap().push(password.to_owned());
    if username != state.username || password != state.password {
        let body =
            json!({"error": "invalid_credentials", "message": "wrong user name or password"});
        return (StatusCode::UNAUTHORIZED, Json(body));
    }
    let forbidden = |code: &str| {
        (
            StatusCode::FORBIDDEN,
            Json(json!({"error": code, "message": "no"})),
        )
    };
    match state.account_state {
        AccountState::Disabled => forbidden("account_disabled"),
        AccountState::ProductNotEnabled => forbidden("wechat_archiver_not_enabled"),
        AccountState::Active => (
            StatusCode::OK,
            Json(json!({
                "access_token": "tok-abc",
                "token_type": "Bearer",
                "expires_in": 3600,
                "account": {"id": "acc-123", "name": "Contoso"}
            })),
        ),
    }
}

/// A connector name no other test (or earlier run) uses, since all tests
/// share one keyring.
pub fn unique_connector(label: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{label}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A home directory holding one connector; its keyring entries are
/// removed when it is dropped.
pub struct TestHome {
    pub dir: tempfile::TempDir,
    pub connector: String,
}

impl TestHome {
    /// `target` as `--target` takes it; an IMAP target gets an admin user.
    pub fn new(label: &str, endpoint: &str, target: &str) -> TestHome {
        let dir = tempfile::tempdir().unwrap();
        let connector = unique_connector(label);
        let target = target.replace("{dir}", &dir.path().display().to_string());
        let mut config = Config::default();
        config.connectors.insert(
            connector.clone(),
            ConnectorConfig {
                source: Default::default(),
                domains: Vec::new(),
                mailbox_from_recipient: false,
                endpoint: endpoint.to_owned(),
                username: "admin@contoso.com".to_owned(),
                target_user: target
                    .starts_with("imap")
                    .then(|| "archiver-admin".to_owned()),
                target,
                mapping: None,
                auto_mapping: true,
                default_region: None,
                folder: "WeChat Archiver".to_owned(),
                fallback_mailbox: None,
                client_id: None,
                cloud: Default::default(),
                graph_endpoint: None,
                login_endpoint: None,
                auth: Default::default(),
                tenant: None,
                large_item_fallback: None,
                terms_accepted_at: "2026-01-01T00:00:00Z".to_owned(),
            },
        );
        Home::at(dir.path()).save(&config).unwrap();
        TestHome { dir, connector }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The binary with `--home` set and no secret in its environment.
    pub fn cli(&self) -> Cli {
        Cli::new(self.path())
    }

    pub fn account(&self, which: &str) -> String {
        format!("{}/{which}", self.connector)
    }

    /// Writes a password file with the given mode, outside the home.
    #[cfg(unix)]
    pub fn password_file(&self, text: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path().with_extension("pw");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }
}

impl Drop for TestHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path().with_extension("pw"));
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() {
            for which in ["telemessage", "target"] {
                let _ = Command::new("secret-tool")
                    .args(["clear", "service", "wechat-archiver", "username"])
                    .arg(self.account(which))
                    .output();
            }
        }
    }
}

/// One run of the binary.
pub struct Cli {
    cmd: Command,
    stdin: Option<String>,
}

pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}):\n{}", self.stdout))
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Cli {
    fn new(home: &Path) -> Cli {
        let mut cmd = Command::new(BIN);
        cmd.arg("--home").arg(home);
        for var in [
            "WECHAT_ARCHIVER_PASSWORD",
            "WECHAT_ARCHIVER_PASSWORD_FILE",
            "WECHAT_ARCHIVER_HOME",
            "WECHAT_ARCHIVER_LOG",
        ] {
            cmd.env_remove(var);
        }
        Cli { cmd, stdin: None }
    }

    pub fn args(mut self, args: &[&str]) -> Cli {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Cli {
        self.cmd.env(key, value);
        self
    }

    /// Runs as cron would: no session bus, so no keyring.
    pub fn without_keyring(self) -> Cli {
        self.env("DBUS_SESSION_BUS_ADDRESS", NO_BUS)
    }

    pub fn stdin(mut self, text: &str) -> Cli {
        self.stdin = Some(text.to_owned());
        self
    }

    pub fn run(mut self) -> Ran {
        self.cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("run wechat-archiver");
        let mut stdin = child.stdin.take().unwrap();
        if let Some(text) = &self.stdin {
            stdin.write_all(text.as_bytes()).unwrap();
        }
        drop(stdin);
        finish(child.wait_with_output().unwrap())
    }

    /// Starts the binary and hands back the child, stdin still open.
    pub fn spawn(mut self) -> std::process::Child {
        self.cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self.cmd.spawn().expect("run wechat-archiver")
    }
}

pub fn finish(output: Output) -> Ran {
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Fails the test unless a real, unlocked Secret Service answers: these
/// tests are about the real keyring, so they must not pass without one.
pub fn require_secret_service() {
    let how = "the keyring tests need a real, unlocked Secret Service: run them as \
               `scripts/keyring-session.sh cargo test --test it` (needs the Debian packages \
               dbus, gnome-keyring and libsecret-tools)";
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "DBUS_SESSION_BUS_ADDRESS is not set; {how}"
    );
    let probe = unique_connector("probe");
    let mut store = Command::new("secret-tool")
        .args(["store", "--label", "wechat-archiver test probe"])
        .args(["service", "wechat-archiver-test-probe", "username", &probe])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run secret-tool ({e}); {how}"));
    store.stdin.take().unwrap().write_all(b"probe").unwrap();
    let stored = finish(store.wait_with_output().unwrap());
    assert_eq!(stored.code, 0, "secret-tool cannot store ({stored}); {how}");
    let found = secret_tool_lookup("wechat-archiver-test-probe", &probe);
    let _ = Command::new("secret-tool")
        .args([
            "clear",
            "service",
            "wechat-archiver-test-probe",
            "username",
            &probe,
        ])
        .output();
    assert_eq!(found.as_deref(), Some("probe"), "{how}");
}

/// The secret the Secret Service holds for an item, read by another
/// program than ours.
pub fn secret_tool_lookup(service: &str, account: &str) -> Option<String> {
    let out = Command::new("secret-tool")
        .args(["lookup", "service", service, "username", account])
        .output()
        .expect("run secret-tool");
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap())
}

/// What `secret-tool search --all service wechat-archiver` prints (the
/// attributes of every item of this tool in the Secret Service).
pub fn secret_tool_search() -> String {
    let out = Command::new("secret-tool")
        .args(["search", "--all", "service", "wechat-archiver"])
        .output()
        .expect("run secret-tool");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if std::fs::read(&path)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
            {
                found.push(path);
            }
        }
    }
    found
}
