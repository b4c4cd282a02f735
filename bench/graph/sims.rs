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
//! standard input closes, and prints one line of JSON: the violations and,
//! per mailbox, the requests it served.

// Test code: the example uses only part of what the tests do.
#[allow(unused_imports)]
#[path = "../../tests/it/support/graph_sim/mod.rs"]
mod graph_sim;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::time::Duration;

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
    println!("{}", report(&graph));
}

/// The violations and each mailbox's request count, as JSON.
fn report(graph: &GraphSim) -> serde_json::Value {
    let s = graph.stats();
    let mut requests: BTreeMap<String, u64> = BTreeMap::new();
    for entry in graph.log() {
        if let Some(mailbox) = entry.mailbox {
            *requests.entry(mailbox).or_default() += 1;
        }
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
    })
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
