//! The sync engine: list a window, resolve each item's mailboxes, download
//! what is missing, write each copy, and record it in the ledger only
//! after the write is durable.

mod adopt;
pub mod check;
mod copies;
mod rebuild;
mod recall;
pub mod report;
pub mod session;
pub mod setup;
pub mod window;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::content::Content;
use crate::custody::{self, CopyLine, ManifestError, ManifestWriter};
use crate::faultpoint;
use crate::ledger::{ItemState, Ledger, LedgerError, Recovery, RunId, RunOutcome};
use crate::mailbox::{MailboxWriter, Written};
use crate::mapping::{Resolution, Resolver};
use crate::telemessage::{Client, ClientError, Item};
use crate::types::{ItemId, Mailbox};
use adopt::{Adopted, Adoption};

pub use report::{CopyFailure, PlannedCopy, SyncReport};
pub use session::{Session, Settled};

/// Run records kept per connector; older ones are pruned.
pub const RUNS_KEPT: u32 = 1000;

/// Unmapped items archived in the last this many days are retried by every
/// run: a new user's mailbox often appears hours or days after their first
/// messages, and a user added to the target changes nothing the tool can
/// see. Older ones are retried when the mapping changes and at least this
/// often. Retrying all of them on every run would make each run's work
/// grow with every unmapped item ever seen.
pub const UNMAPPED_RETRY_DAYS: i64 = 7;

/// Why a run stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Source(#[from] ClientError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("the target {target} is not usable: {reason}")]
    Target { target: String, reason: String },
    /// A connector without an API source (e-mail) has nothing to list or
    /// download: its items come with their content.
    #[error(
        "connector {0} reads TeleMessage's e-mail delivery, not the API: it has no content to download for item {1}"
    )]
    NoSource(String, ItemId),
    /// The run record (manifest) cannot be written: nothing more is
    /// recorded without it.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// Observes a run's progress (the CLI draws a bar from it).
pub trait Progress: Send + Sync {
    /// More items were listed, with their total size.
    fn listed(&self, items: u64, bytes: u64);
    /// One item is finished, whatever its outcome.
    fn item_done(&self, bytes: u64);
}

/// What a run is asked to do.
pub struct SyncPlan {
    pub connector: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub dry_run: bool,
    /// Items processed at once (downloads and writes in flight).
    pub concurrency: usize,
    pub fallback_mailbox: Option<Mailbox>,
    /// The connector's own spool directory (emptied of leftovers at start).
    pub spool_dir: PathBuf,
    /// Whether to advance the checkpoint when the window is fully listed.
    pub advance_checkpoint: bool,
    /// A fingerprint of what maps participants to mailboxes (see
    /// `setup::mapping_fingerprint`): unmapped items are retried when it
    /// changes.
    pub mapping_fingerprint: String,
    /// Retry every unmapped item now, whatever the mapping.
    pub retry_unmapped: bool,
    /// Where the connector's manifests go (see [`custody`]); none for a
    /// run that keeps no record.
    pub manifest_dir: Option<PathBuf>,
}

/// Everything a run works with.
pub struct Engine {
    /// The API client; `None` for an e-mail source, whose items come with
    /// their content (see [`Session`]).
    pub client: Option<Client>,
    pub writer: Arc<dyn MailboxWriter>,
    pub resolver: Resolver,
    pub ledger: Arc<Ledger>,
    pub progress: Option<Arc<dyn Progress>>,
}

struct Run<'a> {
    engine: &'a Engine,
    plan: &'a SyncPlan,
    id: RunId,
    /// Which items to look for on the target before writing them: copies
    /// a crashed run wrote but did not record.
    recovery: Recovery,
    /// The archive folders this run looked in for copies the ledger lacks.
    adoption: Adoption,
    /// `ledger rebuild`: record the copies the target holds, write none.
    adopt_only: bool,
    /// Whether this run retries the unmapped items, not only the failed.
    retry_unmapped: bool,
    /// The run's clock for unmapped retries: what is recent, when they ran.
    started_at: DateTime<Utc>,
    report: Mutex<SyncReport>,
    /// This run's manifest (none for a dry run).
    manifest: Option<Arc<ManifestWriter>>,
    /// The first error that must stop the run; later items are skipped.
    fatal: Mutex<Option<SyncError>>,
}

