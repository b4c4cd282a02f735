//! Where no keyring can be reached (cron, containers): the password file,
//! the environment variable, and the error when neither is there. Each run
//! points DBUS_SESSION_BUS_ADDRESS at nothing, so these need no keyring.

use crate::login_support::*;

const RIGHT: &str = "c0rrect horse battery";
const MAILDIR: &str = "maildir:{dir}/mail";

fn setup(label: &str, target: &str) -> (AuthServer, TestHome) {
    let server = AuthServer::start("admin@contoso.com", RIGHT, AccountState::Active);
    let home = TestHome::new(label, &server.url, target);
    (server, home)
}

#[cfg(unix)]
#[test]
fn owner_only_password_file_is_used_without_a_keyring() {
    let (server, home) = setup("file-ok", MAILDIR);
    let file = home.password_file(&format!("{RIGHT}\n"), 0o600);

    let ran = home
        .cli()
        .without_keyring()
        .env("WECHAT_ARCHIVER_PASSWORD_FILE", &file)
        .env("WECHAT_ARCHIVER_PASSWORD", "the file comes first")
        .args(&["login", "--status", "--json"])
        .run();

    assert_eq!(ran.code, 0, "{ran}");
    let report = ran.json();
    assert_eq!(report["keyring"]["reachable"], false, "{ran}");
    assert_eq!(report["secrets"][0]["source"], "password_file", "{ran}");
    assert_eq!(report["telemessage"]["accepted"], true, "{ran}");
    assert_eq!(server.passwords_seen(), [RIGHT]);
}

#[cfg(unix)]
#[test]
fn password_file_others_can_read_is_refused() {
    let (server, home) = setup("file-open", MAILDIR);
    let file = home.password_file(&format!("{RIGHT}\n"), 0o644);

    let ran = home
        .cli()
        .without_keyring()
        .env("WECHAT_ARCHIVER_PASSWORD_FILE", &file)
        .args(&["login", "--status"])
        .run();

    assert_eq!(ran.code, 1, "{ran}");
    assert!(ran.stderr.contains(&file.display().to_string()), "{ran}");
    assert!(ran.stderr.contains("mode 0644"), "{ran}");
    assert!(
        ran.stderr
            .contains(&format!("chmod 600 {}", file.display())),
        "{ran}"
    );
    assert!(
        server.passwords_seen().is_empty(),
        "the refused file must not be used"
    );

    // As ssh does with an open key: skipped, the next place is tried, and
    // the user is warned.
    let with_env = home
        .cli()
        .without_keyring()
        .env("WECHAT_ARCHIVER_PASSWORD_FILE", &file)
        .env("WECHAT_ARCHIVER_PASSWORD", RIGHT)
        .args(&["login", "--status"])
        .run();
    assert_eq!(with_env.code, 0, "{with_env}");
    assert!(
        with_env.stderr.contains("password file is unusable"),
        "{with_env}"
    );
    assert!(
        with_env
            .stdout
            .contains("from the WECHAT_ARCHIVER_PASSWORD environment variable"),
        "{with_env}"
    );
}

#[cfg(unix)]
#[test]
fn password_file_second_line_is_the_target_secret() {
    let (server, home) = setup("file-imap", "imaps://mail.example.net:993");
    let one_line = home.password_file(&format!("{RIGHT}\n"), 0o600);
    let ran = home
        .cli()
        .without_keyring()
        .env("WECHAT_ARCHIVER_PASSWORD_FILE", &one_line)
        .args(&["login", "--status"])
        .run();
    assert_eq!(ran.code, 1, "{ran}");
    assert!(ran.stderr.contains("no target secret"), "{ran}");
    assert!(ran.stderr.contains("line 2 is missing or empty"), "{ran}");

    let two_lines = home.password_file(&format!("{RIGHT}\nimap-pw\n"), 0o600);
    let ran = home
        .cli()
        .without_keyring()
        .env("WECHAT_ARCHIVER_PASSWORD_FILE", &two_lines)
        .args(&["login", "--status", "--json"])
        .run();
    assert_eq!(ran.code, 0, "{ran}");
    let secrets = &ran.json()["secrets"];
    assert_eq!(secrets[1]["secret"], "target_secret");
    assert_eq!(secrets[1]["source"], "password_file");
    assert!(
        secrets[1]["location"]
            .as_str()
            .unwrap()
            .ends_with("(line 2)")
    );
    assert_eq!(server.passwords_seen(), [RIGHT, RIGHT]);
}

#[test]
fn environment_variable_is_the_last_resort() {
    let (server, home) = setup("env", MAILDIR);
    let ran = home
        .cli()
        .without_keyring()
        .env("WECHAT_ARCHIVER_PASSWORD", RIGHT)
        .args(&["login", "--status", "--json"])
        .run();
    assert_eq!(ran.code, 0, "{ran}");
    assert_eq!(ran.json()["secrets"][0]["source"], "environment");
    assert_eq!(server.passwords_seen(), [RIGHT]);
}

#[test]
fn a_wrong_fallback_password_is_reported_with_the_fix() {
    let (_server, home) = setup("env-wrong", MAILDIR);
    let ran = home
        .cli()
        .without_keyring()
        .env("WECHAT_ARCHIVER_PASSWORD", "old password")
        .args(&["login", "--status"])
        .run();
    assert_eq!(ran.code, 1, "{ran}");
    assert!(ran.stderr.contains("no longer works"), "{ran}");
    assert!(ran.stderr.contains("login --connector"), "{ran}");
}

#[test]
fn no_secret_anywhere_names_each_place_and_how_to_fix_it() {
    let (server, home) = setup("none", MAILDIR);
    let ran = home
        .cli()
        .without_keyring()
        .args(&["login", "--status"])
        .run();
    assert_eq!(ran.code, 1, "{ran}");
    let err = &ran.stderr;
    assert!(
        err.contains("no TeleMessage password for connector"),
        "{ran}"
    );
    assert!(err.contains("no keyring reachable"), "{ran}");
    assert!(err.contains(NO_BUS), "{ran}");
    assert!(
        err.contains("WECHAT_ARCHIVER_PASSWORD_FILE: not set"),
        "{ran}"
    );
    assert!(err.contains("WECHAT_ARCHIVER_PASSWORD: not set"), "{ran}");
    assert!(err.contains("cron"), "{ran}");
    assert!(err.contains("chmod 600"), "{ran}");
    assert!(server.passwords_seen().is_empty());
}

#[test]
fn login_without_a_keyring_says_so_and_points_to_the_file() {
    let (server, home) = setup("login-nobus", MAILDIR);
    let ran = home
        .cli()
        .without_keyring()
        .args(&["login", "--password-stdin"])
        .stdin(&format!("{RIGHT}\n"))
        .run();
    assert_eq!(ran.code, 1, "{ran}");
    assert!(ran.stderr.contains("no keyring reachable"), "{ran}");
    assert!(
        ran.stderr.contains("WECHAT_ARCHIVER_PASSWORD_FILE"),
        "{ran}"
    );
    assert!(server.passwords_seen().is_empty());
}

#[test]
fn the_command_line_takes_no_password() {
    let (_server, home) = setup("noflag", MAILDIR);
    for flag in ["--password", "--password=x", "-p"] {
        let ran = home.cli().without_keyring().args(&["login", flag]).run();
        assert_eq!(ran.code, 2, "{flag} must be a usage error: {ran}");
    }
}
