//! What lands in the mailbox: a received message, whole, with its
//! times, addresses, body and attachments as the original had them.

use super::fixtures::*;
use wechat_archiver::mailbox::ReadBack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_copy_lands_once_as_a_received_message_with_identical_attachments() {
    let sim = sim_with(SimConfig::default()).await;
    let w = writer(&sim);
    let fixtures = vec![
        Fixture::new("itm_text_only", vec![]),
        Fixture::new(
            "itm_small_and_5mb",
            vec![
                attach("报价单.pdf", "application/pdf", 100 * KB, 1),
                attach("site-visit.mp4", "video/mp4", 5 * MB, 2),
            ],
        ),
        Fixture::new(
            "itm_20mb",
            vec![
                attach("voice.amr", "audio/amr", 100 * KB, 3),
                attach("archive.zip", "application/zip", 20 * MB, 4),
            ],
        ),
    ];
    for address in [LI, ZHANG] {
        for f in &fixtures {
            let written = w.write(&mailbox(address), &f.copy()).await.expect("write");
            assert_eq!(written.bytes, f.copy().len());
            let stored = only(sim.messages(address, FOLDER), f.item.id.as_str());
            assert_eq!(written.location, stored.id);
        }
    }
    for address in [LI, ZHANG] {
        let messages = sim.messages(address, FOLDER);
        assert_eq!(
            messages.len(),
            fixtures.len(),
            "{address} holds exactly one copy per item"
        );
        for f in &fixtures {
            assert_faithful(&only(messages.clone(), f.item.id.as_str()), f);
        }
        assert!(
            sim.deleted(address).is_empty(),
            "nothing was half-written and removed"
        );
    }
    let s = sim.stats();
    assert_eq!(s.folder_creates, 2, "one archive folder per mailbox");
    assert_eq!(
        s.upload_sessions, 4,
        "the 5 MB and 20 MB attachments, in each mailbox"
    );
    assert!(s.upload_chunks.iter().all(|c| *c <= 4 * MB));
    assert_eq!(s.token_requests, 1, "the token is reused");
    assert_limits_kept(&sim);
    let ids = w.folder_ids();
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|(_, id)| {
        sim.folders(LI)
            .iter()
            .chain(sim.folders(ZHANG).iter())
            .any(|f| &f.id == id)
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_body_stays_html() {
    let sim = sim_with(SimConfig::default()).await;
    let w = writer(&sim);
    let raw = format!(
        "Message-ID: <itm_html@archive.telemessage.sim>\r\nDate: Sun, 22 Nov 2026 08:15:00 +0000\r\nFrom: Li Wei <{LI}>\r\nTo: <{ZHANG}>\r\nSubject: call\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nplain version\r\n--b\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n<p>html <b>version</b></p>\r\n--b--\r\n"
    );
    let f = Fixture {
        item: item("itm_html", raw.as_bytes(), &[]),
        content: Content::Memory(Bytes::from(raw)),
        attachments: vec![],
    };
    w.write(&mailbox(LI), &f.copy()).await.expect("write");
    let m = only(sim.messages(LI, FOLDER), "itm_html");
    assert_eq!(m.body_type, "html");
    assert!(m.body.contains("<b>version</b>"));
    assert!(!m.is_draft);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attachment_over_150_mb_is_a_copy_failure_and_nothing_is_written() {
    let sim = sim_with(SimConfig::default()).await;
    let w = writer(&sim);
    let big = vec![attach("raw-footage.mov", "video/quicktime", 151 * MB, 9)];
    let mut f = Fixture::new("itm_huge", big);
    // The listing may leave attachments out: the content itself decides.
    f.item.attachments.clear();
    match w.write(&mailbox(LI), &f.copy()).await {
        Err(WriteError::Copy(reason)) => {
            assert!(reason.contains("raw-footage.mov"), "{reason}");
            assert!(reason.contains("150 MB"), "{reason}");
        }
        other => panic!("expected a copy failure, got {other:?}"),
    }
    // And when the listing declares it, the content is not even read.
    let declared = item(
        "itm_huge_declared",
        b"",
        &[attach("x.bin", "application/octet-stream", 0, 1)],
    );
    let mut declared = declared;
    declared.attachments[0].size = 151 * MB as u64;
    let unread = Content::Memory(Bytes::from_static(b"not even a message"));
    let copy = Copy {
        item: &declared,
        connector: "c",
        content: &unread,
        in_reply_to: None,
    };
    assert!(
        matches!(w.write(&mailbox(LI), &copy).await, Err(WriteError::Copy(r)) if r.contains("150 MB"))
    );
    let posts = sim
        .log()
        .iter()
        .filter(|e| e.method == "POST" && e.path.ends_with("/messages"))
        .count();
    assert_eq!(posts, 0, "no message was created for a refused item");
    assert!(sim.messages(LI, FOLDER).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_that_do_not_all_fit_in_the_create_request_follow_one_by_one() {
    let sim = sim_with(SimConfig::default()).await;
    let w = writer(&sim);
    let f = Fixture::new(
        "itm_three_medium",
        vec![
            attach("a.jpg", "image/jpeg", 1536 * KB, 1),
            attach("b.jpg", "image/jpeg", 1536 * KB, 2),
            attach("c.jpg", "image/jpeg", 1536 * KB, 3),
        ],
    );
    w.write(&mailbox(LI), &f.copy()).await.expect("write");
    let m = only(sim.messages(LI, FOLDER), "itm_three_medium");
    assert_faithful(&m, &f);
    let vias: Vec<Via> = m.attachments.iter().map(|a| a.via).collect();
    assert_eq!(vias, vec![Via::InCreate, Via::Post, Via::Post]);
    assert_limits_kept(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_too_long_for_one_request_is_attached_whole() {
    let sim = sim_with(SimConfig::default()).await;
    let w = writer(&sim);
    let text: String = "聊天记录 chat log line\r\n".repeat(100_000);
    let raw = mime_with_text("itm_long_body", &text, &[]);
    let f = Fixture {
        item: item("itm_long_body", &raw, &[]),
        content: Content::Memory(Bytes::from(raw)),
        attachments: vec![],
    };
    w.write(&mailbox(LI), &f.copy()).await.expect("write");
    let m = only(sim.messages(LI, FOLDER), "itm_long_body");
    assert!(!m.is_draft);
    assert!(
        m.body.contains("message.txt"),
        "the body points to the attachment"
    );
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].name, "message.txt");
    assert!(
        m.attachments[0].bytes == text.as_bytes(),
        "the text is attached unchanged"
    );
    assert_limits_kept(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inline_image_keeps_its_content_id() {
    let sim = sim_with(SimConfig::default()).await;
    let w = writer(&sim);
    let png = noise(30 * KB, 11);
    let raw = format!(
        "Message-ID: <itm_cid@archive.telemessage.sim>\r\nDate: Sun, 22 Nov 2026 08:15:00 +0000\r\nFrom: Li Wei <{LI}>\r\nTo: <{ZHANG}>\r\nSubject: photo\r\nMIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=\"r\"\r\n\r\n--r\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n<p><img src=\"cid:img1@tm\"></p>\r\n--r\r\nContent-Type: image/png\r\nContent-ID: <img1@tm>\r\nContent-Disposition: inline; filename=\"photo.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--r--\r\n",
        wrapped_base64(&png)
    );
    let f = Fixture {
        item: item("itm_cid", raw.as_bytes(), &[]),
        content: Content::Memory(Bytes::from(raw)),
        attachments: vec![],
    };
    w.write(&mailbox(LI), &f.copy()).await.expect("write");
    let m = only(sim.messages(LI, FOLDER), "itm_cid");
    assert_eq!(m.body_type, "html");
    assert_eq!(m.attachments.len(), 1);
    let a = &m.attachments[0];
    assert!(a.is_inline);
    assert_eq!(a.content_id.as_deref(), Some("img1@tm"));
    assert_eq!(a.name, "photo.png");
    assert!(a.bytes == png);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spooled_large_item_is_uploaded_whole_from_the_spool_and_digests_as_read_back() {
    let sim = sim_with(SimConfig::default()).await;
    let w = writer(&sim);
    let mut f = Fixture::new(
        "itm_spooled_12mb",
        vec![
            attach("memo.pdf", "application/pdf", 100 * KB, 5),
            attach("site-visit.mp4", "video/mp4", 12 * MB, 6),
            attach("drawings.zip", "application/zip", 4 * MB, 7),
        ],
    );
    let spool = tempfile::tempdir().unwrap();
    let path = spool.path().join("itm_spooled_12mb.eml");
    let raw = f.content.to_bytes().await.unwrap();
    std::fs::write(&path, &raw).unwrap();
    f.content = Content::Spooled {
        path,
        len: raw.len() as u64,
    };
    for address in [LI, ZHANG] {
        let (written, digest) = w
            .write_with_digest(&mailbox(address), &f.copy())
            .await
            .expect("write");
        let stored = only(sim.messages(address, FOLDER), f.item.id.as_str());
        assert_faithful(&stored, &f);
        let read = w
            .read_back(&mailbox(address), &written.location, &f.item.id)
            .await
            .expect("read back");
        match read {
            ReadBack::Found { sha256, .. } => assert_eq!(
                Some(sha256),
                digest,
                "the manifest's digest is what verify reads back"
            ),
            other => panic!("not found: {other:?}"),
        }
    }
    let s = sim.stats();
    assert_eq!(
        s.upload_sessions, 4,
        "the 12 MB and 4 MB attachments, twice"
    );
    assert!(s.upload_chunks.iter().all(|c| *c <= 4 * MB));
    assert_limits_kept(&sim);
}