impl Engine {
    /// Runs one sync. The caller holds the connector's lock.
    pub async fn run(&self, plan: &SyncPlan) -> Result<SyncReport, SyncError> {
        self.run_as(plan, false).await
    }

    /// Runs one sync, or with `adopt_only` a rebuild (see
    /// [`Engine::rebuild`]).
    async fn run_as(&self, plan: &SyncPlan, adopt_only: bool) -> Result<SyncReport, SyncError> {
        let started = Instant::now();
        let mut run = self.start(plan)?;
        run.adopt_only = adopt_only;
        let result = run
            .execute()
            .await
            .and_then(|()| run.mark_unmapped_retried());
        let result = match result {
            Ok(()) => run.store_folder_marks().await,
            Err(e) => Err(e),
        };
        self.writer.close().await;
        self.end(run, result, started)
    }

    /// Opens a run: marks crashed runs, sets what to recover, records the
    /// run as running and makes every ledger commit wait for the writes.
    fn start<'a>(&'a self, plan: &'a SyncPlan) -> Result<Run<'a>, SyncError> {
        clear_spool(&plan.spool_dir);
        self.ledger.mark_crashed_runs(&plan.connector)?;
        let recovery = self
            .ledger
            .recovery(&plan.connector, plan.since, plan.until)?;
        let started_at = Utc::now();
        let retry_unmapped = self.unmapped_retry_due(plan, recovery, started_at)?;
        let id = self
            .ledger
            .begin_run(&plan.connector, plan.since, plan.until, plan.dry_run)?;
        let id = match plan.manifest_dir.as_deref().and_then(custody::last_run_id) {
            Some(last) => self.ledger.run_id_above(id, last)?,
            None => id,
        };
        let manifest = match self.begin_manifest(plan, id) {
            Ok(m) => m,
            Err(e) => {
                let message = e.to_string();
                self.ledger.finish_run(
                    id,
                    &Default::default(),
                    RunOutcome::Failed,
                    Some(&message),
                )?;
                return Err(e);
            }
        };
        let run = Run {
            engine: self,
            plan,
            id,
            recovery,
            adoption: Adoption::default(),
            adopt_only: false,
            retry_unmapped,
            started_at,
            report: Mutex::new(SyncReport::new(plan)),
            manifest: manifest.clone(),
            fatal: Mutex::new(None),
        };
        self.preload_folder_ids(&plan.connector)?;
        let writer = Arc::clone(&self.writer);
        self.ledger.set_before_commit(Some(Box::new(move || {
            writer.sync_written().map_err(|e| e.to_string())?;
            match &manifest {
                Some(m) => m.sync().map_err(|e| e.to_string()),
                None => Ok(()),
            }
        })))?;
        Ok(run)
    }

    /// Closes a run opened by [`Engine::start`] with its result.
    fn end(
        &self,
        run: Run<'_>,
        result: Result<(), SyncError>,
        started: Instant,
    ) -> Result<SyncReport, SyncError> {
        let (plan, id) = (run.plan, run.id);
        let manifest = run.manifest.clone();
        let mut report = run.report.into_inner().unwrap_or_else(|p| p.into_inner());
        report.duration_ms = started.elapsed().as_millis() as u64;
        let finished = self.finish(plan, id, result, report, manifest.as_deref());
        let cleared = self.ledger.set_before_commit(None);
        let report = finished?;
        cleared?;
        Ok(report)
    }

    /// Records the run's end and figures in the ledger.
    fn finish(
        &self,
        plan: &SyncPlan,
        id: RunId,
        result: Result<(), SyncError>,
        mut report: SyncReport,
        manifest: Option<&ManifestWriter>,
    ) -> Result<SyncReport, SyncError> {
        self.store_folder_ids(&plan.connector)?;
        let figures = report.figures();
        self.ledger.prune_runs(&plan.connector, RUNS_KEPT)?;
        let (outcome, error) = match &result {
            Ok(()) if report.failed > 0 => (RunOutcome::Incomplete, None),
            Ok(()) => (RunOutcome::Ok, None),
            Err(e) => (RunOutcome::Failed, Some(e.to_string())),
        };
        self.ledger
            .finish_run(id, &figures, outcome, error.as_deref())?;
        if let Some(manifest) = manifest {
            let head = manifest.finish(outcome_name(outcome), &figures)?;
            tracing::info!("manifest head: {head}");
            report.manifest_head = Some(head);
        }
        result.map(|()| report)
    }

