//! `login` against the real Secret Service (gnome-keyring on a private
//! session bus): run these under `scripts/keyring-session.sh`. Without a
//! reachable Secret Service they fail, they do not skip.

use crate::login_support::*;
use crate::support::terminal::Terminal;

const RIGHT: &str = "c0rrect horse\tbattery";
const MAILDIR: &str = "maildir:{dir}/mail";
const IMAP: &str = "imap://127.0.0.1:1143";

fn active_server() -> AuthServer {
    AuthServer::start("admin@contoso.com", RIGHT, AccountState::Active)
}

#[test]
fn keyring_wrong_password_is_refused_and_nothing_is_stored() {
    require_secret_service();
    let server = active_server();
    let home = TestHome::new("wrongpw", &server.url, MAILDIR);

    let ran = home
        .cli()
        .args(&["login", "--password-stdin"])
        .stdin("not the password\n")
        .run();

    assert_eq!(ran.code, 1, "{ran}");
    assert!(
        ran.stderr.contains("refused the user name or password"),
        "{ran}"
    );
    assert!(ran.stderr.contains("nothing was stored"), "{ran}");
    assert_eq!(server.passwords_seen(), ["not the password"]);
    let account = home.account("telemessage");
    assert_eq!(secret_tool_lookup("wechat-archiver", &account), None);
    assert!(!secret_tool_search().contains(&account));
}

#[test]
fn keyring_right_password_lands_in_the_secret_service_and_a_new_process_reads_it() {
    require_secret_service();
    let server = active_server();
    let home = TestHome::new("rightpw", &server.url, MAILDIR);

    let ran = home
        .cli()
        .args(&["login", "--password-stdin"])
        .stdin(&format!("{RIGHT}\n"))
        .run();
    assert_eq!(ran.code, 0, "{ran}");
    assert!(
        ran.stdout
            .contains("TeleMessage accepted the password (account Contoso)"),
        "{ran}"
    );

    let account = home.account("telemessage");
    let listed = secret_tool_search();
    assert!(
        listed.contains(&format!("attribute.username = {account}")),
        "{listed}"
    );
    assert_eq!(
        secret_tool_lookup("wechat-archiver", &account).as_deref(),
        Some(RIGHT)
    );

    // A new process, with a wrong password in the environment: the keyring
    // comes first, and TeleMessage accepts what it holds.
    let status = home
        .cli()
        .args(&["login", "--status", "--json"])
        .env("WECHAT_ARCHIVER_PASSWORD", "stale")
        .run();
    assert_eq!(status.code, 0, "{status}");
    let report = status.json();
    assert_eq!(report["secrets"][0]["source"], "keyring", "{status}");
    assert_eq!(report["telemessage"]["accepted"], true, "{status}");
    assert_eq!(server.passwords_seen(), [RIGHT, RIGHT]);
}

#[test]
fn keyring_forbidden_account_is_explained_and_nothing_is_stored() {
    require_secret_service();
    for (state, says) in [
        (AccountState::Disabled, "account is disabled"),
        (
            AccountState::ProductNotEnabled,
            "WeChat Archiver product is not enabled",
        ),
    ] {
        let server = AuthServer::start("admin@contoso.com", RIGHT, state);
        let home = TestHome::new("forbidden", &server.url, MAILDIR);
        let ran = home
            .cli()
            .args(&["login", "--password-stdin"])
            .stdin(&format!("{RIGHT}\n"))
            .run();
        assert_eq!(ran.code, 1, "{ran}");
        assert!(ran.stderr.contains(says), "{ran}");
        assert!(ran.stderr.contains("enable the account"), "{ran}");
        assert_eq!(
            secret_tool_lookup("wechat-archiver", &home.account("telemessage")),
            None
        );
    }
}

