//! Paging through a window of the archive listing.

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::StatusCode;

use super::retrying::{Attempt, retry_now};
use super::{Client, ClientError};
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
        }
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
                Ok(page) => return Ok(Some(self.accept(page))),
                Err(failure) => failure,
            };
            match failure {
                Attempt::Fatal(e) => return Err(e),
                Attempt::Retry { reason, wait } => {
                    self.client
                        .wait_or_give_up("listing archived items", attempt, started, reason, wait)
                        .await?
                }
            }
        }
    }

    fn accept(&mut self, page: ItemPage) -> Vec<Item> {
        if let Some(last) = page.items.iter().map(|i| i.archived_at).max() {
            self.resume_from = Some(self.resume_from.map_or(last, |r| r.max(last)));
        }
        match page.next_cursor {
            Some(c) if !c.is_empty() => self.cursor = Some(c),
            _ => self.done = true,
        }
        page.items
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
            tracing::info!("the listing cursor expired; restarting from the last item seen");
            self.cursor = None;
            if let Some(resume) = self.resume_from {
                self.since = resume;
            }
            return Err(Attempt::Retry {
                reason: "cursor expired (410)".into(),
                wait: Duration::from_millis(1),
            });
        }
        if !status.is_success() {
            return Err(self.client.classify(response, status, "listing").await);
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| retry_now(&format!("the listing broke off: {e}")))?;
        serde_json::from_slice(&body)
            .map_err(|e| retry_now(&format!("the listing is not the promised JSON: {e}")))
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}
