//! Paging through a window of the archive listing, bounded so that a
//! server that pages forever ends the run instead of holding it.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

use super::retrying::Attempt;
use super::{Client, ClientError, misbehaving, read_json};
use crate::telemessage::model::{Item, ItemPage};

impl Client {
    /// Lists a window page by page; see [`Listing`].
    pub fn list(&self, since: DateTime<Utc>, until: DateTime<Utc>) -> Listing {
        Listing {
            client: self.clone(),
            since,
            until,
            cursor: None,
            done: false,
            resume_from: None,
            pages: Pages::new(self.inner.options.max_pages),
            restarts: 0,
            stalled_restarts: 0,
            resumed_from: None,
        }
    }
}

/// Participants one item may list; a WeCom group holds at most a few
/// thousand, and each participant costs a mailbox lookup.
pub const MAX_PARTICIPANTS: usize = 10_000;

/// Restarts after an expired cursor (`410`) one listing may take, and how
/// many of them in a row may resume from where the last one did.
const MAX_RESTARTS: u32 = 1000;
const MAX_STALLED_RESTARTS: u32 = 3;

const WHAT: &str = "listing archived items";

/// Bounds one paged walk: no `next_cursor` twice, at most `max` pages.
/// Cursors are kept as digests, so a huge cursor costs no memory.
pub(super) struct Pages {
    seen: HashSet<[u8; 32]>,
    count: u32,
    max: u32,
}

impl Pages {
    pub(super) fn new(max: u32) -> Pages {
        Pages {
            seen: HashSet::new(),
            count: 0,
            max: max.max(1),
        }
    }

    /// Counts a page and checks its `next_cursor`: `None` when the walk
    /// is done, the reason when it must stop.
    pub(super) fn next(&mut self, cursor: Option<String>) -> Result<Option<String>, String> {
        self.count = self.count.saturating_add(1);
        let Some(cursor) = cursor.filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        if self.count >= self.max {
            return Err(format!(
                "it is still paging after {} pages, the most one run takes",
                self.count
            ));
        }
        if !self.seen.insert(Sha256::digest(cursor.as_bytes()).into()) {
            return Err(
                "it sent a next_cursor it had sent before, which would page forever".to_owned(),
            );
        }
        Ok(Some(cursor))
    }

    /// A new walk of the same window: cursors may come again.
    fn restart(&mut self) {
        self.seen.clear();
    }
}

/// Pages through one window. Items can repeat across pages; the caller
/// dedupes by id. An expired cursor restarts the listing at the last
/// `archived_at` seen, which the order of the listing makes safe.
pub struct Listing {
    client: Client,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    cursor: Option<String>,
    done: bool,
    resume_from: Option<DateTime<Utc>>,
    pages: Pages,
    restarts: u32,
    stalled_restarts: u32,
    resumed_from: Option<DateTime<Utc>>,
}

impl Listing {
    /// The next page of items, or `None` when the window is done.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Item>>, ClientError> {
        if self.done {
            return Ok(None);
        }
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.page_attempt().await {
                Ok(page) => return self.accept(page).map(Some),
                Err(failure) => failure,
            };
            match failure {
                Attempt::Fatal(e) => return Err(e),
                Attempt::Retry { reason, wait } => {
                    self.client
                        .wait_or_give_up(WHAT, attempt, started, reason, wait)
                        .await?
                }
            }
        }
    }

    /// Checks a page against what was asked and takes its cursor.
    fn accept(&mut self, page: ItemPage) -> Result<Vec<Item>, ClientError> {
        let limit = self.client.inner.options.page_limit;
        if page.items.len() > limit as usize {
            return Err(misbehaving(
                WHAT,
                format!(
                    "a page holds {} items, {limit} were asked for",
                    page.items.len()
                ),
            ));
        }
        if let Some(item) = page
            .items
            .iter()
            .find(|i| i.participants.len() > MAX_PARTICIPANTS)
        {
            return Err(misbehaving(
                WHAT,
                format!(
                    "item {} lists {} participants, more than the {MAX_PARTICIPANTS} accepted",
                    item.id,
                    item.participants.len()
                ),
            ));
        }
        if let Some(last) = page.items.iter().map(|i| i.archived_at).max() {
            self.resume_from = Some(self.resume_from.map_or(last, |r| r.max(last)));
        }
        self.cursor = self
            .pages
            .next(page.next_cursor)
            .map_err(|reason| misbehaving(WHAT, reason))?;
        self.done = self.cursor.is_none();
        Ok(page.items)
    }

    /// Starts the window again from the last item seen after an expired
    /// cursor, unless the listing keeps expiring without getting further.
    fn restart(&mut self) -> Result<(), ClientError> {
        self.restarts += 1;
        if self.resume_from == self.resumed_from {
            self.stalled_restarts += 1;
        } else {
            self.stalled_restarts = 0;
        }
        if self.restarts > MAX_RESTARTS || self.stalled_restarts >= MAX_STALLED_RESTARTS {
            return Err(misbehaving(
                WHAT,
                format!(
                    "its cursor expired (410) {} times, {} of them in a row without getting past {}",
                    self.restarts,
                    self.stalled_restarts + 1,
                    self.resume_from
                        .map_or_else(|| rfc3339(self.since), rfc3339)
                ),
            ));
        }
        tracing::info!("the listing cursor expired; restarting from the last item seen");
        self.cursor = None;
        self.pages.restart();
        self.resumed_from = self.resume_from;
        if let Some(resume) = self.resume_from {
            self.since = resume;
        }
        Ok(())
    }

    async fn page_attempt(&mut self) -> Result<ItemPage, Attempt> {
        let since = self.since;
        let mut query = vec![
            ("since", rfc3339(since)),
            ("until", rfc3339(self.until)),
            ("limit", self.client.inner.options.page_limit.to_string()),
        ];
        if let Some(cursor) = &self.cursor {
            query.push(("cursor", cursor.clone()));
        }
        let url = self.client.url("/v1/archive/items", &query);
        let response = self.client.send(|http| http.get(url.clone())).await?;
        let status = response.status();
        if status == StatusCode::GONE {
            self.restart().map_err(Attempt::Fatal)?;
            return Err(Attempt::Retry {
                reason: "cursor expired (410)".into(),
                wait: Duration::from_millis(1),
            });
        }
        if !status.is_success() {
            return Err(self.client.classify(response, status, "listing").await);
        }
        read_json(
            response,
            WHAT,
            page_cap(self.client.inner.options.page_limit),
        )
        .await
    }
}

/// The largest listing page read: room for `limit` items with many
/// participants each.
fn page_cap(limit: u32) -> usize {
    (1 << 20) + 128 * 1024 * limit as usize
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}
