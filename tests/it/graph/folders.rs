//! The archive folder: found when it exists, remembered across runs.

use super::fixtures::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_folder_of_that_name_is_used_whether_graph_says_400_or_409() {
    for status in [400, 409] {
        let sim = sim_with(SimConfig {
            folder_exists_status: status,
            ..SimConfig::default()
        })
        .await;
        let existing = sim.add_folder(LI, "wechat archiver");
        let w = writer(&sim);
        w.write(&mailbox(LI), &Fixture::new("itm_folder", vec![]).copy())
            .await
            .expect("write");
        let m = only(sim.messages(LI, FOLDER), "itm_folder");
        assert_eq!(m.folder_id, existing, "status {status}");
        assert_eq!(
            sim.folders(LI).len(),
            1,
            "no second folder (status {status})"
        );
        assert_eq!(w.folder_ids(), vec![(mailbox(LI), existing)]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_id_from_the_ledger_is_used_and_a_stale_one_replaced() {
    let sim = sim_with(SimConfig::default()).await;
    let first = writer(&sim);
    first
        .write(&mailbox(LI), &Fixture::new("itm_a", vec![]).copy())
        .await
        .expect("write");
    let remembered = first.folder_ids();
    let second = writer(&sim);
    for (m, id) in &remembered {
        second.preload_folder_id(m, id.clone());
    }
    second
        .write(&mailbox(LI), &Fixture::new("itm_b", vec![]).copy())
        .await
        .expect("write");
    assert_eq!(sim.stats().folder_creates, 1, "the remembered id was used");
    let third = writer(&sim);
    third.preload_folder_id(&mailbox(LI), "folder-deleted-long-ago".into());
    third
        .write(&mailbox(LI), &Fixture::new("itm_c", vec![]).copy())
        .await
        .expect("write");
    assert_eq!(third.folder_ids(), remembered);
    assert_eq!(sim.messages(LI, FOLDER).len(), 3);
}
