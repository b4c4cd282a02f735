//! `sync` and `map validate --check-target` end to end into the Graph
//! simulator: the real binary, TeleMessage simulator as the source.

use std::path::{Path, PathBuf};

use wechat_archiver::simulator::Simulator;

use crate::support::graph_sim::{GraphSim, MailboxKind, SimConfig as GraphConfig};
use crate::support::{Run, TestEnv};
use crate::sync::{PASSWORD, SINCE, UNTIL, simulator, t};

pub const ITEM_ID_PROPERTY: &str = "String {b8f2c0d4-5e1a-4f7b-9c3d-776563686174} Name ItemId";

pub async fn run(env: &TestEnv, args: Vec<String>, secrets: &Path) -> Run {
    let mut command = env.command(args);
    command.env("WECHAT_ARCHIVER_PASSWORD_FILE", secrets);
    tokio::task::spawn_blocking(move || command.output().unwrap().into())
        .await
        .unwrap()
}

pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Every registered user of the simulated account gets a mailbox.
pub fn register_users(graph: &GraphSim, source: &Simulator) {
    for user in source.dataset().users() {
        if let Some(email) = &user.email {
            graph.add_user(email, &[], MailboxKind::Enabled);
        }
    }
}

/// Creates connector `c` from the TeleMessage simulator into the Graph
/// simulator; returns the password file (TeleMessage, then client secret).
pub async fn graph_connector(
    env: &TestEnv,
    source: &Simulator,
    graph: &GraphSim,
    config: &GraphConfig,
    extra: &[&str],
) -> PathBuf {
    let secrets = env.password_file(PASSWORD, &config.client_secret);
    let target = format!("graph:{}", config.tenant);
    let url = source.url();
    let mut args = strings(&[
        "create",
        "c",
        "--endpoint",
        &url,
        "--username",
        "admin@contoso.com",
        "--target",
        &target,
        "--client-id",
        &config.client_id,
        "--graph-endpoint",
        &graph.url,
        "--login-endpoint",
        &graph.url,
        "--accept-terms",
    ]);
    args.extend(strings(extra));
    run(env, args, &secrets).await.assert_code(0);
    secrets
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_into_graph_lands_every_copy_once_as_received_mail_and_a_rerun_writes_nothing() {
    let source = simulator(60, |c| c.large_fraction = 0.05);
    let graph_config = GraphConfig::default();
    let graph = GraphSim::start(graph_config.clone()).await;
    register_users(&graph, &source);
    let env = TestEnv::new();
    let csv = env.path("mapping.csv");
    source.dataset().write_mapping_csv(&csv).unwrap();
    let secrets = graph_connector(
        &env,
        &source,
        &graph,
        &graph_config,
        &["--mapping", csv.to_str().unwrap()],
    )
    .await;

    let sync_args = strings(&["sync", "--since", SINCE, "--until", UNTIL, "--json"]);
    let first = run(&env, sync_args.clone(), &secrets).await;
    first.assert_code(0);
    let items = source.dataset().items_in_window(t(SINCE), t(UNTIL));
    assert!(
        items.iter().any(|i| i.size > 10_000_000),
        "no item over 10 MB"
    );
    let mut expected = 0;
    for item in &items {
        for mailbox in source.dataset().expected_mailboxes(item, true, true) {
            expected += 1;
            let copies: Vec<_> = graph
                .messages(&mailbox, "WeChat Archiver")
                .into_iter()
                .filter(|m| m.extended(ITEM_ID_PROPERTY) == Some(item.id.as_str()))
                .collect();
            assert_eq!(copies.len(), 1, "{} in {mailbox}", item.id);
            let copy = &copies[0];
            assert!(!copy.is_draft, "{} is a draft in {mailbox}", item.id);
            assert_eq!(
                copy.attachments.len(),
                item.attachments.len(),
                "{}",
                item.id
            );
            for (index, info) in item.attachments.iter().enumerate() {
                let original = source
                    .dataset()
                    .attachment_bytes(item.id.as_str(), index)
                    .unwrap();
                let identical = copy
                    .attachments
                    .iter()
                    .any(|a| a.name == info.name && a.bytes == original);
                assert!(
                    identical,
                    "{}: attachment {index} ({}) differs",
                    item.id, info.name
                );
            }
        }
    }
    assert_eq!(first.json()["written"], expected);
    crate::graph::assert_limits_kept(&graph);

    let second = run(&env, sync_args, &secrets).await;
    second.assert_code(0);
    assert_eq!(second.json()["written"], 0);
    assert_eq!(second.json()["already_archived"], expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn map_validate_check_target_asks_graph_which_mailboxes_exist() {
    let source = simulator(5, |_| {});
    let graph_config = GraphConfig::default();
    let graph = GraphSim::start(graph_config.clone()).await;
    graph.add_user("li.wei@contoso.com", &[], MailboxKind::Enabled);
    let env = TestEnv::new();
    let secrets = graph_connector(&env, &source, &graph, &graph_config, &[]).await;
    let csv = env.path("map.csv");
    std::fs::write(
        &csv,
        "mobile_number,mailbox\n+8613800138000,li.wei@contoso.com\n+8613800138001,nobody@contoso.com\n",
    )
    .unwrap();
    let report = run(
        &env,
        strings(&[
            "map",
            "validate",
            csv.to_str().unwrap(),
            "--check-target",
            "--json",
        ]),
        &secrets,
    )
    .await;
    report.assert_code(3);
    let json = report.json();
    let errors = json["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{json}");
    assert_eq!(errors[0]["line"], 3);
    assert_eq!(errors[0]["value"], "nobody@contoso.com");
}

/// A sync into Graph killed after copies were created but before they
/// were recorded: the next run finds them by the item-id property.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_mid_run_into_graph_is_repaired_without_duplicates() {
    let source = simulator(40, |_| {});
    let graph_config = GraphConfig::default();
    let graph = GraphSim::start(graph_config.clone()).await;
    register_users(&graph, &source);
    let env = TestEnv::new();
    let csv = env.path("mapping.csv");
    source.dataset().write_mapping_csv(&csv).unwrap();
    let secrets = graph_connector(
        &env,
        &source,
        &graph,
        &graph_config,
        &["--mapping", csv.to_str().unwrap()],
    )
    .await;
    let mut crash = env.command(strings(&["sync", "--since", SINCE, "--until", UNTIL]));
    crash.env("WECHAT_ARCHIVER_PASSWORD_FILE", &secrets).env(
        wechat_archiver::faultpoint::CRASH_AT_ENV,
        "before-ledger-commit:12",
    );
    let crashed: Run = tokio::task::spawn_blocking(move || crash.output().unwrap().into())
        .await
        .unwrap();
    assert!(
        crashed
            .stderr
            .contains("crash point before-ledger-commit reached"),
        "{}",
        crashed.stderr
    );
    let repaired = run(
        &env,
        strings(&["sync", "--since", SINCE, "--until", UNTIL, "--json"]),
        &secrets,
    )
    .await;
    repaired.assert_code(0);
    let mut expected = 0u64;
    for item in source.dataset().items_in_window(t(SINCE), t(UNTIL)) {
        for mailbox in source.dataset().expected_mailboxes(&item, true, true) {
            expected += 1;
            let copies = graph
                .messages(&mailbox, "WeChat Archiver")
                .into_iter()
                .filter(|m| m.extended(ITEM_ID_PROPERTY) == Some(item.id.as_str()))
                .count();
            assert_eq!(copies, 1, "{} in {mailbox}", item.id);
        }
    }
    let json = repaired.json();
    let total = json["written"].as_u64().unwrap() + json["already_archived"].as_u64().unwrap();
    assert_eq!(total, expected);
    assert!(
        json["written"].as_u64().unwrap() < expected,
        "the crashed run wrote nothing"
    );
}
