//! `verify`: evidence that the archive is complete and unaltered. It
//! checks the manifest chain end to end (see [`crate::custody`]), the
//! ledger row by row against the manifests, the window listed again from
//! TeleMessage against the ledger ([`completeness`]), and the copies read
//! back from the target against the hashes of what was written
//! ([`integrity`]).

pub mod audit;
pub mod completeness;
pub mod integrity;
pub mod report;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::custody::{self, ManifestError};
use crate::ledger::{Ledger, LedgerError};
use crate::mailbox::MailboxWriter;
use crate::mapping::Resolver;
use crate::sync::Progress;
use crate::telemessage::{Client, ClientError};
use crate::types::Mailbox;

pub use audit::Scope;
pub use report::{Finding, FindingKind, Outcome, VerifyReport};

/// Why a verify could not be made at all (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("verify's scratch database failed: {0}")]
    Audit(#[from] rusqlite::Error),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Source(#[from] ClientError),
}

/// What a verify is asked to check.
pub struct VerifyPlan {
    pub connector: String,
    pub manifest_dir: PathBuf,
    pub ledger_file: PathBuf,
    /// Whose copies integrity reads: items archived in this window (all
    /// copies when it is open on both sides).
    pub scope: Scope,
    /// The window completeness lists again; none for a connector with no
    /// archive API, or nothing synced yet.
    pub listing: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Read back this many copies picked at random instead of all.
    pub sample: Option<u64>,
    /// A head hash the admin kept: it must be in the chain.
    pub expect_head: Option<String>,
}

/// What a verify works with.
pub struct Verifier {
    /// The archive API, for completeness.
    pub client: Option<Client>,
    pub writer: Arc<dyn MailboxWriter>,
    pub resolver: Resolver,
    pub ledger: Arc<Ledger>,
    pub fallback_mailbox: Option<Mailbox>,
    pub progress: Option<Arc<dyn Progress>>,
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Verifier {
    /// Runs every check the plan asks for. The caller holds the
    /// connector's lock, so no run is writing meanwhile.
    pub async fn run(&self, plan: &VerifyPlan) -> Result<VerifyReport, VerifyError> {
        let started = Instant::now();
        let mut report = VerifyReport::new(&plan.connector, now());
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        report.since = plan.scope.since.map(time);
        report.until = plan.scope.until.map(time);
        report.sample = plan.sample;
        let mut audit = audit::Audit::open(&plan.ledger_file, &plan.connector)?;
        let mut failed = None;
        let chain = custody::chain::check(
            &plan.manifest_dir,
            &plan.connector,
            plan.expect_head.as_deref(),
            |seq, line| {
                if let Err(e) = audit.add(seq, line) {
                    failed.get_or_insert(e);
                }
            },
        )?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        audit.loaded()?;
        report.chain.manifests = chain.manifests;
        report.chain.head = chain.head;
        for problem in chain.problems {
            report.add(problem.into());
        }
        audit.check_ledger(&mut report)?;
        let progress = self.progress.as_deref();
        if let (Some(client), Some((since, until))) = (&self.client, plan.listing) {
            let sources = completeness::Sources {
                client,
                resolver: &self.resolver,
                writer: self.writer.as_ref(),
                ledger: &self.ledger,
                fallback_mailbox: self.fallback_mailbox.as_ref(),
            };
            completeness::check(
                &sources,
                &plan.connector,
                since,
                until,
                progress,
                &mut report,
            )
            .await?;
        }
        integrity::check(
            &audit,
            self.writer.as_ref(),
            plan.scope,
            plan.sample,
            progress,
            &mut report,
        )
        .await?;
        self.writer.close().await;
        report.duration_ms = started.elapsed().as_millis() as u64;
        Ok(report)
    }
}

/// The last verify of a connector, as `status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastVerify {
    pub at: String,
    pub since: Option<String>,
    pub until: Option<String>,
    pub sample: Option<u64>,
    pub listed: Option<u64>,
    pub copies_checked: u64,
    pub outcome: Outcome,
    pub findings: u64,
}

const LAST_VERIFY: &str = "last-verify.json";

/// Records a verify's summary beside the connector's manifests.
pub fn save_last(manifest_dir: &Path, report: &VerifyReport) -> std::io::Result<()> {
    let last = LastVerify {
        at: report.started_at.clone(),
        since: report.since.clone(),
        until: report.until.clone(),
        sample: report.sample,
        listed: report.completeness.as_ref().map(|c| c.listed),
        copies_checked: report.integrity.checked,
        outcome: report.outcome,
        findings: report.counts.values().sum(),
    };
    std::fs::create_dir_all(manifest_dir)?;
    let tmp = manifest_dir.join(format!("{LAST_VERIFY}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&last).unwrap_or_default())?;
    std::fs::rename(tmp, manifest_dir.join(LAST_VERIFY))
}

/// The last verify recorded, if any.
pub fn load_last(manifest_dir: &Path) -> Option<LastVerify> {
    let text = std::fs::read(manifest_dir.join(LAST_VERIFY)).ok()?;
    serde_json::from_slice(&text).ok()
}
