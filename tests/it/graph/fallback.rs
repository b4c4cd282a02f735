//! `--large-item-fallback imap` end to end: a Graph connector whose
//! tenant refuses attachments on received messages sends the items Graph
//! cannot take whole over IMAP with XOAUTH2 (the same application, its
//! token checked by a real Dovecot against the Graph simulator's identity
//! platform), and everything else through Graph.

use std::path::PathBuf;

use crate::support::dovecot::Dovecot;
use crate::support::graph_sim::{GraphSim, MailboxKind, SimConfig};
use crate::support::{Run, TestEnv};
use crate::sync::{PASSWORD, SINCE, UNTIL, simulator, t};

const ITEM_ID_PROPERTY: &str = "String {b8f2c0d4-5e1a-4f7b-9c3d-776563686174} Name ItemId";
const FOLDER: &str = "WeChat Archiver";
/// Attachments above this cannot go inline in Graph's create request.
const INLINE_MAX: u64 = 3 * 1024 * 1024;

async fn run(env: &TestEnv, args: &[&str], secrets: Option<&PathBuf>) -> Run {
    let mut command = env.command(args);
    if let Some(secrets) = secrets {
        command.env("WECHAT_ARCHIVER_PASSWORD_FILE", secrets);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap().into())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn items_graph_cannot_take_whole_go_over_imap_with_xoauth2_and_every_copy_lands_once() {
    let source = simulator(40, |c| c.large_fraction = 0.15);
    let config = SimConfig {
        refuse_attachments_on_non_draft: true,
        ..SimConfig::default()
    };
    let graph = GraphSim::start(config.clone()).await;
    let users: Vec<String> = source
        .dataset()
        .users()
        .iter()
        .filter_map(|u| u.email.clone())
        .collect();
    for user in &users {
        graph.add_user(user, &[], MailboxKind::Enabled);
    }
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let dovecot = Dovecot::start_oauth2(&refs, &format!("{}/introspect", graph.url));
    let env = TestEnv::new();
    let secrets = env.password_file(PASSWORD, &config.client_secret);
    let csv = env.path("mapping.csv");
    source.dataset().write_mapping_csv(&csv).unwrap();
    let target = format!("graph:{}", config.tenant);
    let fallback = format!("imap://127.0.0.1:{}", dovecot.port);
    let url = source.url();
    run(
        &env,
        &[
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
            "--large-item-fallback",
            &fallback,
            "--mapping",
            csv.to_str().unwrap(),
            "--accept-terms",
        ],
        None,
    )
    .await
    .assert_code(0);

    let sync = ["sync", "--since", SINCE, "--until", UNTIL, "--json"];
    run(&env, &sync, Some(&secrets)).await.assert_code(0);
    let dataset = source.dataset();
    let (mut over_imap, mut over_graph) = (0, 0);
    for item in dataset.items_in_window(t(SINCE), t(UNTIL)) {
        let too_large = item.attachments.iter().any(|a| a.size > INLINE_MAX);
        for mailbox in dataset.expected_mailboxes(&item, true, true) {
            let in_graph = graph
                .messages(&mailbox, FOLDER)
                .iter()
                .filter(|m| m.extended(ITEM_ID_PROPERTY) == Some(item.id.as_str()))
                .count();
            let in_imap: Vec<_> = dovecot
                .fetch_all(&mailbox, FOLDER)
                .unwrap_or_default()
                .into_iter()
                .filter(|m| m.item_id().as_deref() == Some(item.id.as_str()))
                .collect();
            assert_eq!(in_graph + in_imap.len(), 1, "{} in {mailbox}", item.id);
            if too_large {
                assert_eq!(in_imap.len(), 1, "{} should have gone over IMAP", item.id);
                let original = dataset.content(item.id.as_str()).unwrap();
                assert!(
                    in_imap[0].body.ends_with(&original),
                    "{} is not whole",
                    item.id
                );
                over_imap += 1;
            } else {
                assert_eq!(in_graph, 1, "{} should have gone through Graph", item.id);
                over_graph += 1;
            }
        }
    }
    assert!(
        over_imap > 0 && over_graph > 0,
        "{over_imap} over IMAP, {over_graph} over Graph"
    );
    let stats = graph.stats();
    assert!(
        stats.introspections > 0,
        "Dovecot never checked a token: {stats:?}"
    );

    // A rerun finds every copy where it went and writes nothing.
    let again = run(&env, &sync, Some(&secrets)).await;
    again.assert_code(0);
    assert_eq!(again.json()["written"], 0, "{}", again.stdout);

    // A lost ledger: the copies that went over IMAP are found there too,
    // and adopted, not written again.
    for file in ["ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"] {
        let _ = std::fs::remove_file(env.home.join(file));
    }
    let lost = run(&env, &sync, Some(&secrets)).await;
    lost.assert_code(0);
    assert_eq!(lost.json()["written"], 0, "{}", lost.stdout);
    assert_eq!(
        lost.json()["adopted"].as_u64(),
        Some((over_imap + over_graph) as u64),
        "{}",
        lost.stdout
    );

    let status = run(&env, &["status", "--json"], Some(&secrets)).await;
    let shown = status.json()["connectors"][0]["large_item_fallback"].clone();
    assert!(
        shown.as_str().is_some_and(|s| s.contains(&fallback)),
        "{shown}"
    );
}

#[test]
fn large_item_fallback_imap_means_the_clouds_exchange_online_and_only_for_graph() {
    let env = TestEnv::new();
    let create = |name: &str, target: &str, extra: &[&str]| {
        let mut args = vec![
            "create",
            name,
            "--endpoint",
            "https://archive.example.net",
            "--username",
            "admin@contoso.com",
            "--target",
            target,
            "--client-id",
            "app",
            "--accept-terms",
        ];
        args.extend_from_slice(extra);
        env.run(&args)
    };
    create(
        "g",
        "graph:contoso.onmicrosoft.com",
        &["--large-item-fallback", "imap"],
    )
    .assert_code(0);
    create(
        "us",
        "graph:contoso.onmicrosoft.us",
        &["--cloud", "usgov", "--large-item-fallback", "imap"],
    )
    .assert_code(0);
    let config = std::fs::read_to_string(env.home.join("config.toml")).unwrap();
    assert!(
        config.contains("large_item_fallback = \"imaps://outlook.office365.com:993\"")
            && config.contains("large_item_fallback = \"imaps://outlook.office365.us:993\""),
        "{config}"
    );
    let refused = create("m", "maildir:/tmp/x", &["--large-item-fallback", "imap"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stderr.contains("Graph targets only"),
        "{}",
        refused.stderr
    );
    let plain = create(
        "p",
        "graph:contoso.onmicrosoft.com",
        &["--large-item-fallback", "imap://mail.example.net:143"],
    );
    assert_eq!(plain.code, 2, "{plain:?}");
}
