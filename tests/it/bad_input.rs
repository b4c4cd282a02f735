//! Bad input to every command: a clear one-paragraph error with a hint,
//! the exit status of `cli.md`, and no panic.

use crate::support::TestEnv;

/// Exit status `code`, no panic, and every one of `mentions` on stderr.
#[track_caller]
pub fn assert_clear_error(run: &crate::support::Run, code: i32, mentions: &[&str]) {
    run.assert_code(code);
    assert!(
        !run.stderr.contains("panicked"),
        "the binary panicked:\n{}",
        run.stderr
    );
    for m in mentions {
        assert!(
            run.stderr.contains(m),
            "stderr does not mention {m:?}:\n{}",
            run.stderr
        );
    }
}

#[test]
fn sync_of_an_unknown_connector_names_the_known_ones() {
    let env = TestEnv::new();
    env.create_maildir_connector("alpha", "https://archive.example.net", &[]);
    let run = env.run_with_password("pw", ["sync", "--connector", "beta"]);
    assert_clear_error(&run, 1, &["'beta'", "alpha", "Hint:"]);
}

#[test]
fn sync_without_any_connector_says_how_to_create_one() {
    let env = TestEnv::new();
    let run = env.run_with_password("pw", ["sync"]);
    assert_clear_error(&run, 1, &["no connector", "Hint:", "create"]);
}

#[test]
fn bad_since_is_a_usage_error_with_an_example() {
    let env = TestEnv::new();
    env.create_maildir_connector("c", "https://archive.example.net", &[]);
    let run = env.run_with_password("pw", ["sync", "--since", "yesterday"]);
    assert_clear_error(&run, 2, &["--since", "yesterday", "24h"]);
}

#[test]
fn unreachable_endpoint_fails_with_exit_1_after_bounded_retries() {
    let env = TestEnv::new();
    // Bound and not listening for the whole test: nothing else can take it.
    let closed = crate::support::ports::ReservedPort::new();
    let endpoint = format!("http://127.0.0.1:{}", closed.port);
    env.create_maildir_connector("c", &endpoint, &[]);
    let run = env
        .command(["sync", "--json"])
        .env("WECHAT_ARCHIVER_PASSWORD", "pw")
        .env("WECHAT_ARCHIVER_MAX_RETRY_SECONDS", "2")
        .output()
        .unwrap();
    let run: crate::support::Run = run.into();
    assert_clear_error(&run, 1, &["could not connect", &endpoint[7..], "Hint:"]);
    assert!(run.stdout.is_empty(), "no JSON on failure: {}", run.stdout);
}

#[test]
fn unwritable_target_directory_fails_before_any_download() {
    let env = TestEnv::new();
    let blocker = env.path("not-a-dir");
    std::fs::write(&blocker, "a file where the archive should be").unwrap();
    let target = format!("maildir:{}", blocker.join("archive").display());
    env.run([
        "create",
        "c",
        "--endpoint",
        "https://archive.example.net",
        "--username",
        "u",
        "--target",
        &target,
        "--accept-terms",
    ])
    .assert_code(0);
    let run = env.run_with_password("pw", ["sync"]);
    assert_clear_error(&run, 1, &["not usable", "not-a-dir", "Hint:"]);
}

#[test]
fn create_refuses_plain_http_to_a_remote_host() {
    let env = TestEnv::new();
    let run = env.run([
        "create",
        "c",
        "--endpoint",
        "http://archive.example.net",
        "--username",
        "u",
        "--target",
        "maildir:/tmp/x",
        "--accept-terms",
    ]);
    assert_clear_error(&run, 2, &["http://", "Hint:"]);
}

#[test]
fn create_in_a_script_names_what_is_missing() {
    let env = TestEnv::new();
    let run = env.run(["create", "c", "--endpoint", "https://a.example.net"]);
    assert_clear_error(&run, 2, &["--username"]);
    let run = env.run([
        "create",
        "c",
        "--endpoint",
        "https://a.example.net",
        "--username",
        "u",
        "--target",
        "maildir:/tmp/x",
    ]);
    assert_clear_error(&run, 2, &["terms", "--accept-terms"]);
}

#[test]
fn create_refuses_an_unknown_target_scheme() {
    let env = TestEnv::new();
    let run = env.run([
        "create",
        "c",
        "--endpoint",
        "https://a.example.net",
        "--username",
        "u",
        "--target",
        "ftp://x",
        "--accept-terms",
    ]);
    assert_clear_error(&run, 2, &["maildir:DIR"]);
}

#[test]
fn status_of_an_unknown_connector_is_an_error() {
    let env = TestEnv::new();
    let run = env.run(["status", "--connector", "nope"]);
    assert_clear_error(&run, 1, &["'nope'", "Hint:"]);
}

#[test]
fn a_closed_pipe_on_standard_output_ends_quietly_without_a_panic() {
    use std::io::{BufRead, BufReader};
    let env = TestEnv::new();
    env.create_maildir_connector("c0", "https://archive.example.net", &[]);
    let config = env.home.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let one = &text[text.find("[connectors.c0]").unwrap()..];
    let many: String = (1..150)
        .map(|n| one.replace("[connectors.c0]", &format!("[connectors.c{n}]")))
        .collect();
    std::fs::write(&config, format!("{text}\n{many}")).unwrap();
    let mut child = env
        .command(["status"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("Connector c0"), "{first}");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