#[test]
fn keyring_imap_target_takes_its_secret_on_the_second_line() {
    require_secret_service();
    let server = active_server();
    let home = TestHome::new("imap", &server.url, IMAP);

    let one_line = home
        .cli()
        .args(&["login", "--password-stdin"])
        .stdin(&format!("{RIGHT}\n"))
        .run();
    assert_eq!(one_line.code, 1, "{one_line}");
    assert!(one_line.stderr.contains("has 1 line(s)"), "{one_line}");
    assert!(
        one_line.stderr.contains("IMAP password for archiver-admin"),
        "{one_line}"
    );
    assert!(
        server.passwords_seen().is_empty(),
        "nothing is sent before the input is complete"
    );
    assert_eq!(
        secret_tool_lookup("wechat-archiver", &home.account("telemessage")),
        None
    );

    let ran = home
        .cli()
        .args(&["login", "--password-stdin", "--json"])
        .stdin(&format!("{RIGHT}\r\nimap-admin-pw\r\n"))
        .run();
    assert_eq!(ran.code, 0, "{ran}");
    let stored: Vec<_> = ran.json()["stored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["account"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        stored,
        [home.account("telemessage"), home.account("target")]
    );
    assert_eq!(
        secret_tool_lookup("wechat-archiver", &home.account("target")).as_deref(),
        Some("imap-admin-pw")
    );

    let status = home.cli().args(&["login", "--status"]).run();
    assert_eq!(status.code, 0, "{status}");
    assert!(
        status
            .stdout
            .contains(&format!("account {}/target", home.connector)),
        "{status}"
    );
}

#[test]
fn keyring_status_and_forget() {
    require_secret_service();
    let server = active_server();
    let home = TestHome::new("forget", &server.url, IMAP);
    let ran = home
        .cli()
        .args(&["login", "--password-stdin"])
        .stdin(&format!("{RIGHT}\nimap-admin-pw\n"))
        .run();
    assert_eq!(ran.code, 0, "{ran}");

    let status = home.cli().args(&["login", "--status"]).run();
    assert_eq!(status.code, 0, "{status}");
    assert!(
        status.stdout.contains("TeleMessage accepts the password"),
        "{status}"
    );
    assert_eq!(
        status
            .stdout
            .matches("from the OS keyring (Secret Service")
            .count(),
        2,
        "{status}"
    );

    let forget = home.cli().args(&["login", "--forget", "--json"]).run();
    assert_eq!(forget.code, 0, "{forget}");
    assert_eq!(
        forget.json()["removed"],
        serde_json::json!([home.account("telemessage"), home.account("target")])
    );
    assert_eq!(
        secret_tool_lookup("wechat-archiver", &home.account("telemessage")),
        None
    );
    assert_eq!(
        secret_tool_lookup("wechat-archiver", &home.account("target")),
        None
    );

    let again = home.cli().args(&["login", "--forget"]).run();
    assert_eq!(again.code, 0, "{again}");
    assert!(again.stdout.contains("Nothing was stored"), "{again}");

    let status = home.cli().args(&["login", "--status"]).run();
    assert_eq!(status.code, 1, "{status}");
    assert!(
        status
            .stderr
            .contains("no TeleMessage password for connector"),
        "{status}"
    );
    assert!(status.stderr.contains("): no entry"), "{status}");
}

#[test]
fn keyring_login_needs_a_terminal_or_password_stdin() {
    require_secret_service();
    let server = active_server();
    let home = TestHome::new("notty", &server.url, MAILDIR);
    let ran = home
        .cli()
        .args(&["login"])
        .stdin(&format!("{RIGHT}\n"))
        .run();
    assert_eq!(ran.code, 1, "{ran}");
    assert!(ran.stderr.contains("not a terminal"), "{ran}");
    assert!(ran.stderr.contains("--password-stdin"), "{ran}");
    assert!(server.passwords_seen().is_empty());
}

#[test]
fn keyring_plain_http_endpoint_off_loopback_is_refused_before_anything_is_asked() {
    require_secret_service();
    let home = TestHome::new("plainhttp", "http://tm.example.net", MAILDIR);
    let ran = home
        .cli()
        .args(&["login", "--password-stdin"])
        .stdin(&format!("{RIGHT}\n"))
        .run();
    assert_eq!(ran.code, 1, "{ran}");
    assert!(ran.stderr.contains("only to a loopback address"), "{ran}");
    assert_eq!(
        secret_tool_lookup("wechat-archiver", &home.account("telemessage")),
        None
    );
}

