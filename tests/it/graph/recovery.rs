//! After a crash or a lost answer: no copy twice, none half-written, and
//! the large-item fallback when Graph refuses attachments.

use super::fixtures::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_existing_finds_a_whole_copy_and_removes_a_half_written_one() {
    let sim = sim_with(SimConfig::default()).await;
    let f = Fixture::new(
        "itm_Crash",
        vec![attach("big.bin", "application/octet-stream", 4 * MB, 5)],
    );
    let written = writer(&sim)
        .write(&mailbox(LI), &f.copy())
        .await
        .expect("write");
    // A fresh writer, as after a restart: nothing cached.
    let w = writer(&sim);
    let found = w
        .find_existing(&mailbox(LI), &f.item)
        .await
        .expect("search");
    assert_eq!(
        found,
        Some(Written {
            location: written.location.clone(),
            bytes: f.copy().len()
        })
    );
    // Graph's value match ignores case; item ids do not.
    let other = item("itm_crash", b"", &[]);
    assert_eq!(
        w.find_existing(&mailbox(LI), &other).await.expect("search"),
        None
    );
    assert_eq!(
        w.find_existing(&mailbox(ZHANG), &f.item)
            .await
            .expect("search"),
        None
    );
    // The run died before the upload finished: the copy is not whole.
    sim.drop_attachments(&written.location, 0);
    assert_eq!(
        w.find_existing(&mailbox(LI), &f.item)
            .await
            .expect("search"),
        None
    );
    assert!(
        sim.messages(LI, FOLDER).is_empty(),
        "the half-written copy is gone"
    );
    assert_eq!(sim.deleted(LI).len(), 1);
    w.write(&mailbox(LI), &f.copy()).await.expect("rewrite");
    assert_faithful(&only(sim.messages(LI, FOLDER), "itm_Crash"), &f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_is_lost_is_not_written_twice() {
    let sim = sim_with(SimConfig::default()).await;
    let w = writer(&sim);
    w.write(&mailbox(LI), &Fixture::new("itm_warm", vec![]).copy())
        .await
        .expect("write");
    sim.inject(Fault {
        after_processing: true,
        ..Fault::new("POST", "/messages", 504, None)
    });
    let f = Fixture::new(
        "itm_lost_answer",
        vec![attach("a.pdf", "application/pdf", 10 * KB, 1)],
    );
    let written = w.write(&mailbox(LI), &f.copy()).await.expect("write");
    let m = only(sim.messages(LI, FOLDER), "itm_lost_answer");
    assert_eq!(written.location, m.id);
    // An upload whose answer is lost: the copy is written again, whole, once.
    sim.inject(Fault {
        after_processing: true,
        ..Fault::new("PUT", "/upload/", 504, None)
    });
    let g = Fixture::new(
        "itm_lost_chunk",
        vec![attach("v.mp4", "video/mp4", 7 * MB, 2)],
    );
    w.write(&mailbox(LI), &g.copy()).await.expect("write");
    assert_faithful(&only(sim.messages(LI, FOLDER), "itm_lost_chunk"), &g);
    assert_limits_kept(&sim);
}

/// A stand-in for the IMAP writer a deployment would configure as the
/// fallback; it keeps what it is given.
#[derive(Default)]
struct Recorder {
    got: Mutex<Vec<(String, String, Vec<u8>)>>,
}

#[async_trait]
impl MailboxWriter for Recorder {
    fn describe(&self) -> String {
        "recorder".into()
    }
    async fn is_valid_user(&self, _: &Mailbox) -> Result<bool, WriteError> {
        Ok(true)
    }
    async fn find_existing(&self, _: &Mailbox, _: &Item) -> Result<Option<Written>, WriteError> {
        Ok(None)
    }
    async fn write(&self, mailbox: &Mailbox, copy: &Copy<'_>) -> Result<Written, WriteError> {
        let mut bytes = copy.trace_headers();
        bytes.extend_from_slice(&copy.content.to_bytes().await.expect("content"));
        self.got
            .lock()
            .unwrap()
            .push((mailbox.to_string(), copy.item.id.to_string(), bytes));
        Ok(Written {
            location: "fallback-1".into(),
            bytes: copy.len(),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_graph_refuses_attachments_on_received_messages_nothing_half_written_stays() {
    let sim = sim_with(SimConfig {
        refuse_attachments_on_non_draft: true,
        ..SimConfig::default()
    })
    .await;
    let w = writer(&sim);
    let large = Fixture::new("itm_large", vec![attach("v.mp4", "video/mp4", 5 * MB, 3)]);
    match w.write(&mailbox(LI), &large.copy()).await {
        Err(WriteError::Copy(reason)) => {
            assert!(reason.contains("refuses to add attachments"), "{reason}")
        }
        other => panic!("expected a copy failure, got {other:?}"),
    }
    assert!(
        sim.messages(LI, FOLDER).is_empty(),
        "the incomplete copy was removed"
    );
    // Items whose attachments fit in the create request are unaffected.
    let small = Fixture::new(
        "itm_small",
        vec![attach("a.pdf", "application/pdf", 200 * KB, 4)],
    );
    w.write(&mailbox(LI), &small.copy()).await.expect("write");
    assert_faithful(&only(sim.messages(LI, FOLDER), "itm_small"), &small);

    let recorder = Arc::new(Recorder::default());
    let w = writer(&sim).with_large_item_fallback(recorder.clone());
    let written = w
        .write(&mailbox(LI), &large.copy())
        .await
        .expect("fallback write");
    assert_eq!(written.location, "fallback-1");
    let mut expected = large.copy().trace_headers();
    expected.extend_from_slice(&large.content.to_bytes().await.unwrap());
    let got = recorder.got.lock().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, LI);
    assert!(got[0].2 == expected, "the fallback got the whole message");
    assert_eq!(
        sim.messages(LI, FOLDER).len(),
        1,
        "Graph holds only the small item"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_with_more_attachments_than_one_page_lists_is_found_whole() {
    // The simulator lists two attachments a page and refuses `$top`.
    let sim = sim_with(SimConfig::default()).await;
    let f = Fixture::new(
        "itm_five_attachments",
        (0..5)
            .map(|i| attach("scan.pdf", "application/pdf", 20 * KB, 40 + i))
            .collect(),
    );
    let written = writer(&sim)
        .write(&mailbox(LI), &f.copy())
        .await
        .expect("write");
    let found = writer(&sim)
        .find_existing(&mailbox(LI), &f.item)
        .await
        .expect("search");
    assert_eq!(
        found.map(|w| w.location),
        Some(written.location),
        "all three pages counted: the copy is whole"
    );
    assert!(sim.deleted(LI).is_empty(), "nothing was removed");
    let pages = sim
        .log()
        .iter()
        .filter(|e| e.method == "GET" && e.path.ends_with("/attachments"))
        .count();
    assert_eq!(pages, 3, "the writer followed @odata.nextLink");
    assert_limits_kept(&sim);
}
