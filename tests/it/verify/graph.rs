//! `verify` of an archive in the Graph simulator: every copy read back by
//! its id and compared by the digest of its properties and attachment
//! bytes (Graph keeps no MIME); a copy deleted, altered by one byte, or
//! moved to another folder is each named.

use crate::graph_sync::{ITEM_ID_PROPERTY, graph_connector, register_users, run, strings};
use crate::support::TestEnv;
use crate::support::graph_sim::{GraphSim, SimConfig as GraphConfig, StoredMessage};
use crate::sync::{SINCE, UNTIL, simulator};

use super::findings;

const FOLDER: &str = "WeChat Archiver";

#[tokio::test(flavor = "multi_thread")]
async fn on_graph_a_deleted_an_altered_and_a_moved_copy_are_each_named() {
    let source = simulator(40, |_| {});
    let graph_config = GraphConfig::default();
    let graph = GraphSim::start(graph_config.clone()).await;
    register_users(&graph, &source);
    let env = TestEnv::new();
    let csv = env.path("mapping.csv");
    source.dataset().write_mapping_csv(&csv).unwrap();
    let csv = csv.display().to_string();
    let secrets = graph_connector(&env, &source, &graph, &graph_config, &["--mapping", &csv]).await;
    let sync = strings(&["sync", "--since", SINCE, "--until", UNTIL]);
    run(&env, sync, &secrets).await.assert_code(0);
    let verify = || run(&env, strings(&["verify", "--json"]), &secrets);

    let copies: Vec<(String, StoredMessage)> = source
        .dataset()
        .users()
        .iter()
        .filter_map(|u| u.email.clone())
        .flat_map(|user| {
            let messages = graph.messages(&user, FOLDER);
            messages.into_iter().map(move |m| (user.to_lowercase(), m))
        })
        .collect();
    assert!(copies.len() > 10, "{} copies", copies.len());
    let clean = verify().await;
    clean.assert_code(0);
    let report = clean.json();
    assert!(findings(&report).is_empty(), "{report:#}");
    assert_eq!(report["integrity"]["checked"], copies.len());
    assert_eq!(report["integrity"]["intact"], copies.len());

    let altered = copies
        .iter()
        .find(|(_, m)| m.attachments.iter().any(|a| !a.bytes.is_empty()))
        .expect("a copy with an attachment");
    let others: Vec<_> = copies
        .iter()
        .filter(|(_, m)| m.id != altered.1.id)
        .collect();
    let (deleted, moved) = (others[0], others[1]);
    graph.edit_message(&altered.1.id, |m| {
        let a = m
            .attachments
            .iter_mut()
            .find(|a| !a.bytes.is_empty())
            .unwrap();
        let last = a.bytes.len() - 1;
        a.bytes[last] ^= 0x01;
    });
    graph.edit_message(&deleted.1.id, |m| m.deleted = true);
    let old = graph.add_folder(&moved.0, "Old stuff");
    graph.edit_message(&moved.1.id, |m| m.folder_id = old);

    let run = verify().await;
    run.assert_code(3);
    let report = run.json();
    let mut found = findings(&report);
    found.sort();
    let named = |kind: &str, (mailbox, message): &(String, StoredMessage)| {
        let item = message.extended(ITEM_ID_PROPERTY).unwrap().to_owned();
        (kind.to_owned(), item, mailbox.clone())
    };
    let mut expected = vec![
        named("copy_gone", deleted),
        named("copy_altered", altered),
        named("copy_moved", moved),
    ];
    expected.sort();
    assert_eq!(found, expected, "{report:#}");
    let details = report["findings"].to_string();
    assert!(details.contains("Old stuff"), "{details}");

    // A property Graph keeps, changed by one character, is seen as well.
    graph.edit_message(&altered.1.id, |m| {
        let a = m
            .attachments
            .iter_mut()
            .find(|a| !a.bytes.is_empty())
            .unwrap();
        let last = a.bytes.len() - 1;
        a.bytes[last] ^= 0x01;
    });
    let subject = copies
        .iter()
        .find(|(_, m)| ![&altered.1.id, &deleted.1.id, &moved.1.id].contains(&&m.id));
    let subject = subject.unwrap();
    graph.edit_message(&subject.1.id, |m| m.subject.push('.'));
    let run = verify().await;
    run.assert_code(3);
    let found = findings(&run.json());
    assert!(found.contains(&named("copy_altered", subject)), "{found:?}");
    assert!(
        !found.contains(&named("copy_altered", altered)),
        "{found:?}"
    );
}
