//! Graph's per-mailbox limits: four requests at once, Retry-After, and
//! the request and upload budgets (the simulator counts every breach).

use super::fixtures::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_load_a_mailbox_never_gets_more_than_four_requests_at_once() {
    let sim = sim_with(SimConfig {
        latency: Duration::from_millis(40),
        ..SimConfig::default()
    })
    .await;
    let w = Arc::new(writer(&sim));
    let fixtures: Vec<Arc<Fixture>> = (0..12)
        .map(|i| {
            let atts = if i % 4 == 0 {
                vec![attach("clip.mp4", "video/mp4", 4 * MB, i)]
            } else {
                vec![attach("photo.jpg", "image/jpeg", 50 * KB, i)]
            };
            Arc::new(Fixture::new(&format!("itm_load_{i:02}"), atts))
        })
        .collect();
    let mut tasks = Vec::new();
    for address in [LI, ZHANG] {
        for f in &fixtures {
            let (w, f) = (w.clone(), f.clone());
            tasks.push(tokio::spawn(async move {
                w.write(&mailbox(address), &f.copy()).await
            }));
        }
    }
    for t in tasks {
        t.await.expect("task").expect("write");
    }
    assert_limits_kept(&sim);
    for address in [LI, ZHANG] {
        assert_eq!(
            sim.max_in_flight(address),
            4,
            "{address}: the writer uses, and keeps to, 4 at once"
        );
        let messages = sim.messages(address, FOLDER);
        assert_eq!(messages.len(), fixtures.len());
        for f in &fixtures {
            assert_faithful(&only(messages.clone(), f.item.id.as_str()), f);
        }
    }
    assert_eq!(
        sim.stats().folder_creates,
        2,
        "concurrent writers create the folder once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_waited_out_before_the_mailbox_hears_from_the_writer_again() {
    let sim = sim_with(SimConfig::default()).await;
    let w = writer(&sim);
    let f = Fixture::new(
        "itm_throttled",
        vec![attach("a.pdf", "application/pdf", 10 * KB, 1)],
    );
    // Prime the folder so the fault hits the message create.
    w.write(&mailbox(LI), &Fixture::new("itm_first", vec![]).copy())
        .await
        .expect("write");
    sim.inject(Fault::new("POST", "/messages", 429, Some("1.5")));
    let started = std::time::Instant::now();
    w.write(&mailbox(LI), &f.copy())
        .await
        .expect("write after throttling");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let log = sim.log();
    let throttled = log
        .iter()
        .position(|e| e.status == 429)
        .expect("the 429 was served");
    let next = log[throttled + 1..]
        .iter()
        .find(|e| e.mailbox == log[throttled].mailbox)
        .expect("a retry");
    assert!(
        next.at - log[throttled].at >= Duration::from_millis(1500),
        "retried too early"
    );
    // 503 without Retry-After: exponential backoff, then success.
    sim.inject(Fault {
        times: 2,
        ..Fault::new("POST", "/messages", 503, None)
    });
    w.write(&mailbox(LI), &Fixture::new("itm_503", vec![]).copy())
        .await
        .expect("write after 503s");
    assert_limits_kept(&sim);
    assert_eq!(sim.stats().injected, 3);
    only(sim.messages(LI, FOLDER), "itm_throttled");
    only(sim.messages(LI, FOLDER), "itm_503");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_and_upload_budgets_of_a_mailbox_are_kept() {
    let window = Duration::from_secs(2);
    let sim = sim_with(SimConfig {
        requests_per_window: 8,
        request_window: window,
        upload_bytes_per_window: 8 * MB as u64,
        upload_window: window,
        ..SimConfig::default()
    })
    .await;
    let mut cfg = config(&sim);
    cfg.limits = GraphLimits {
        requests_per_window: 8,
        request_window: window,
        upload_bytes_per_window: 8 * MB as u64,
        upload_window: window,
        ..fast_limits()
    };
    let w = Arc::new(writer_with(&sim, cfg));
    let mut fixtures = vec![Fixture::new(
        "itm_big",
        vec![attach("big.bin", "application/octet-stream", 12 * MB, 7)],
    )];
    fixtures.extend((0..8).map(|i| Fixture::new(&format!("itm_budget_{i}"), vec![])));
    let started = std::time::Instant::now();
    for f in &fixtures {
        w.write(&mailbox(LI), &f.copy()).await.expect("write");
    }
    assert!(started.elapsed() >= window, "the writer had to pace itself");
    assert_limits_kept(&sim);
    let messages = sim.messages(LI, FOLDER);
    assert_eq!(messages.len(), fixtures.len());
    assert_faithful(&only(messages, "itm_big"), &fixtures[0]);
}