    /// Opens the run's manifest, for a run that writes.
    fn begin_manifest(
        &self,
        plan: &SyncPlan,
        id: RunId,
    ) -> Result<Option<Arc<ManifestWriter>>, SyncError> {
        let Some(dir) = plan.manifest_dir.as_deref().filter(|_| !plan.dry_run) else {
            return Ok(None);
        };
        let baseline = self.ledger.mailbox_totals(&plan.connector)?;
        let begin = custody::Begin {
            format: custody::FORMAT,
            connector: plan.connector.clone(),
            seq: 0,
            prev: String::new(),
            kind: "sync".into(),
            run_id: Some(id.0),
            started_at: report::time(Utc::now()),
            since: Some(report::time(plan.since)),
            until: Some(report::time(plan.until)),
            baseline_copies: Some(baseline.iter().map(|t| t.copies).sum()),
        };
        Ok(Some(Arc::new(ManifestWriter::begin(dir, begin)?)))
    }
}

impl Engine {
    /// Whether this run retries every unmapped item: asked to, or a
    /// crashed run may have written copies of them without recording them,
    /// or the mapping changed since they were last retried, or that was
    /// [`UNMAPPED_RETRY_DAYS`] ago.
    fn unmapped_retry_due(
        &self,
        plan: &SyncPlan,
        recovery: Recovery,
        now: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let last = self.ledger.unmapped_retry(&plan.connector)?;
        let due = plan.retry_unmapped
            || recovery.retries
            || last.is_none_or(|last| {
                last.mapping != plan.mapping_fingerprint
                    || now - last.at >= chrono::Duration::days(UNMAPPED_RETRY_DAYS)
            });
        if !due {
            let waiting = self
                .ledger
                .item_counts(&plan.connector)?
                .into_iter()
                .find_map(|(state, n)| (state == "unmapped").then_some(n))
                .unwrap_or(0);
            if waiting > 0 {
                tracing::info!(
                    "{waiting} unmapped items: those archived in the last \
                     {UNMAPPED_RETRY_DAYS} days are retried by every run, older ones when the \
                     mapping changes, at least every {UNMAPPED_RETRY_DAYS} days, or now with \
                     `sync --retry-unmapped`"
                );
            }
        }
        Ok(due)
    }

    fn preload_folder_ids(&self, connector: &str) -> Result<(), LedgerError> {
        for (key, id) in self.ledger.folder_ids(connector)? {
            if let Ok(mailbox) = Mailbox::parse(&key) {
                self.writer.preload_folder_id(&mailbox, id);
            }
        }
        Ok(())
    }

    fn store_folder_ids(&self, connector: &str) -> Result<(), LedgerError> {
        for (mailbox, id) in self.writer.folder_ids() {
            self.ledger.set_folder_id(connector, &mailbox, &id)?;
        }
        Ok(())
    }
}