/// The secret must not appear in any file under the home, any output (with
/// the most verbose logging), nor any process's command line while `login`
/// runs.
#[test]
fn keyring_secret_leaks_nowhere() {
    require_secret_service();
    let canary = format!("Canary-{}-pw", unique_connector("x"));
    let server = AuthServer::start("admin@contoso.com", &canary, AccountState::Active);
    let home = TestHome::new("leak", &server.url, IMAP);
    let target_canary = format!("{canary}-imap");

    let mut child = home
        .cli()
        .args(&["-vvv", "login", "--password-stdin"])
        .spawn();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    use std::io::Write;
    stdin
        .write_all(format!("{canary}\n{target_canary}\n").as_bytes())
        .unwrap();
    drop(stdin);
    let mut seen_in_cmdlines = Vec::new();
    while child.try_wait().unwrap().is_none() {
        seen_in_cmdlines.extend(processes_whose_cmdline_contains(&canary));
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let login = finish(child.wait_with_output().unwrap());
    assert_eq!(login.code, 0, "{login}");
    assert!(
        seen_in_cmdlines.is_empty(),
        "secret in the command line of {seen_in_cmdlines:?} (login was {pid})"
    );

    let mut outputs = vec![login];
    for args in [
        &["-vvv", "login", "--status"][..],
        &["-vvv", "login", "--status", "--json"],
        &["-vvv", "login", "--forget", "--json"],
        &["-vvv", "login", "--status", "--json"],
    ] {
        outputs.push(home.cli().args(args).run());
    }
    for ran in &outputs {
        for secret in [&canary, &target_canary] {
            assert!(
                !ran.stdout.contains(secret.as_str()),
                "secret on stdout: {ran}"
            );
            assert!(
                !ran.stderr.contains(secret.as_str()),
                "secret on stderr: {ran}"
            );
        }
    }
    assert_eq!(
        files_containing(home.path(), &canary),
        Vec::<std::path::PathBuf>::new()
    );
    assert_eq!(
        server.passwords_seen(),
        [canary.as_str(), canary.as_str(), canary.as_str()]
    );
}

fn processes_whose_cmdline_contains(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline"))
            && cmdline
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
        {
            found.push(name);
        }
    }
    found
}

/// On a terminal `login` prompts for each secret with echo off: typed into
/// a real pseudo-terminal once the prompt has turned echo off, the secrets
/// are stored and never appear on the terminal.
#[test]
fn keyring_terminal_prompt_hides_what_is_typed() {
    require_secret_service();
    // No tab here: a terminal prompt drops control characters as it edits.
    let typed_password = "typed, not echoed";
    let server = AuthServer::start("admin@contoso.com", typed_password, AccountState::Active);
    let home = TestHome::new("tty", &server.url, IMAP);
    let mut command = std::process::Command::new(BIN);
    command
        .arg("--home")
        .arg(home.path())
        .args(["login", "--connector", &home.connector])
        .env_remove("WECHAT_ARCHIVER_PASSWORD")
        .env_remove("WECHAT_ARCHIVER_PASSWORD_FILE");
    let (mut child, terminal) = Terminal::spawn(command);
    for (prompt, typed) in [
        ("TeleMessage password for admin@contoso.com", typed_password),
        ("IMAP password for archiver-admin", "typed-imap-pw"),
    ] {
        terminal.wait_for(prompt);
        terminal.wait_for_echo_off();
        terminal.type_line(typed);
    }
    terminal.wait_for("Stored in the OS keyring");
    let status = child.wait().unwrap();
    let shown = terminal.text();
    assert!(status.success(), "{shown}");
    assert!(
        !shown.contains(typed_password) && !shown.contains("typed-imap-pw"),
        "echoed: {shown}"
    );
    assert_eq!(
        secret_tool_lookup("wechat-archiver", &home.account("telemessage")).as_deref(),
        Some(typed_password)
    );
    assert_eq!(
        secret_tool_lookup("wechat-archiver", &home.account("target")).as_deref(),
        Some("typed-imap-pw")
    );
}

/// A Secret Service whose keyring is not unlocked (gnome-keyring started
/// without a password, on a bus of its own): `login` says so before
/// sending the password anywhere.
#[test]
fn keyring_locked_keyring_is_reported_before_the_password_is_sent() {
    let server = active_server();
    let home = TestHome::new("locked", &server.url, MAILDIR);
    let scratch = tempfile::tempdir().unwrap();
    let script = format!(
        "eval \"$(gnome-keyring-daemon --start --components=secrets </dev/null)\" && \
         printf '%s\\n' \"$PW\" | '{BIN}' --home '{}' login --password-stdin",
        home.path().display()
    );
    let out = std::process::Command::new("dbus-run-session")
        .args(["--", "sh", "-c", &script])
        .env("XDG_DATA_HOME", scratch.path())
        .env("XDG_RUNTIME_DIR", scratch.path())
        .env("PW", RIGHT)
        .output()
        .expect("run dbus-run-session (Debian package dbus)");
    let ran = finish(out);
    assert_eq!(ran.code, 1, "{ran}");
    assert!(
        ran.stderr
            .contains("the keyring is locked or refused access"),
        "{ran}"
    );
    assert!(ran.stderr.contains("unlock the keyring"), "{ran}");
    assert!(server.passwords_seen().is_empty(), "{ran}");
}
