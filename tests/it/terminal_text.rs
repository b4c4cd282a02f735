//! Text from a hostile server never reaches a terminal or a log raw: names,
//! titles and error messages holding `ESC ]52` (clipboard write) or
//! `ESC [2J` (clear screen) come out escaped; standard error carries colour
//! codes only on a terminal without `NO_COLOR`; durations read as people
//! write them.

use std::process::Command;

use wechat_archiver::simulator::{AuthRefusal, Fault, HandMade};
use wechat_archiver::telemessage::model::ItemType;

use crate::support::TestEnv;
use crate::sync::{PASSWORD, SINCE, UNTIL, connector, simulator, sync_with, t};

/// Clipboard write, bell, clear screen, carriage return, C1 CSI, RTL override.
const HOSTILE: &str = "Evil\x1b]52;c;cHduZWQ=\x07\x1b[2J\r\u{9b}2J\u{202e}gpj.exe";

fn hand_made(id: &str, unmapped: bool) -> HandMade {
    HandMade {
        id: id.to_owned(),
        archived_at: t("2026-11-22T10:00:00Z"),
        kind: ItemType::Chat,
        content: b"From: x@example.com\r\nSubject: hi\r\n\r\nbody\r\n".to_vec(),
        attachments: Vec::new(),
        conversation_title: HOSTILE.to_owned(),
        sender_name: Some(HOSTILE.to_owned()),
        sender_unmapped: unmapped,
    }
}

/// No raw control character but line feeds (and tabs) in `text`.
#[track_caller]
fn assert_clean(what: &str, text: &str) {
    let raw: Vec<char> = text
        .chars()
        .filter(|&c| {
            (c.is_control() && c != '\n' && c != '\t') || ('\u{202a}'..='\u{202e}').contains(&c)
        })
        .collect();
    assert!(raw.is_empty(), "{what} holds raw {raw:?}:\n{text}");
}

fn sync_log(env: &TestEnv) -> String {
    std::fs::read_to_string(env.home.join("logs/sync.log")).expect("sync.log")
}

#[test]
fn hostile_names_never_reach_stderr_status_or_the_log_raw() {
    let sim = simulator(10, |c| {
        c.account_name = HOSTILE.to_owned();
        c.hand_made = vec![
            hand_made("hostile-mapped", false),
            hand_made("hostile-unmapped", true),
        ];
    });
    let env = TestEnv::new();
    connector(&env, &sim, &[]);
    let run = sync_with(&env, &["-vv", "--since", SINCE, "--until", UNTIL], &[]);
    run.assert_code(0);
    assert_clean("sync's stdout", &run.stdout);
    assert_clean("sync's stderr", &run.stderr);
    assert_clean("sync.log", &sync_log(&env));

    let status = env.run(["status"]);
    status.assert_code(0);
    assert_clean("status", &status.stdout);
    assert!(
        status
            .stdout
            .contains("Evil\\x1b]52;c;cHduZWQ=\\x07\\x1b[2J\\r\\x9b2J\\u{202e}gpj.exe"),
        "status names the unmapped sender, escaped:\n{}",
        status.stdout
    );

    let login = env
        .command(["login", "--status", "--connector", "c"])
        .env("WECHAT_ARCHIVER_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let login: crate::support::Run = login.into();
    assert_clean(
        "login --check",
        &format!("{}{}", login.stdout, login.stderr),
    );
    assert!(login.stdout.contains("account Evil\\x1b]52"), "{login:?}");
}

/// The sign-in's free text is never repeated at all (a proxy echoing
/// the request would print the password); its error code is.
#[test]
fn a_hostile_sign_in_message_is_not_repeated_on_stderr_or_in_the_log() {
    let sim = simulator(5, |c| {
        c.account_name = HOSTILE.to_owned();
        c.faults = vec![Fault::Refuse(AuthRefusal::AccountDisabled)];
    });
    let env = TestEnv::new();
    connector(&env, &sim, &[]);
    let run = sync_with(&env, &["--since", SINCE, "--until", UNTIL], &[]);
    run.assert_code(1);
    assert!(
        run.stderr.contains("refused access (account_disabled)") && !run.stderr.contains("Evil"),
        "{}",
        run.stderr
    );
    assert_clean("sync's stderr", &run.stderr);
    let log = sync_log(&env);
    assert!(!log.contains("Evil"), "{log}");
    assert_clean("sync.log", &log);
}

/// `sync -v` against a server that answers one `429` with `Retry-After: 1`.
fn sync_after_one_429(env: &TestEnv, sim: &wechat_archiver::simulator::Simulator) -> Command {
    connector(env, sim, &[]);
    let mut command = env.command(["sync", "-v", "--json", "--since", SINCE, "--until", UNTIL]);
    command.env("WECHAT_ARCHIVER_PASSWORD", PASSWORD);
    command
}

fn one_429() -> Vec<Fault> {
    Fault::parse_list("429x1@1s").unwrap()
}

#[test]
fn log_lines_on_a_pipe_are_plain_and_durations_read_as_people_write_them() {
    let sim = simulator(5, |c| c.faults = one_429());
    let env = TestEnv::new();
    let run: crate::support::Run = sync_after_one_429(&env, &sim).output().unwrap().into();
    run.assert_code(0);
    assert!(run.stderr.contains(" INFO "), "{}", run.stderr);
    assert!(
        !run.stderr.contains('\x1b'),
        "colour codes in a pipe:\n{}",
        run.stderr
    );
    let retry = run
        .stderr
        .lines()
        .find(|l| l.contains("retrying in"))
        .unwrap_or_else(|| panic!("no retry line:\n{}", run.stderr));
    assert!(retry.contains("retrying in 1 s (attempt 1)"), "{retry}");
}

/// Runs the command under a pseudo-terminal (`script` from util-linux) and
/// returns what the terminal showed.
fn on_a_terminal(command: &Command, no_color: Option<&str>) -> String {
    let mut line = String::new();
    for (key, value) in command.get_envs() {
        if let (Some(value), Some(key)) = (value, key.to_str()) {
            line.push_str(&format!("{key}='{}' ", value.to_string_lossy()));
        }
    }
    if let Some(v) = no_color {
        line.push_str(&format!("NO_COLOR={v} "));
    }
    line.push_str(&command.get_program().to_string_lossy());
    for arg in command.get_args() {
        line.push_str(&format!(" '{}'", arg.to_string_lossy()));
    }
    let out = Command::new("script")
        .args(["-qec", &format!("env -u NO_COLOR {line}"), "/dev/null"])
        .output()
        .expect("run script(1) from util-linux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let sim = simulator(5, |c| c.faults = one_429());
    let env = TestEnv::new();
    let command = sync_after_one_429(&env, &sim);
    let coloured = on_a_terminal(&command, None);
    assert!(coloured.contains("INFO"), "{coloured}");
    assert!(
        coloured.contains("\x1b["),
        "no colour on a terminal:\n{coloured}"
    );

    let sim = simulator(5, |c| c.faults = one_429());
    let env = TestEnv::new();
    let command = sync_after_one_429(&env, &sim);
    let plain = on_a_terminal(&command, Some("1"));
    assert!(plain.contains("INFO"), "{plain}");
    let shown: Vec<&str> = plain.lines().filter(|l| l.contains("INFO")).collect();
    assert!(
        shown.iter().all(|l| !l.contains('\x1b')),
        "colour despite NO_COLOR:\n{plain}"
    );
}
