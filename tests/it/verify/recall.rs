//! Recalled items: each copy of a recall names its original's Message-ID
//! (`In-Reply-To`, `References`) so a mail client shows them together, and
//! `verify` names every recall whose original is not archived.

use std::collections::BTreeSet;

use rusqlite::Connection;
use wechat_archiver::telemessage::ItemType;
use wechat_archiver::telemessage::client::{header_value, message_id_of};

use super::{copies, findings, verify};
use crate::support::TestEnv;
use crate::sync::{SINCE, UNTIL, connector, simulator, sync, t};

#[test]
fn a_recalls_copies_name_its_original_and_verify_names_recalls_whose_original_is_not_archived() {
    let sim = simulator(120, |c| c.recalled_fraction = 0.3);
    let env = TestEnv::new();
    let archive = connector(&env, &sim, &[]);
    sync(&env, &["--since", SINCE, "--until", UNTIL]).assert_code(0);
    let dataset = sim.dataset();
    let recalls: Vec<(String, String)> = dataset
        .items_in_window(t(SINCE), t(UNTIL))
        .into_iter()
        .filter(|i| i.kind == ItemType::Recalled)
        .filter_map(|i| {
            let original = i.recall.as_ref()?.original_item_id.clone()?;
            Some((i.id.to_string(), original))
        })
        .collect();

    let mut linked = 0;
    for (file, item) in copies(&archive) {
        let Some((_, original)) = recalls.iter().find(|(r, _)| *r == item) else {
            let bytes = std::fs::read(&file).unwrap();
            assert_eq!(header_value(&bytes, "In-Reply-To"), None, "{item}");
            continue;
        };
        let wanted = message_id_of(&dataset.content(original).unwrap()).unwrap();
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(
            header_value(&bytes, "In-Reply-To"),
            Some(wanted.clone()),
            "{item}"
        );
        assert_eq!(header_value(&bytes, "References"), Some(wanted), "{item}");
        linked += 1;
    }
    assert!(linked > 0, "no copy of a recall with its original named");

    let ledger = Connection::open(env.home.join("ledger.sqlite")).unwrap();
    let state = |id: &str| -> Option<String> {
        ledger
            .query_row("SELECT state FROM items WHERE item_id = ?1", [id], |r| {
                r.get(0)
            })
            .ok()
    };
    let orphaned: BTreeSet<String> = recalls
        .iter()
        .filter(|(_, original)| state(original).as_deref() != Some("archived"))
        .map(|(recall, _)| recall.clone())
        .collect();
    assert!(
        !orphaned.is_empty(),
        "no recall whose original lies outside the window"
    );
    let run = verify(&env, &["--since", SINCE, "--until", UNTIL]);
    run.assert_code(3);
    let report = run.json();
    let named: BTreeSet<String> = findings(&report)
        .into_iter()
        .map(|(kind, item, _)| {
            assert_eq!(kind, "recall_original_missing", "{report:#}");
            item
        })
        .collect();
    assert_eq!(named, orphaned, "{report:#}");
    assert_eq!(
        report["completeness"]["recalls_without_original"],
        orphaned.len()
    );
    // The copies, links included, are what the manifest recorded.
    assert_eq!(report["integrity"]["altered"], 0, "{report:#}");
}
