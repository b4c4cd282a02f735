//! Each fault fires as armed, a counted number of times, and then stops.

use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Client, small, window};
use crate::simulator::{Endpoint, Fault, Scope, SimConfig, Simulator};

async fn status(c: &Client, path: &str) -> u16 {
    c.get(path).await.status().as_u16()
}

/// An item whose content is comfortably larger than `min` bytes.
fn item_over(sim: &Simulator, min: u64) -> crate::telemessage::Item {
    sim.dataset()
        .items()
        .into_iter()
        .find(|i| i.size > min)
        .expect("an item that large")
}

fn content_path(item: &crate::telemessage::Item) -> String {
    format!("/v1/archive/items/{}/content", item.id)
}

#[tokio::test]
async fn rate_limit_burst_announces_retry_after_and_notices_hammering() {
    let sim = Simulator::start(small(5)).unwrap();
    let c = Client::login(&sim).await;
    sim.faults().arm_spec("429x2@5").unwrap();
    let r = c.get("/v1/account").await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "5");
    // Past the grace for requests already in flight (300 ms), well before
    // the 5 s announced end: hammering.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(status(&c, "/v1/account").await, 429);
    assert_eq!(sim.stats().hammering_requests, 1);
    // The second 429 announced 5 s again; wait them out from its answer.
    tokio::time::sleep(Duration::from_millis(5100)).await;
    assert_eq!(status(&c, "/v1/account").await, 200);
    let stats = sim.stats();
    assert_eq!(stats.fired("429"), 2);
    assert_eq!(
        stats.hammering_requests, 1,
        "waiting out Retry-After is not hammering"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn retry_after_can_be_an_http_date() {
    let sim = Simulator::start(small(5)).unwrap();
    let c = Client::login(&sim).await;
    sim.faults().arm_spec("retry-after-date,429x1@2").unwrap();
    let before = std::time::SystemTime::now();
    let r = c.get("/v1/account").await;
    let after = std::time::SystemTime::now();
    assert_eq!(r.status(), 429);
    let date = httpdate::parse_http_date(r.headers()["retry-after"].to_str().unwrap()).unwrap();
    // The next whole second at least 2 s after the server read its clock:
    // however long the request took, at least 2 s after it was sent and at
    // most 3 s after its answer.
    assert!(
        date >= before + Duration::from_secs(2) && date <= after + Duration::from_secs(3),
        "{date:?} not 2 s after {before:?}..{after:?}"
    );
    assert_eq!(status(&c, "/v1/account").await, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn server_errors_hit_their_scope_and_stop() {
    let sim = Simulator::start(small(20)).unwrap();
    let c = Client::login(&sim).await;
    sim.faults()
        .arm_spec("503x2,500x1/list,502x1/content,504x1/token")
        .unwrap();
    let item = item_over(&sim, 0);
    let (since, until) = window(&sim);
    let list = format!("/v1/archive/items?since={since}&until={until}");
    // Faults are taken in arming order: the unscoped 503s go first.
    assert_eq!(status(&c, "/v1/account").await, 503);
    assert_eq!(status(&c, &list).await, 503);
    assert_eq!(status(&c, &list).await, 500);
    assert_eq!(status(&c, &list).await, 200);
    assert_eq!(status(&c, &content_path(&item)).await, 502);
    assert_eq!(status(&c, &content_path(&item)).await, 200);
    let r = c
        .http
        .post(format!("{}/v1/auth/token", c.base))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    let stats = sim.stats();
    assert_eq!(
        (
            stats.fired("503"),
            stats.fired("500"),
            stats.fired("502"),
            stats.fired("504")
        ),
        (2, 1, 1, 1)
    );
    assert!(sim.faults().pending().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn dropped_body_can_be_resumed_with_range() {
    let sim = Simulator::start(small(40)).unwrap();
    let c = Client::login(&sim).await;
    let item = item_over(&sim, 20_000);
    sim.faults().arm_spec("drop-body:1@5000").unwrap();
    let mut r = c.get(&content_path(&item)).await;
    assert_eq!(r.status(), 200);
    let mut got = Vec::new();
    let mut failed = false;
    loop {
        match r.chunk().await {
            Ok(Some(chunk)) => got.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the body must end in an error, not look complete");
    assert_eq!(got.len(), 5000);
    let rest = c
        .http
        .get(format!("{}{}", c.base, content_path(&item)))
        .bearer_auth(&c.token)
        .header("Range", "bytes=5000-")
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 206);
    got.extend_from_slice(&rest.bytes().await.unwrap());
    assert_eq!(hex::encode(Sha256::digest(&got)), item.sha256);
    assert_eq!(sim.stats().fired("drop-body"), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn slow_bodies_stall_then_finish_and_concurrency_is_counted() {
    let sim = Simulator::start(small(30)).unwrap();
    let c = Client::login(&sim).await;
    let item = item_over(&sim, 10_000);
    sim.faults().arm_spec("slow-body:3@1s").unwrap();
    let timed_out = tokio::time::timeout(Duration::from_millis(300), async {
        c.get(&content_path(&item)).await.bytes().await
    })
    .await;
    assert!(timed_out.is_err(), "a reader with a short timeout gives up");
    let path = content_path(&item);
    let (a, b) = tokio::join!(c.get(&path), c.get(&path));
    let (a, b) = tokio::join!(a.bytes(), b.bytes());
    assert_eq!(hex::encode(Sha256::digest(a.unwrap())), item.sha256);
    assert_eq!(hex::encode(Sha256::digest(b.unwrap())), item.sha256);
    let stats = sim.stats();
    assert_eq!(stats.fired("slow-body"), 3);
    assert!(stats.max_concurrent_downloads >= 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn corrupt_content_keeps_its_length_but_not_its_digest() {
    let sim = Simulator::start(small(10)).unwrap();
    let c = Client::login(&sim).await;
    let item = item_over(&sim, 0);
    sim.faults().arm(Fault::Corrupt { count: 1 });
    let bad = c.get(&content_path(&item)).await.bytes().await.unwrap();
    assert_eq!(bad.len() as u64, item.size);
    assert_ne!(hex::encode(Sha256::digest(&bad)), item.sha256);
    let good = c.get(&content_path(&item)).await.bytes().await.unwrap();
    assert_eq!(hex::encode(Sha256::digest(&good)), item.sha256);
    sim.shutdown().await;
}

#[tokio::test]
async fn expired_tokens_fire_once_per_fresh_token() {
    let sim = Simulator::start(small(5)).unwrap();
    let mut c = Client::login(&sim).await;
    sim.faults().arm_spec("expire-token:2").unwrap();
    let expect = |s: u16, body: Value, want: u16| {
        assert_eq!(s, want, "{body}");
        if want == 401 {
            assert_eq!(body["error"], "token_expired");
        }
    };
    let (s, b) = c.json("/v1/account").await;
    expect(s, b, 200);
    let (s, b) = c.json("/v1/account").await;
    expect(s, b, 401);
    let (s, b) = c.json("/v1/account").await;
    expect(s, b, 401);
    c.token = super::fresh_token(&c.http, &c.base, &sim.config().password).await;
    let (s, b) = c.json("/v1/account").await;
    expect(s, b, 200);
    let (s, b) = c.json("/v1/account").await;
    expect(s, b, 401);
    c.token = super::fresh_token(&c.http, &c.base, &sim.config().password).await;
    for _ in 0..3 {
        let (s, b) = c.json("/v1/account").await;
        expect(s, b, 200);
    }
    assert_eq!(sim.stats().fired("expire-token"), 2);
    assert_eq!(sim.stats().tokens_issued, 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn expired_cursor_answers_410_once() {
    let sim = Simulator::start(small(20)).unwrap();
    let c = Client::login(&sim).await;
    let (since, until) = window(&sim);
    let first = format!("/v1/archive/items?since={since}&until={until}&limit=5");
    let (_, page) = c.json(&first).await;
    let next = format!("{first}&cursor={}", page["next_cursor"].as_str().unwrap());
    sim.faults().arm_spec("expire-cursor:1").unwrap();
    let (s, body) = c.json(&first).await;
    assert_eq!(s, 200, "a first page has no cursor to expire: {body}");
    let (s, body) = c.json(&next).await;
    assert_eq!(
        (s, body["error"].as_str().unwrap()),
        (410, "cursor_expired")
    );
    assert_eq!(status(&c, &next).await, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn duplicated_and_reversed_pages_still_cover_the_window() {
    let sim = Simulator::start(small(50)).unwrap();
    let c = Client::login(&sim).await;
    sim.faults()
        .arm_spec("duplicate-pages:2,out-of-order-pages:1")
        .unwrap();
    let (since, until) = window(&sim);
    let listed = super::ids(&c.list_all(&since, &until, 10).await);
    let expected: Vec<String> = sim.dataset().ids().iter().map(|i| i.to_string()).collect();
    assert_eq!(
        listed.len(),
        50 + 4,
        "two overlapping pages repeat two items each"
    );
    let mut unique = listed.clone();
    unique.sort();
    unique.dedup();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(unique, want);
    let first_page: Vec<String> = expected[..10].iter().rev().cloned().collect();
    assert_eq!(listed[..10], first_page[..]);
    let stats = sim.stats();
    assert_eq!(
        (
            stats.fired("duplicate-pages"),
            stats.fired("out-of-order-pages")
        ),
        (2, 1)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn purged_item_vanishes_after_it_was_listed() {
    let sim = Simulator::start(small(20)).unwrap();
    let c = Client::login(&sim).await;
    let item = item_over(&sim, 0);
    sim.faults()
        .arm_spec(&format!("purge:{}", item.id))
        .unwrap();
    assert_eq!(status(&c, &content_path(&item)).await, 200);
    let (since, until) = window(&sim);
    assert!(super::ids(&c.list_all(&since, &until, 100).await).contains(&item.id.to_string()));
    let (s, body) = c.json(&content_path(&item)).await;
    assert_eq!(
        (s, body["error"].as_str().unwrap()),
        (404, "item_not_found")
    );
    assert_eq!(sim.stats().fired("purge"), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn listing_that_is_not_json_fires_once() {
    let sim = Simulator::start(small(5)).unwrap();
    let c = Client::login(&sim).await;
    sim.faults().arm_spec("bad-json:1").unwrap();
    let (since, until) = window(&sim);
    let path = format!("/v1/archive/items?since={since}&until={until}");
    let r = c.get(&path).await;
    assert_eq!(r.status(), 200);
    assert!(serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).is_err());
    assert_eq!(c.json(&path).await.0, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_can_be_armed_over_http_from_another_process() {
    let sim = Simulator::start(small(5)).unwrap();
    let c = Client::login(&sim).await;
    let arm = |spec: &'static str| {
        c.http
            .post(format!("{}/_sim/faults", c.base))
            .body(spec)
            .send()
    };
    assert_eq!(arm("503x1").await.unwrap().status(), 204);
    assert_eq!(arm("explode").await.unwrap().status(), 400);
    assert_eq!(status(&c, "/v1/account").await, 503);
    let stats: Value = c
        .http
        .get(format!("{}/_sim/stats", c.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["faults_fired"]["503"], 1);
    assert_eq!(stats["requests"]["account"], 1);
    sim.shutdown().await;
}

#[test]
fn the_documented_spec_parses() {
    let faults = Fault::parse_list(
        "429x3,503x2,drop-body:2@4096,slow-body:1@5s,corrupt:1,expire-token:1,expire-cursor:1,\
         duplicate-pages,out-of-order-pages,purge:itm_01JD3Q8ZK2,bad-json:1,retry-after-date,429x1@2/content",
    )
    .unwrap();
    assert_eq!(faults.len(), 13);
    assert_eq!(
        faults[0],
        Fault::TooManyRequests {
            count: 3,
            retry_after: Duration::from_secs(1),
            scope: Scope::Api
        }
    );
    assert_eq!(
        faults[2],
        Fault::DropBody {
            count: 2,
            after: 4096
        }
    );
    assert_eq!(
        faults[3],
        Fault::SlowBody {
            count: 1,
            stall: Duration::from_secs(5)
        }
    );
    assert_eq!(faults[7], Fault::DuplicatePages { count: 1 });
    assert_eq!(
        faults[9],
        Fault::Purge {
            id: "itm_01JD3Q8ZK2".into()
        }
    );
    assert_eq!(
        faults[12],
        Fault::TooManyRequests {
            count: 1,
            retry_after: Duration::from_secs(2),
            scope: Scope::Only(Endpoint::Content)
        }
    );
    for bad in [
        "explode",
        "429xq",
        "purge:a/b",
        "drop-body:1@lots",
        "503x1/nowhere",
        "corrupt:1@3",
    ] {
        assert!(Fault::parse_list(bad).is_err(), "{bad}");
    }
}

#[test]
fn config_overrides_parse_for_the_command_line() {
    let mut config = SimConfig::default();
    config
        .apply_overrides("seed=7,items=3000,large=5%,large-size=150MB,recalled=0.02,unmapped=1%,faults=429x3,503x2")
        .unwrap();
    assert_eq!((config.seed, config.items), (7, 3000));
    assert_eq!(config.large_size, (150_000_000, 150_000_000));
    assert!((config.large_fraction - 0.05).abs() < 1e-9);
    assert_eq!(config.faults.len(), 2);
    assert!(config.apply_overrides("colour=blue").is_err());
    assert!(config.apply_overrides("large=150%").is_err());
}
