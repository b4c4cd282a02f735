//! Pushes every message of a corpus of Maildirs (`DIR/<user>/inbox/cur/*`,
//! written by `make_corpus.py`) into an IMAP server through the project's
//! `ImapWriter`, as the sync engine would: many copies in flight, spread
//! over the users' mailboxes. Run by `bench/imap/run.sh`, which times it
//! against `mbsync` pushing the same files into the same Dovecot.
//!
//! Usage: imap DIR HOST PORT ADMIN FOLDER [CONNECTIONS] [IN_FLIGHT]
//! with the admin password in `IMAP_BENCH_PASSWORD`; `IMAP_BENCH_NO_MULTIAPPEND=1`
//! turns MULTIAPPEND off (to measure what it brings). Prints one JSON line.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use wechat_archiver::Mailbox;
use wechat_archiver::content::{Content, MEMORY_LIMIT};
use wechat_archiver::mailbox::imap::{ImapConfig, ImapWriter};
use wechat_archiver::mailbox::{Copy, MailboxWriter};
use wechat_archiver::secrets::Secret;
use wechat_archiver::telemessage::Item;

struct Job {
    mailbox: Mailbox,
    path: PathBuf,
}

fn jobs(dir: &Path) -> anyhow::Result<Vec<Job>> {
    let mut jobs = Vec::new();
    for user in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let user = user?;
        let Ok(mailbox) = Mailbox::parse(&user.file_name().to_string_lossy()) else {
            continue;
        };
        for file in std::fs::read_dir(user.path().join("inbox").join("cur"))? {
            jobs.push(Job {
                mailbox: mailbox.clone(),
                path: file?.path(),
            });
        }
    }
    // Interleave mailboxes the way items arrive (by time), not user by user.
    jobs.sort_by(|a, b| a.path.file_name().cmp(&b.path.file_name()));
    Ok(jobs)
}

fn item_for(path: &Path, len: u64) -> anyhow::Result<Item> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let id = name.split(':').next().unwrap_or(&name).to_owned();
    Ok(serde_json::from_value(serde_json::json!({
        "id": id, "platform": "wechat", "type": "chat",
        "conversation": {"id": "c", "kind": "group", "title": ""},
        "sent_at": "2026-11-22T08:15:00Z", "archived_at": "2026-11-22T08:15:00Z",
        "sender": {"name": "", "mobile": null, "email": null, "wechat_id": null},
        "size": len, "sha256": "",
    }))?)
}

/// The file's content the way the sync engine hands it over: in memory
/// when small, else as a spool file (a hard link here, since a spooled
/// `Content` deletes its file when dropped).
async fn content_for(path: &Path, spool: &Path, n: usize) -> anyhow::Result<Content> {
    let len = tokio::fs::metadata(path).await?.len();
    if len <= MEMORY_LIMIT {
        return Ok(Content::Memory(tokio::fs::read(path).await?.into()));
    }
    let link = spool.join(format!("spool-{n}"));
    let _ = tokio::fs::remove_file(&link).await;
    tokio::fs::hard_link(path, &link).await?;
    Ok(Content::Spooled { path: link, len })
}

async fn push(writer: &ImapWriter, job: &Job, spool: &Path, n: usize) -> anyhow::Result<u64> {
    let content = content_for(&job.path, spool, n).await?;
    let item = item_for(&job.path, content.len())?;
    let copy = Copy {
        item: &item,
        connector: "bench",
        content: &content,
        in_reply_to: None,
    };
    Ok(writer.write(&job.mailbox, &copy).await?.bytes)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.len() < 5 {
        bail!("usage: imap DIR HOST PORT ADMIN FOLDER [CONNECTIONS] [IN_FLIGHT]");
    }
    let dir = PathBuf::from(&args[0]);
    let password = std::env::var("IMAP_BENCH_PASSWORD").context("IMAP_BENCH_PASSWORD")?;
    let mut config = ImapConfig::new(false, &args[1], args[2].parse()?, &args[3], &args[4]);
    if let Some(c) = args.get(5) {
        config.max_connections = c.parse()?;
    }
    config.multiappend = std::env::var("IMAP_BENCH_NO_MULTIAPPEND")
        .unwrap_or_default()
        .is_empty();
    let in_flight: usize = args.get(6).map(|s| s.parse()).transpose()?.unwrap_or(64);
    let writer = Arc::new(ImapWriter::new(config, Secret::new(password))?);
    let spool = dir.with_extension("spool");
    std::fs::create_dir_all(&spool)?;
    let jobs = jobs(&dir)?;
    let started = Instant::now();
    let results: Vec<anyhow::Result<u64>> = futures_util::stream::iter(jobs.iter().enumerate())
        .map(|(n, job)| {
            let writer = writer.clone();
            let spool = spool.clone();
            async move { push(&writer, job, &spool, n).await }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let seconds = started.elapsed().as_secs_f64();
    let bytes: u64 = results.iter().filter_map(|r| r.as_ref().ok()).sum();
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|e| e.to_string())
        .collect();
    println!(
        "{}",
        serde_json::json!({
            "copies": jobs.len(), "failed": failed.len(), "first_failure": failed.first(),
            "bytes": bytes, "seconds": seconds, "copies_per_second": jobs.len() as f64 / seconds,
        })
    );
    if !failed.is_empty() {
        bail!("{} copies failed", failed.len());
    }
    Ok(())
}