impl Run<'_> {
    async fn execute(&self) -> Result<(), SyncError> {
        let engine = self.engine;
        let seen = Mutex::new(HashSet::<ItemId>::new());
        let connector = &self.plan.connector;
        let retries = if self.retry_unmapped {
            engine.ledger.items_to_retry(connector)?
        } else {
            let recent = self.started_at - chrono::Duration::days(UNMAPPED_RETRY_DAYS);
            let mut retries = engine.ledger.failed_items_to_retry(connector)?;
            retries.extend(engine.ledger.unmapped_items_since(connector, recent)?);
            retries
        };
        let (tx, rx) = mpsc::channel::<Item>(2000);
        let lister = self.list_into(tx, retries);
        let worker = tokio_stream_from(rx)
            .filter(|item| {
                let fresh = seen
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(item.id.clone());
                std::future::ready(fresh)
            })
            .map(|item| self.process(item))
            .buffer_unordered(self.plan.concurrency.max(1))
            .for_each(|()| std::future::ready(()));
        let (listed, ()) = tokio::join!(lister, worker);
        if let Some(fatal) = self.fatal.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(fatal);
        }
        listed?;
        if self.plan.advance_checkpoint && !self.plan.dry_run {
            engine
                .ledger
                .advance_checkpoint(&self.plan.connector, self.plan.until)?;
        }
        Ok(())
    }

    /// Records that every unmapped item was retried under this mapping,
    /// once the run got through them all.
    fn mark_unmapped_retried(&self) -> Result<(), SyncError> {
        if self.retry_unmapped && !self.plan.dry_run {
            self.engine.ledger.record_unmapped_retry(
                &self.plan.connector,
                &self.plan.mapping_fingerprint,
                self.started_at,
            )?;
        }
        Ok(())
    }

    /// Feeds the ledger's retries, then every listed item, to the workers.
    async fn list_into(&self, tx: mpsc::Sender<Item>, retries: Vec<Item>) -> Result<(), SyncError> {
        for item in retries {
            if self.is_stopping() {
                return Ok(());
            }
            self.count_listed(&item, false);
            if tx.send(item).await.is_err() {
                return Ok(());
            }
        }
        let Some(client) = &self.engine.client else {
            return Ok(());
        };
        let mut listing = client.list(self.plan.since, self.plan.until);
        let mut listed_ids = HashSet::new();
        while let Some(page) = listing.next_page().await? {
            if self.is_stopping() {
                return Ok(());
            }
            self.engine.ledger.prefetch(&self.plan.connector, &page);
            for item in page {
                let first_time = listed_ids.insert(item.id.clone());
                if !first_time {
                    continue;
                }
                self.count_listed(&item, true);
                if tx.send(item).await.is_err() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn is_stopping(&self) -> bool {
        self.fatal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    fn count_listed(&self, item: &Item, in_window: bool) {
        if in_window {
            self.report().listed += 1;
        }
        if let Some(p) = &self.engine.progress {
            p.listed(1, item.size);
        }
    }

    fn report(&self) -> std::sync::MutexGuard<'_, SyncReport> {
        self.report.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn process(&self, item: Item) {
        let size = item.size;
        if self.is_stopping() {
            return;
        }
        if let Err(e) = self.process_item(&item).await {
            tracing::error!("stopping the run at item {}: {e}", item.id);
            self.fatal
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(e);
        }
        if let Some(p) = &self.engine.progress {
            p.item_done(size);
        }
    }

    async fn process_item(&self, item: &Item) -> Result<(), SyncError> {
        let state = self
            .engine
            .ledger
            .item_state(&self.plan.connector, &item.id)?
            .map(|(state, _)| state);
        // An item an earlier run found purged (`404`) is gone for good:
        // listing it again must not fail the run again.
        if state.as_deref() == Some("gone") {
            tracing::info!(
                "item {} was purged from TeleMessage earlier; skipping it",
                item.id
            );
            return Ok(());
        }
        if !item.kind.is_known() || !item.platform.is_known() {
            tracing::warn!(
                "item {} has type {:?} on platform {:?}, which this version does not know; archiving it as is",
                item.id,
                item.kind.as_str(),
                item.platform.as_str()
            );
            self.report().note_unknown(item);
        }
        self.deliver_item(item, state.as_deref(), None)
            .await
            .map(drop)
    }

    /// The path every item takes, whatever its source: resolve its
    /// mailboxes, skip the copies the ledger holds, get the content (the
    /// API source downloads it; an e-mail source gives it), write each
    /// pending copy, record it once durable, and settle the item. `state`
    /// is the item's state in the ledger.
    async fn deliver_item(
        &self,
        item: &Item,
        state: Option<&str>,
        given: Option<&Content>,
    ) -> Result<Settled, SyncError> {
        let connector = &self.plan.connector;
        let recorded = self.engine.ledger.copies_of(connector, &item.id)?;
        let resolution = match self
            .engine
            .resolver
            .resolve_holding(item, self.engine.writer.as_ref(), &recorded)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                let reason = format!("cannot resolve mailboxes: {e}");
                self.fail_item(item, None, &reason);
                return Ok(Settled::Failed(reason));
            }
        };
        let lookup_failure = resolution.lookup_failure();
        if resolution.mailboxes.is_empty()
            && let Some(reason) = &lookup_failure
        {
            let reason = format!("cannot resolve mailboxes: {reason}");
            self.fail_item(item, None, &reason);
            return Ok(Settled::Failed(reason));
        }
        let unmapped = resolution
            .mailboxes
            .is_empty()
            .then(|| unmapped_reason(&resolution));
        let mailboxes = match (unmapped.is_some(), &self.plan.fallback_mailbox) {
            (false, _) => resolution.mailboxes.clone(),
            (true, Some(fallback)) => vec![fallback.clone()],
            (true, None) => Vec::new(),
        };
        if unmapped.is_some() {
            self.report().unmapped_item(item);
        }
        let (pending, unchecked) = self
            .pending_mailboxes(item, state, &mailboxes, &recorded)
            .await?;
        // Copies for the participants found, a retry for the others.
        let unchecked = unchecked.or(lookup_failure);
        if pending.is_empty() {
            return self.settle(item, unmapped.as_deref(), unchecked.as_deref());
        }
        if self.plan.dry_run {
            self.report().plan(item, &pending);
            return Ok(Settled::Planned);
        }
        if self.adopt_only {
            return self.missing_on_target(item, &pending);
        }
        let downloaded;
        let content = match given {
            Some(content) => content,
            None => match self.download_preparing(item, &pending).await? {
                Ok(content) => {
                    downloaded = content;
                    &downloaded
                }
                Err(settled) => return Ok(settled),
            },
        };
        let failure = self
            .write_copies(item, content, &pending)
            .await?
            .or(unchecked);
        self.settle(item, unmapped.as_deref(), failure.as_deref())
    }

    /// Downloads an item's content while the writer prepares the mailboxes
    /// it goes to (see [`MailboxWriter::prepare`]).
    async fn download_preparing(
        &self,
        item: &Item,
        pending: &[Mailbox],
    ) -> Result<Result<Content, Settled>, SyncError> {
        let prepare = futures_util::future::join_all(
            pending
                .iter()
                .map(|mailbox| self.engine.writer.prepare(mailbox)),
        );
        let (downloaded, _) = tokio::join!(self.download(item), prepare);
        downloaded
    }

    /// Downloads an item's content; an item-only failure settles the item.
    async fn download(&self, item: &Item) -> Result<Result<Content, Settled>, SyncError> {
        let Some(client) = &self.engine.client else {
            return Err(SyncError::NoSource(
                self.plan.connector.clone(),
                item.id.clone(),
            ));
        };
        match client.download(item, &self.plan.spool_dir).await {
            Ok(content) => {
                faultpoint::hit(faultpoint::AFTER_DOWNLOAD);
                Ok(Ok(content))
            }
            Err(e) if e.is_item_only() => {
                let state = match e {
                    ClientError::ItemGone(_) => ItemState::Gone,
                    _ => ItemState::Failed,
                };
                let reason = e.to_string();
                self.fail_item_as(item, state, &reason)?;
                Ok(Err(Settled::Failed(reason)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The mailboxes that still need a copy; counts the others as already
    /// archived. After a crash, asks the target for unrecorded copies; a
    /// mailbox that cannot be checked is not written (a duplicate would be
    /// worse than a retry) and its reason is returned.
    async fn pending_mailboxes(
        &self,
        item: &Item,
        state: Option<&str>,
        mailboxes: &[Mailbox],
        recorded: &HashSet<String>,
    ) -> Result<(Vec<Mailbox>, Option<String>), SyncError> {
        let mut unchecked = None;
        let look = self.may_be_unrecorded(state);
        let mut pending = Vec::new();
        for mailbox in mailboxes {
            if recorded.contains(mailbox.key()) {
                self.report().already_archived(mailbox);
                continue;
            }
            match self.adopt(item, mailbox).await? {
                Adopted::Yes => continue,
                Adopted::Unchecked(reason) => {
                    self.report().copy_failed(item, Some(mailbox), &reason);
                    unchecked.get_or_insert(reason);
                    continue;
                }
                Adopted::No => {}
            }
            if look {
                match self.engine.writer.find_existing(mailbox, item).await {
                    Ok(Some(written)) => {
                        tracing::info!(
                            "item {} was already in {mailbox} (written before a crash); recording it",
                            item.id
                        );
                        self.record_copy(item, mailbox, &written, None)?;
                        self.report().already_archived(mailbox);
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let reason = format!("cannot check for a copy left by a crash: {e}");
                        self.report().copy_failed(item, Some(mailbox), &reason);
                        unchecked.get_or_insert(reason);
                        continue;
                    }
                }
            }
            pending.push(mailbox.clone());
        }
        Ok((pending, unchecked))
    }

    /// Records a copy: its manifest line first, then its ledger row.
    fn record_copy(
        &self,
        item: &Item,
        mailbox: &Mailbox,
        written: &Written,
        sha256: Option<&str>,
    ) -> Result<(), SyncError> {
        if let Some(manifest) = &self.manifest {
            manifest.copy(CopyLine {
                item: item.id.to_string(),
                mailbox: mailbox.key().to_owned(),
                location: written.location.clone(),
                bytes: written.bytes,
                sha256: sha256.map(str::to_owned),
            })?;
        }
        self.engine
            .ledger
            .record_copy(&self.plan.connector, item, mailbox, written, self.id)?;
        Ok(())
    }

    /// Whether a crashed run may have written copies of this item (whose
    /// ledger state is `state`) without recording them: it listed the same
    /// window, or retried the item.
    fn may_be_unrecorded(&self, state: Option<&str>) -> bool {
        if self.plan.dry_run || !self.recovery.retries {
            return false;
        }
        self.recovery.listed || matches!(state, Some("failed" | "unmapped"))
    }
    /// Records the item's final state for this run; `unmapped` is why no
    /// participant maps to a mailbox, when none does.
    fn settle(
        &self,
        item: &Item,
        unmapped: Option<&str>,
        failure: Option<&str>,
    ) -> Result<Settled, SyncError> {
        if self.plan.dry_run {
            return Ok(Settled::Planned);
        }
        let (state, reason) = match (failure, unmapped) {
            (Some(reason), _) => {
                self.report().item_failed();
                (ItemState::Failed, Some(reason.to_owned()))
            }
            (None, Some(why)) => (ItemState::Unmapped, Some(why.to_owned())),
            (None, None) => (ItemState::Archived, None),
        };
        self.note_item(item, state)?;
        self.engine.ledger.record_item(
            &self.plan.connector,
            item,
            state,
            reason.as_deref(),
            self.id,
        )?;
        Ok(match (state, reason) {
            (ItemState::Failed, Some(reason)) => Settled::Failed(reason),
            (ItemState::Unmapped, _) => Settled::Unmapped,
            _ => Settled::Archived,
        })
    }

    fn fail_item(&self, item: &Item, mailbox: Option<&Mailbox>, reason: &str) {
        self.report().copy_failed(item, mailbox, reason);
        self.report().item_failed();
        if !self.plan.dry_run {
            let recorded = self.note_item(item, ItemState::Failed).and_then(|()| {
                Ok(self.engine.ledger.record_item(
                    &self.plan.connector,
                    item,
                    ItemState::Failed,
                    Some(reason),
                    self.id,
                )?)
            });
            if let Err(e) = recorded {
                tracing::error!("cannot record item {} as failed: {e}", item.id);
            }
        }
    }

    fn fail_item_as(&self, item: &Item, state: ItemState, reason: &str) -> Result<(), SyncError> {
        tracing::warn!("item {}: {reason}", item.id);
        self.report().copy_failed(item, None, reason);
        self.report().item_failed();
        self.note_item(item, state)?;
        self.engine
            .ledger
            .record_item(&self.plan.connector, item, state, Some(reason), self.id)?;
        Ok(())
    }

    /// The manifest line of an item state about to be recorded.
    fn note_item(&self, item: &Item, state: ItemState) -> Result<(), SyncError> {
        if let Some(manifest) = &self.manifest {
            manifest.item(item.id.as_str(), state_name(state))?;
        }
        Ok(())
    }
}

/// How a manifest names an item state (as the ledger does).
fn state_name(state: ItemState) -> &'static str {
    match state {
        ItemState::Archived => "archived",
        ItemState::Unmapped => "unmapped",
        ItemState::Failed => "failed",
        ItemState::Gone => "gone",
    }
}

/// How a manifest names a run's outcome.
fn outcome_name(outcome: RunOutcome) -> &'static str {
    match outcome {
        RunOutcome::Ok => "ok",
        RunOutcome::Incomplete => "incomplete",
        RunOutcome::Failed => "failed",
        RunOutcome::Running | RunOutcome::Crashed => "crashed",
    }
}

/// Removes downloads a killed run left in the connector's spool directory;
/// the caller holds the connector's lock, so none of them is in use.
fn clear_spool(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.path().extension().is_some_and(|e| e == "part") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Why no participant maps to a mailbox, participant by participant
/// (names and numbers, no content).
fn unmapped_reason(resolution: &Resolution) -> String {
    let parties: Vec<String> = resolution
        .unmapped
        .iter()
        .map(ToString::to_string)
        .collect();
    format!("no participant maps to a mailbox: {}", parties.join("; "))
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
