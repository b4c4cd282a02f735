//! The simulator against the contract, over real HTTP on loopback.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::content::ContentChunks;
use super::*;
use crate::telemessage::model::ItemType;

fn small(items: usize) -> SimConfig {
    SimConfig {
        items,
        large_fraction: 0.0,
        ..SimConfig::default()
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn login(sim: &Simulator) -> Client {
        let http = reqwest::Client::new();
        let base = sim.url();
        let token = fresh_token(&http, &base, &sim.config().password).await;
        Client { http, base, token }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request")
    }

    async fn json(&self, path: &str) -> (u16, Value) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        (status, r.json().await.expect("json body"))
    }

    /// Pages through a window, returning every item object in order.
    async fn list_all(&self, since: &str, until: &str, limit: usize) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/archive/items?since={since}&until={until}&limit={limit}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let (status, page) = self.json(&path).await;
            assert_eq!(status, 200, "{page}");
            out.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }
}

async fn fresh_token(http: &reqwest::Client, base: &str, password: &str) -> String {
    let r = http
        .post(format!("{base}/v1/auth/token"))
        .json(&serde_json::json!({"username": "admin@contoso.com", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    assert_eq!(body["account"]["id"], "acc-123");
    body["access_token"].as_str().unwrap().to_owned()
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn window(sim: &Simulator) -> (String, String) {
    (ts(sim.config().window_start), ts(sim.config().window_end))
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn paging_returns_every_item_once_in_archive_order() {
    let sim = Simulator::start(small(230)).unwrap();
    let c = Client::login(&sim).await;
    let (since, until) = window(&sim);
    let listed = c.list_all(&since, &until, 37).await;
    let expected: Vec<String> = sim.dataset().ids().iter().map(|i| i.to_string()).collect();
    assert_eq!(ids(&listed), expected);
    let keys: Vec<(String, String)> = listed
        .iter()
        .map(|i| {
            (
                i["archived_at"].as_str().unwrap().to_owned(),
                i["id"].as_str().unwrap().to_owned(),
            )
        })
        .map(|(t, id)| (ts(DateTime::parse_from_rfc3339(&t).unwrap().to_utc()), id))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| {
        let ta = DateTime::parse_from_rfc3339(&a.0).unwrap();
        let tb = DateTime::parse_from_rfc3339(&b.0).unwrap();
        (ta, &a.1).cmp(&(tb, &b.1))
    });
    assert_eq!(keys, sorted, "ordered by (archived_at, id)");
    assert_eq!(sim.stats().requests("list"), 230_u64.div_ceil(37));
    sim.shutdown().await;
}

#[tokio::test]
async fn window_includes_since_and_excludes_until() {
    let sim = Simulator::start(small(120)).unwrap();
    let c = Client::login(&sim).await;
    let items = sim.dataset().items();
    let since = items[20].archived_at;
    let until = items[80].archived_at;
    let listed = c.list_all(&ts(since), &ts(until), 1000).await;
    let expected = sim.dataset().items_in_window(since, until);
    assert_eq!(
        ids(&listed),
        expected
            .iter()
            .map(|i| i.id.to_string())
            .collect::<Vec<_>>()
    );
    assert!(expected.iter().any(|i| i.archived_at == since));
    assert!(
        expected
            .iter()
            .all(|i| i.archived_at >= since && i.archived_at < until)
    );
    assert!(items.iter().filter(|i| i.archived_at == until).count() >= 1);
    let outside = c
        .list_all("2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z", 10)
        .await;
    assert!(outside.is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn items_carry_exactly_the_spec_fields_and_every_kind() {
    let sim = Simulator::start(SimConfig {
        items: 300,
        large_fraction: 0.0,
        recalled_fraction: 0.05,
        ..SimConfig::default()
    })
    .unwrap();
    let c = Client::login(&sim).await;
    let (since, until) = window(&sim);
    let listed = c.list_all(&since, &until, 1000).await;
    let spec_fields: BTreeSet<&str> = [
        "id",
        "platform",
        "type",
        "conversation",
        "sent_at",
        "archived_at",
        "sender",
        "participants",
        "size",
        "sha256",
        "attachments",
        "call",
        "recall",
    ]
    .into();
    let mut types = BTreeSet::new();
    let mut platforms = BTreeSet::new();
    for item in &listed {
        let keys: BTreeSet<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, spec_fields);
        let kind = item["type"].as_str().unwrap();
        types.insert(kind.to_owned());
        platforms.insert(item["platform"].as_str().unwrap().to_owned());
        assert_eq!(item["call"].is_object(), kind == "call", "{item}");
        assert_eq!(item["recall"].is_object(), kind == "recalled", "{item}");
        assert!(
            item["participants"]
                .as_array()
                .unwrap()
                .contains(&item["sender"])
        );
        let conv_keys: BTreeSet<&str> = item["conversation"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(conv_keys, ["id", "kind", "title"].into());
        for p in item["participants"].as_array().unwrap() {
            let pk: BTreeSet<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(pk, ["name", "mobile", "email", "wechat_id"].into());
        }
        assert_eq!(item["sha256"].as_str().unwrap().len(), 64);
    }
    let call = listed.iter().find(|i| i["type"] == "call").unwrap();
    let call_keys: BTreeSet<&str> = call["call"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        call_keys,
        ["media", "started_at", "duration_seconds", "result"].into()
    );
    let recalled = listed.iter().find(|i| i["type"] == "recalled").unwrap();
    let recall_keys: BTreeSet<&str> = recalled["recall"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(recall_keys, ["recalled_at", "original_item_id"].into());
    assert_eq!(
        types,
        ["attachment", "call", "chat", "file", "recalled"]
            .map(String::from)
            .into()
    );
    assert_eq!(platforms, ["wechat", "wecom"].map(String::from).into());
    let kinds: HashSet<&str> = listed
        .iter()
        .map(|i| i["conversation"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["group", "direct"].into());
    assert!(listed.iter().any(|i| {
        i["sender"]["name"]
            .as_str()
            .unwrap()
            .chars()
            .any(|c| c as u32 > 0x4e00)
    }));
    sim.shutdown().await;
}

#[tokio::test]
async fn content_matches_listing_and_honours_range() {
    let sim = Simulator::start(small(60)).unwrap();
    let c = Client::login(&sim).await;
    let item = sim
        .dataset()
        .items()
        .into_iter()
        .find(|i| !i.attachments.is_empty())
        .unwrap();
    let path = format!("/v1/archive/items/{}/content", item.id);
    let r = c.get(&path).await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "message/rfc822");
    assert_eq!(h["accept-ranges"], "bytes");
    assert_eq!(h["content-length"].to_str().unwrap(), item.size.to_string());
    assert_eq!(h["etag"].to_str().unwrap(), format!("\"{}\"", item.sha256));
    let body = r.bytes().await.unwrap();
    assert_eq!(body.len() as u64, item.size);
    assert_eq!(hex::encode(Sha256::digest(&body)), item.sha256);
    assert_eq!(
        body.as_ref(),
        sim.dataset().content(item.id.as_str()).unwrap()
    );

    let r = c
        .http
        .get(format!("{}{path}", c.base))
        .bearer_auth(&c.token)
        .header("Range", "bytes=1000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"].to_str().unwrap(),
        format!("bytes 1000-{}/{}", item.size - 1, item.size)
    );
    assert_eq!(r.bytes().await.unwrap(), body.slice(1000..));
    let r = c
        .http
        .get(format!("{}{path}", c.base))
        .bearer_auth(&c.token)
        .header("Range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap(), body.slice(body.len() - 10..));
    let r = c
        .http
        .get(format!("{}{path}", c.base))
        .bearer_auth(&c.token)
        .header("Range", format!("bytes={}-", item.size))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(sim.stats().range_requests, 3);

    let (status, err) = c.json("/v1/archive/items/itm_NOPE/content").await;
    assert_eq!(
        (status, err["error"].as_str().unwrap()),
        (404, "item_not_found")
    );
    sim.shutdown().await;
}

/// Splits a message into its header block and the bodies of its MIME parts.
fn mime_parts(message: &[u8]) -> (String, Vec<(String, Vec<u8>)>) {
    let text = std::str::from_utf8(message).expect("content is ASCII");
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let Some(at) = head.find("boundary=\"") else {
        return (head.to_owned(), vec![]);
    };
    let boundary = &head[at + 10..];
    let boundary = &boundary[..boundary.find('"').unwrap()];
    let delimiter = format!("--{boundary}");
    let parts = body
        .split(&delimiter)
        .skip(1)
        .filter(|p| !p.starts_with("--"))
        .map(|p| {
            let (h, b) = p.trim_start_matches("\r\n").split_once("\r\n\r\n").unwrap();
            let data: String = b.split("\r\n").collect();
            (h.to_owned(), STANDARD.decode(data).unwrap())
        })
        .collect();
    (head.to_owned(), parts)
}

#[test]
fn content_is_a_crlf_rfc5322_message_with_byte_identical_attachments() {
    let ds = Dataset::generate(&small(150));
    let mut checked = 0;
    for item in ds.items() {
        let raw = ds.content(item.id.as_str()).unwrap();
        assert!(
            !raw.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
            "bare LF in {}",
            item.id
        );
        assert!(raw.is_ascii(), "8-bit bytes in {}", item.id);
        let (head, parts) = mime_parts(&raw);
        assert!(head.starts_with(&format!("Message-ID: <{}@", item.id)));
        assert!(head.contains(&format!("\r\nDate: {}\r\n", item.sent_at.to_rfc2822())));
        assert!(
            head.contains("\r\nFrom: ")
                && head.contains("\r\nTo: ")
                && head.contains("\r\nSubject: ")
        );
        assert!(head.lines().all(|l| l.len() <= 998));
        if let Some(email) = &item.sender.email {
            let from = head
                .split("\r\nFrom: ")
                .nth(1)
                .unwrap()
                .split("\r\n")
                .next()
                .unwrap();
            assert!(from.ends_with(&format!("<{email}>")), "{from}");
        }
        for (i, att) in item.attachments.iter().enumerate() {
            let (h, data) = &parts[i + 1];
            assert!(h.contains(&att.content_type));
            assert!(h.contains("Content-Disposition: attachment"));
            assert_eq!(data, &ds.attachment_bytes(item.id.as_str(), i).unwrap());
            assert_eq!(data.len() as u64, att.size);
            checked += 1;
        }
        if !item.attachments.is_empty() {
            assert_eq!(parts.len(), item.attachments.len() + 1);
        }
    }
    assert!(checked > 20, "only {checked} attachments");
}

#[test]
fn same_seed_same_data_other_seed_other_data() {
    let a = Dataset::generate(&small(80));
    let b = Dataset::generate(&small(80));
    let c = Dataset::generate(&SimConfig {
        seed: 7,
        ..small(80)
    });
    assert_eq!(a.items(), b.items());
    assert_eq!(
        serde_json::to_string(a.users()).unwrap(),
        serde_json::to_string(b.users()).unwrap()
    );
    assert_ne!(a.ids(), c.ids());
}

#[test]
fn fractions_are_exact_and_mapping_counts_match_the_config() {
    let config = SimConfig {
        items: 2000,
        large_fraction: 0.05,
        recalled_fraction: 0.02,
        unmapped_fraction: 0.01,
        late_fraction: 0.03,
        ..SimConfig::default()
    };
    let ds = Dataset::generate(&config);
    let recipes = ds.recipes();
    let sizes: Vec<u64> = recipes
        .iter()
        .map(|r| ContentChunks::new(r, 0).total_len())
        .collect();
    assert_eq!(sizes.iter().filter(|&&s| s > 10 * 1024 * 1024).count(), 100);
    assert_eq!(
        recipes
            .iter()
            .filter(|r| r.kind == ItemType::Recalled)
            .count(),
        40
    );
    let late = recipes
        .iter()
        .filter(|r| r.archived_at - r.sent_at >= chrono::Duration::days(1))
        .count();
    assert_eq!(late, 60);
    let mut small_sizes: Vec<u64> = sizes.iter().copied().filter(|&s| s < 10_000_000).collect();
    small_sizes.sort_unstable();
    let median = small_sizes[small_sizes.len() / 2];
    assert!((15_000..27_000).contains(&median), "median {median}");

    let mut copies = 0;
    let mut unmapped = 0;
    for r in recipes {
        let item = ds.item_unmeasured(r);
        let both = ds.expected_mailboxes(&item, true, true);
        copies += both.len();
        unmapped += usize::from(both.is_empty());
        assert!(ds.expected_mailboxes(&item, false, true).len() <= both.len());
    }
    assert_eq!(unmapped, 20);
    let mean = copies as f64 / 1980.0;
    assert!((1.7..1.9).contains(&mean), "mean mapped per item {mean}");
    let no_mobile = recipes
        .iter()
        .flat_map(|r| &r.participants)
        .filter(|p| p.mobile.is_none())
        .count();
    let no_email = recipes
        .iter()
        .flat_map(|r| &r.participants)
        .filter(|p| p.email.is_none())
        .count();
    assert!(no_mobile > 0 && no_email > 0);
}

/// Start-up builds recipes only: no content is rendered or hashed until
/// it is listed or downloaded, so a large account starts at once.
#[test]
fn twenty_thousand_items_start_without_rendering_any_content() {
    let sim = Simulator::start(SimConfig {
        items: 20_000,
        ..SimConfig::default()
    })
    .unwrap();
    let dataset = sim.dataset();
    assert_eq!(dataset.len(), 20_000);
    assert!(dataset.recipes().iter().all(|r| !r.is_measured()));
}

#[test]
fn large_items_stream_with_the_listed_digest() {
    let ds = Dataset::generate(&SimConfig {
        items: 10,
        large_fraction: 0.1,
        large_size: (11_000_000, 11_000_000),
        ..SimConfig::default()
    });
    let big = ds
        .items()
        .into_iter()
        .find(|i| i.size > 10_000_000)
        .unwrap();
    let mut reader = ds.content_reader(big.id.as_str()).unwrap();
    let mut hasher = Sha256::new();
    let n = std::io::copy(&mut reader, &mut hasher).unwrap();
    assert_eq!(n, big.size);
    assert_eq!(hex::encode(hasher.finalize()), big.sha256);
    let tail = ContentChunks::new(ds.recipe(big.id.as_str()).unwrap(), big.size - 100_000)
        .flat_map(|c| c.to_vec())
        .collect::<Vec<u8>>();
    let whole = ds.content(big.id.as_str()).unwrap();
    assert_eq!(tail, whole[whole.len() - 100_000..]);
}

#[tokio::test]
async fn credentials_and_tokens_are_checked() {
    let sim = Simulator::start(SimConfig {
        // Long enough for the account call right after the login, however
        // slow the machine; waited out below.
        token_lifetime: Duration::from_secs(3),
        ..small(5)
    })
    .unwrap();
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/v1/auth/token", sim.url()))
        .json(&serde_json::json!({"username": "admin@contoso.com", "password": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "invalid_credentials"
    );
    let r = http
        .get(format!("{}/v1/account", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let c = Client::login(&sim).await;
    let (status, account) = c.json("/v1/account").await;
    assert_eq!(status, 200);
    assert_eq!(account["products"][0], "wechat-archiver");
    assert_eq!(account["timezone"], "Asia/Shanghai");
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (status, err) = c.json("/v1/account").await;
    assert_eq!(
        (status, err["error"].as_str().unwrap()),
        (401, "token_expired")
    );

    for (refusal, code) in [
        (AuthRefusal::AccountDisabled, "account_disabled"),
        (AuthRefusal::NotEnabled, "wechat_archiver_not_enabled"),
    ] {
        sim.faults().set_refusal(Some(refusal));
        let r = http
            .post(format!("{}/v1/auth/token", sim.url()))
            .json(&serde_json::json!({"username": "admin@contoso.com", "password": sim.config().password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(r.json::<Value>().await.unwrap()["error"], code);
    }
    sim.faults().set_refusal(None);
    assert_eq!(sim.stats().tokens_issued, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn users_page_completely_with_e164_mobiles() {
    let sim = Simulator::start(SimConfig {
        users: 57,
        ..small(5)
    })
    .unwrap();
    let c = Client::login(&sim).await;
    let mut users = Vec::new();
    let mut path = "/v1/account/users?limit=10".to_owned();
    loop {
        let (status, page) = c.json(&path).await;
        assert_eq!(status, 200);
        users.extend(page["users"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cur) => path = format!("/v1/account/users?limit=10&cursor={cur}"),
            None => break,
        }
    }
    assert_eq!(users.len(), 57);
    assert_eq!(sim.stats().requests("users"), 6);
    for u in &users {
        assert!(crate::types::E164::parse_canonical(u["mobile"].as_str().unwrap()).is_ok());
    }
    assert!(users.iter().any(|u| u["email"].is_null()));
    assert!(users.iter().any(|u| u["status"] == "suspended"));
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("map.csv");
    sim.dataset().write_mapping_csv(&csv).unwrap();
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("mobile_number,mailbox\n"));
    assert_eq!(
        text.lines().count() - 1,
        users.iter().filter(|u| !u["email"].is_null()).count()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_listing_parameters_are_400() {
    let sim = Simulator::start(small(5)).unwrap();
    let c = Client::login(&sim).await;
    for q in [
        "until=2026-11-22T00:00:00Z",
        "since=yesterday",
        "since=2026-11-22T00:00:00Z&limit=0",
        "since=2026-11-22T00:00:00Z&limit=1001",
        "since=2026-11-22T00:00:00Z&cursor=garbage",
        "since=2026-11-22T00:00:00Z&until=2026-11-21T00:00:00Z",
    ] {
        let (status, body) = c.json(&format!("/v1/archive/items?{q}")).await;
        assert_eq!(status, 400, "{q}: {body}");
    }
    sim.shutdown().await;
}

mod faults;
