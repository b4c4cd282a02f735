//! `map validate` on real CSV files (tests/data/mapping/), run through the
//! real binary: every finding of `user-mapping.md`, every spreadsheet
//! dialect, the encoding refusal, the header problems, and the checks
//! against a TeleMessage account served over loopback HTTP and a Maildir
//! target.

use std::collections::HashMap;
use std::path::PathBuf;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::support::{Run, TestEnv};

fn data(name: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "data", "mapping", name]
        .iter()
        .collect();
    assert!(path.is_file(), "missing fixture {}", path.display());
    path.display().to_string()
}

fn validate(env: &TestEnv, file: &str, extra: &[&str]) -> Run {
    let path = data(file);
    let mut args = vec!["map", "validate", path.as_str(), "--json"];
    args.extend_from_slice(extra);
    env.run(&args)
}

/// (line, code, column, value) of each finding of one level.
fn findings(report: &Value, level: &str) -> Vec<(Option<u64>, String, Option<String>, String)> {
    report[level]
        .as_array()
        .unwrap_or_else(|| panic!("no {level} array in {report}"))
        .iter()
        .map(|f| {
            (
                f["line"].as_u64(),
                f["code"].as_str().unwrap().to_owned(),
                f["column"].as_str().map(str::to_owned),
                f["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn counts(report: &Value) -> (u64, u64, u64) {
    (
        report["rows"].as_u64().unwrap(),
        report["valid"].as_u64().unwrap(),
        report["mappings"].as_u64().unwrap(),
    )
}

fn message(report: &Value, level: &str, index: usize) -> String {
    report[level][index]["message"].as_str().unwrap().to_owned()
}

fn f(
    line: u64,
    code: &str,
    column: &str,
    value: &str,
) -> (Option<u64>, String, Option<String>, String) {
    (
        Some(line),
        code.to_owned(),
        (!column.is_empty()).then(|| column.to_owned()),
        value.to_owned(),
    )
}

#[test]
fn every_row_finding_of_the_spec_is_reported_in_one_pass() {
    let env = TestEnv::new();
    let run = validate(&env, "every-finding.csv", &["--default-region", "CN"]);
    run.assert_code(3);
    let report = run.json();
    let n = "mobile_number";
    assert_eq!(
        findings(&report, "errors"),
        [
            f(4, "empty_number", n, ""),
            f(5, "empty_mailbox", "mailbox", ""),
            f(6, "invalid_number", n, "call the office"),
            f(7, "impossible_number", n, "+86 138"),
            f(8, "impossible_number", n, "+999 1234 5678"),
            f(9, "invalid_mailbox", "mailbox", "zhang.min(at)contoso.com"),
            f(10, "conflicting_number", n, "008613800138000"),
            f(
                12,
                "field_count",
                "",
                "Extra field | +8613500135000 | extra@contoso.com | oops"
            ),
            f(15, "invalid_number", n, "8.61380E+12"),
        ]
    );
    assert_eq!(
        findings(&report, "warnings"),
        [
            f(11, "duplicate_row", n, "+86-138-0013-8000"),
            f(14, "unqualified_domain", "mailbox", "zhao.lei@contoso"),
        ]
    );
    assert_eq!(report["usable"], false);
    // Lines 2, 3 (same mailbox, second phone: fine), 11, 13 and 14.
    assert_eq!(counts(&report), (14, 5, 4));

    let conflict = &report["errors"][6];
    assert_eq!(conflict["other_line"], 2);
    let text = conflict["message"].as_str().unwrap();
    for part in [
        "line 2",
        "line 10",
        "li.wei@contoso.com",
        "wang.fang@contoso.com",
        "+8613800138000",
    ] {
        assert!(text.contains(part), "{part:?} not in {text:?}");
    }
    assert_eq!(report["warnings"][0]["other_line"], 2);
    assert!(message(&report, "errors", 8).contains("scientific notation"));
    for finding in report["errors"].as_array().unwrap() {
        assert_eq!(finding["level"], "error");
        assert!(!finding["message"].as_str().unwrap().is_empty());
    }
}

#[test]
fn the_human_report_groups_findings_and_ends_with_a_verdict_in_plain_text() {
    let env = TestEnv::new();
    let path = data("every-finding.csv");
    let run = env.run(["map", "validate", &path, "--default-region", "CN"]);
    run.assert_code(3);
    let out = &run.stdout;
    assert!(
        !out.contains('\x1b'),
        "colour codes in a report meant for cron mail:\n{out}"
    );
    for heading in [
        "ERRORS (9)",
        "WARNINGS (2)",
        "number mapped to two mailboxes [conflicting_number]: 1",
    ] {
        assert!(out.contains(heading), "{heading:?} missing:\n{out}");
    }
    assert!(
        out.lines().all(|l| l.chars().count() <= 110),
        "lines wider than a mail:\n{out}"
    );
    let last = out.lines().last().unwrap();
    assert_eq!(
        last,
        "RESULT: NOT USABLE: 9 error(s), 2 warning(s); sync refuses this file until the errors are fixed."
    );

    let run = env.run(["map", "validate", &data("dialect-comma-lf.csv")]);
    run.assert_code(0);
    assert_eq!(
        run.stdout.lines().last().unwrap(),
        "RESULT: usable: 3 mapping(s), no errors, 0 warning(s)."
    );
}

/// Every dialect file maps the same three numbers; checked end to end
/// against an account that registers exactly those three, so a number
/// normalised differently would show as unknown and unmapped.
#[test]
fn every_spreadsheet_dialect_reads_to_the_same_three_mappings() {
    let tm = FakeTeleMessage::start(vec![
        user("Li Wei", "+8613800138000", "active"),
        user("Zhang Min", "+85291234567", "active"),
        user("John Smith", "+16502530000", "active"),
    ]);
    let env = TestEnv::new();
    env.create_maildir_connector("c", &tm.endpoint, &["--default-region", "CN"]);
    let cases = [
        (
            "dialect-comma-lf.csv",
            "comma",
            "utf-8",
            "mobile_number",
            "mailbox",
        ),
        (
            "dialect-semicolon-bom-crlf.csv",
            "semicolon",
            "utf-8-bom",
            "Mobile",
            "E-mail",
        ),
        (
            "dialect-tab-crlf.tsv",
            "tab",
            "utf-8",
            "User's mobile Number",
            "Microsoft 365 mailbox address",
        ),
        (
            "dialect-quoted-extra-columns.csv",
            "comma",
            "utf-8",
            "Phone Number",
            "UPN",
        ),
        (
            "dialect-excel-sep-hint.csv",
            "semicolon",
            "utf-8",
            "phone",
            "email_address",
        ),
        (
            "dialect-national-numbers.csv",
            "comma",
            "utf-8",
            "mobile",
            "user_principal_name",
        ),
        (
            "dialect-chinese-headers.csv",
            "comma",
            "utf-8",
            "手机号码",
            "邮箱",
        ),
    ];
    for (file, delimiter, encoding, number, mailbox) in cases {
        let path = data(file);
        let run = env.run_with_password(
            "pw",
            ["map", "validate", &path, "--check-telemessage", "--json"],
        );
        run.assert_code(0);
        let report = run.json();
        assert_eq!(findings(&report, "errors"), [], "{file}");
        assert_eq!(findings(&report, "warnings"), [], "{file}");
        assert_eq!(counts(&report), (3, 3, 3), "{file}");
        let d = &report["dialect"];
        assert_eq!(
            (
                &d["delimiter"],
                &d["encoding"],
                &d["number_column"],
                &d["mailbox_column"]
            ),
            (
                &json!(delimiter),
                &json!(encoding),
                &json!(number),
                &json!(mailbox)
            ),
            "{file}"
        );
        assert!(
            report["checks"][0]
                .as_str()
                .unwrap()
                .starts_with("telemessage "),
            "{file}"
        );
    }
}

#[test]
fn national_numbers_are_read_in_the_flag_region_else_the_connector_region() {
    let env = TestEnv::new();
    let file = "dialect-national-numbers.csv";
    let run = validate(&env, file, &[]);
    run.assert_code(3);
    let report = run.json();
    // The 00-prefixed numbers need no region; the national one does.
    assert_eq!(
        findings(&report, "errors"),
        [f(2, "impossible_number", "mobile", "138 0013 8000")]
    );
    assert!(message(&report, "errors", 0).contains("--default-region"));

    validate(&env, file, &["--default-region", "cn"]).assert_code(0);
    env.create_maildir_connector(
        "cn",
        "https://archive.example.net",
        &["--default-region", "CN"],
    );
    validate(&env, file, &[]).assert_code(0);
    // The flag wins: 138 0013 8000 is too long for a British number.
    let run = validate(&env, file, &["--default-region", "GB"]);
    run.assert_code(3);
    assert_eq!(run.json()["default_region"], "GB");
}

#[test]
fn a_gb18030_file_is_refused_with_how_to_resave_it_as_utf8() {
    let env = TestEnv::new();
    let run = validate(&env, "encoding-gb18030.csv", &[]);
    run.assert_code(3);
    let report = run.json();
    assert_eq!(findings(&report, "errors").len(), 1);
    assert_eq!(report["errors"][0]["code"], "not_utf8");
    assert_eq!(report["errors"][0]["line"], 2);
    let m = message(&report, "errors", 0);
    for part in [
        "not UTF-8",
        "GB18030",
        "CSV UTF-8",
        "iconv -f GB18030 -t UTF-8",
    ] {
        assert!(m.contains(part), "{part:?} not in {m:?}");
    }
    assert_eq!(
        report["valid"], 0,
        "nothing of a mis-encoded file is trusted"
    );

    let run = env.run(["map", "validate", &data("encoding-gb18030.csv")]);
    assert!(run.stdout.contains("GB18030"), "{}", run.stdout);
}

#[test]
fn a_utf16_file_from_excel_unicode_text_is_refused() {
    let env = TestEnv::new();
    let run = validate(&env, "encoding-utf16-excel-unicode-text.txt", &[]);
    run.assert_code(3);
    let report = run.json();
    assert_eq!(findings(&report, "errors"), [f(1, "not_utf8", "", "")]);
    assert!(message(&report, "errors", 0).contains("UTF-16"));
    assert_eq!(report["dialect"]["encoding"], Value::Null);
    assert_eq!(report["rows"], 0);
}

#[test]
fn a_file_without_the_two_columns_names_the_headers_it_found() {
    let env = TestEnv::new();
    let run = validate(&env, "header-missing-column.csv", &[]);
    run.assert_code(3);
    let report = run.json();
    assert_eq!(
        findings(&report, "errors"),
        [f(1, "missing_column", "", "Name,Phone,Department")]
    );
    let m = message(&report, "errors", 0);
    for part in [
        "no mailbox column",
        "\"Name\", \"Phone\", \"Department\"",
        "mobile_number",
        "upn",
    ] {
        assert!(m.contains(part), "{part:?} not in {m:?}");
    }
    assert_eq!(report["rows"], 0);

    let report = validate(&env, "header-none.csv", &[]).json();
    assert!(message(&report, "errors", 0).contains("looks like data"));
    let report = validate(&env, "header-ambiguous.csv", &[]).json();
    assert_eq!(report["errors"][0]["code"], "ambiguous_column");
    assert!(message(&report, "errors", 0).contains("mobile, phone"));
    let report = validate(&env, "empty.csv", &[]).json();
    assert_eq!(report["errors"][0]["code"], "missing_column");
    assert!(message(&report, "errors", 0).contains("empty"));
}

#[test]
fn an_unclosed_quote_is_an_error_at_the_line_it_opens() {
    let env = TestEnv::new();
    let run = validate(&env, "unclosed-quote.csv", &[]);
    run.assert_code(3);
    let report = run.json();
    assert_eq!(findings(&report, "errors").len(), 1);
    assert_eq!(report["errors"][0]["code"], "unclosed_quote");
    assert_eq!(report["errors"][0]["line"], 3);
    assert_eq!(counts(&report), (1, 1, 1));
}

#[test]
fn lone_cr_line_endings_are_refused_rather_than_read_as_one_line() {
    let env = TestEnv::new();
    let run = validate(&env, "mac-cr-line-endings.csv", &[]);
    run.assert_code(3);
    assert_eq!(run.json()["errors"][0]["code"], "line_endings");
}

#[test]
fn check_telemessage_warns_for_unknown_numbers_and_unmapped_registered_users() {
    let tm = FakeTeleMessage::start(vec![
        user("Li Wei", "+8613800138000", "active"),
        user("Zhang Min", "+85291234567", "active"),
        user("Left the firm", "+8613700137000", "suspended"),
    ]);
    let env = TestEnv::new();
    env.create_maildir_connector("c", &tm.endpoint, &[]);
    let path = data("telemessage-check.csv");
    let run = env.run_with_password(
        "pw",
        ["map", "validate", &path, "--check-telemessage", "--json"],
    );
    run.assert_code(0);
    let report = run.json();
    assert_eq!(findings(&report, "errors"), []);
    assert_eq!(
        findings(&report, "warnings"),
        [
            f(3, "not_in_telemessage", "", "+8613900139000"),
            (
                None,
                "unmapped_registered_user".into(),
                None,
                "+85291234567".into()
            ),
        ]
    );
    assert!(message(&report, "warnings", 1).contains("Zhang Min"));
    assert!(tm.user_pages_served() >= 2, "the users list is paged");

    let human = env.run_with_password("pw", ["map", "validate", &path, "--check-telemessage"]);
    human.assert_code(0);
    assert!(
        human.stdout.contains("Checked against: telemessage"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("registered user without a mapping"),
        "{}",
        human.stdout
    );
}

#[test]
fn check_telemessage_with_a_wrong_password_fails_with_exit_1() {
    let tm = FakeTeleMessage::start(vec![user("Li Wei", "+8613800138000", "active")]);
    let env = TestEnv::new();
    env.create_maildir_connector("c", &tm.endpoint, &[]);
    let path = data("telemessage-check.csv");
    let run = env.run_with_password("wrong", ["map", "validate", &path, "--check-telemessage"]);
    run.assert_code(1);
    assert!(run.stderr.contains("Hint:"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("wrong"),
        "the password leaked: {}",
        run.stderr
    );
}

#[test]
fn checks_need_a_connector() {
    let env = TestEnv::new();
    let path = data("dialect-comma-lf.csv");
    for flag in ["--check-telemessage", "--check-target"] {
        let run = env.run(["map", "validate", &path, flag]);
        run.assert_code(2);
        assert!(run.stderr.contains("--connector"), "{}", run.stderr);
    }
}

#[test]
fn check_target_on_maildir_accepts_every_valid_address() {
    let env = TestEnv::new();
    let archive = env.create_maildir_connector("c", "https://archive.example.net", &[]);
    let path = data("every-finding.csv");
    let run = env.run([
        "map",
        "validate",
        &path,
        "--check-target",
        "--default-region",
        "CN",
        "--json",
    ]);
    run.assert_code(3);
    let report = run.json();
    let codes: Vec<String> = findings(&report, "errors")
        .into_iter()
        .map(|f| f.1)
        .collect();
    assert!(
        !codes.contains(&"not_a_target_user".to_owned()),
        "{codes:?}"
    );
    assert_eq!(codes.len(), 9);
    let check = report["checks"][0].as_str().unwrap();
    assert!(
        check.starts_with("target maildir:") && check.contains(&*archive.display().to_string()),
        "{check}"
    );
}

#[test]
fn sync_refuses_a_mapping_file_with_errors_naming_file_and_line() {
    let env = TestEnv::new();
    let path = data("every-finding.csv");
    env.create_maildir_connector("c", "https://archive.example.net", &["--mapping", &path]);
    let run = env.run_with_password("pw", ["sync"]);
    run.assert_code(1);
    assert!(run.stderr.contains("every-finding.csv:4"), "{}", run.stderr);
    assert!(run.stderr.contains("map validate"), "{}", run.stderr);
}

#[test]
fn unreadable_files_and_unknown_regions_are_clear_errors() {
    let env = TestEnv::new();
    let missing = env.path("nope.csv");
    let run = env.run(["map", "validate", &missing.display().to_string()]);
    run.assert_code(1);
    assert!(
        run.stderr.contains("nope.csv") && run.stderr.contains("Hint:"),
        "{}",
        run.stderr
    );

    let run = validate(
        &env,
        "dialect-comma-lf.csv",
        &["--default-region", "Narnia"],
    );
    run.assert_code(2);
    assert!(
        run.stderr.contains("Narnia") && run.stderr.contains("ISO 3166"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"));
}

fn user(name: &str, mobile: &str, status: &str) -> Value {
    let email = format!("{}@contoso.com", name.to_lowercase().replace(' ', "."));
    json!({"name": name, "mobile": mobile, "email": email, "wechat_id": null, "status": status})
}

/// The two TeleMessage endpoints `--check-telemessage` uses, on loopback:
/// a token for the password `pw`, and the registered users two per page.
struct FakeTeleMessage {
    endpoint: String,
    state: std::sync::Arc<FakeState>,
    _runtime: tokio::runtime::Runtime,
}

struct FakeState {
    users: Vec<Value>,
    pages: std::sync::atomic::AtomicUsize,
}

impl FakeTeleMessage {
    fn start(users: Vec<Value>) -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let state = std::sync::Arc::new(FakeState {
            users,
            pages: Default::default(),
        });
        let app = axum::Router::new()
            .route("/v1/auth/token", post(token))
            .route("/v1/account/users", get(users_page))
            .with_state(state.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, app).await });
        FakeTeleMessage {
            endpoint,
            state,
            _runtime: runtime,
        }
    }

    fn user_pages_served(&self) -> usize {
        self.state.pages.load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn token(Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    if body["password"] == "pw" {
        (
            StatusCode::OK,
            Json(
                json!({"access_token": "tok", "token_type": "Bearer", "expires_in": 3600,
                        "account": {"id": "acc-1", "name": "Contoso"}}),
            ),
        )
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_credentials", "message": "wrong user name or password"})),
        )
    }
}

async fn users_page(
    State(state): State<std::sync::Arc<FakeState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer tok") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "token_expired", "message": "log in again"})),
        );
    }
    state
        .pages
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let start: usize = query
        .get("cursor")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let end = (start + 2).min(state.users.len());
    let next = (end < state.users.len()).then(|| end.to_string());
    (
        StatusCode::OK,
        Json(json!({"users": state.users[start..end], "next_cursor": next})),
    )
}
