//! The two servers `bench/graph/run.sh` syncs between, in one process: the
//! bundled TeleMessage simulator (the source) and the project's Microsoft
//! Graph simulator (`tests/it/support/graph_sim`, the target), which
//! answers each mailbox request after `--latency-ms` and counts every
//! request that breaks Microsoft's limits. The Graph simulator stays test
//! code (an example, never in the shipped binary); this wrapper only
//! starts it with a mailbox for every registered user of the source.
//!
//! ```text
//! graph_bench_sims --latency-ms 250 --set items=1500,users=40
//! ```
//!
//! Prints `telemessage URL`, `graph URL` and `ready`, then serves until its
//! standard input closes, and prints one line of JSON: the violations,
//! per mailbox the requests it served, and a timeline (Unix seconds) that
//! says where the run's time went: when the first request came, when each
//! mailbox was first and last busy, and how much of its 4 request slots'
//! time between those it used.

// Test code: the example uses only part of what the tests do.
#[allow(unused_imports)]
#[path = "../../tests/it/support/graph_sim/mod.rs"]
mod graph_sim;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use graph_sim::{GraphSim, MailboxKind, SimConfig as GraphConfig};
use wechat_archiver::simulator::{SimConfig, Simulator};

fn main() {
    let mut latency = Duration::from_millis(250);
    let mut source = SimConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_else(|| usage(&arg));
        match arg.as_str() {
            "--latency-ms" => {
                latency = Duration::from_millis(value.parse().unwrap_or_else(|_| usage(&arg)))
            }
            "--set" => source
                .apply_overrides(&value)
                .unwrap_or_else(|e| fail(&e.to_string())),
            _ => usage(&arg),
        }
    }
    let telemessage = Simulator::start(source).unwrap_or_else(|e| fail(&e.to_string()));
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| fail(&e.to_string()));
    let graph = runtime.block_on(GraphSim::start(GraphConfig {
        latency,
        ..GraphConfig::default()
    }));
    for user in telemessage.dataset().users() {
        if let Some(email) = &user.email {
            graph.add_user(email, &[], MailboxKind::Enabled);
        }
    }
    println!("telemessage {}", telemessage.url());
    println!("graph {}", graph.url);
    println!("ready");
    for _ in std::io::stdin().lock().lines() {}
    println!("{}", report(&graph, latency));
}

/// The violations, each mailbox's request count and the timeline, as JSON.
fn report(graph: &GraphSim, latency: Duration) -> serde_json::Value {
    let s = graph.stats();
    let log = graph.log();
    let mut requests: BTreeMap<String, u64> = BTreeMap::new();
    let mut spans: BTreeMap<String, (Instant, Instant)> = BTreeMap::new();
    for entry in &log {
        if let Some(mailbox) = &entry.mailbox {
            *requests.entry(mailbox.clone()).or_default() += 1;
            // Logged when answered: a mailbox request began `latency` before.
            let begun = entry.at.checked_sub(latency).unwrap_or(entry.at);
            let span = spans.entry(mailbox.clone()).or_insert((begun, entry.at));
            span.0 = span.0.min(begun);
            span.1 = span.1.max(entry.at);
        }
    }
    let timeline = timeline(&log, &requests, &spans, latency);
    if let Ok(path) = std::env::var("GRAPH_SIM_LOG") {
        write_log(&path, &log);
    }
    let violations = s.concurrency_violations
        + s.retry_after_violations
        + s.budget_violations
        + s.oversize_requests
        + s.oversize_inline_attachments
        + s.chunk_rule_violations
        + s.authorization_on_upload
        + s.bad_headers
        + s.unsupported_queries;
    serde_json::json!({
        "violations": violations,
        "rejected_tokens": s.rejected_tokens,
        "max_in_flight": s.max_in_flight.values().max().copied().unwrap_or(0),
        "mailbox_requests": requests,
        "timeline": timeline,
    })
}

/// When the first request came, when mailboxes were written, and, for the
/// busiest mailbox and on average, the share of 4 request slots' time
/// between a mailbox's first and last request that requests filled.
fn timeline(
    log: &[graph_sim::LogEntry],
    requests: &BTreeMap<String, u64>,
    spans: &BTreeMap<String, (Instant, Instant)>,
    latency: Duration,
) -> serde_json::Value {
    let anchor = (Instant::now(), SystemTime::now());
    let unix = |at: Instant| {
        let wall = anchor.1 - anchor.0.saturating_duration_since(at);
        wall.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
    };
    let use_of = |mailbox: &str| {
        let (from, to) = spans[mailbox];
        let slots = 4.0 * (to - from).as_secs_f64();
        requests[mailbox] as f64 * latency.as_secs_f64() / slots.max(f64::EPSILON)
    };
    let busiest = requests.iter().max_by_key(|(_, n)| **n).map(|(m, _)| m);
    let mean_use = spans.keys().map(|m| use_of(m)).sum::<f64>() / spans.len().max(1) as f64;
    serde_json::json!({
        "first_request": log.iter().map(|e| e.at).min().map(unix),
        "writes_from": spans.values().map(|s| s.0).min().map(unix),
        "writes_until": spans.values().map(|s| s.1).max().map(unix),
        "busiest_from": busiest.map(|m| unix(spans[m].0)),
        "busiest_until": busiest.map(|m| unix(spans[m].1)),
        "busiest_slot_use": busiest.map(|m| use_of(m)),
        "mean_slot_use": mean_use,
    })
}

/// Every request the simulator answered, one line each: seconds since the
/// first, mailbox (or `-`), method, status and path; for finding where a
/// run's time went.
fn write_log(path: &str, log: &[graph_sim::LogEntry]) {
    let Some(first) = log.first().map(|e| e.at) else {
        return;
    };
    let lines: String = log
        .iter()
        .map(|e| {
            format!(
                "{:.3} {} {} {} {}\n",
                e.at.duration_since(first).as_secs_f64(),
                e.mailbox.as_deref().unwrap_or("-"),
                e.method,
                e.status,
                e.path
            )
        })
        .collect();
    if let Err(e) = std::fs::write(path, lines) {
        eprintln!("graph_bench_sims: cannot write {path}: {e}");
    }
}

fn usage(arg: &str) -> ! {
    fail(&format!(
        "bad argument {arg:?}; usage: graph_bench_sims [--latency-ms MS] [--set key=value,...]"
    ))
}

fn fail(message: &str) -> ! {
    eprintln!("graph_bench_sims: {message}");
    std::process::exit(2)
}
