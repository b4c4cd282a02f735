//! Content downloads: verified against the listing's size and SHA-256,
//! resumed with `Range`, and bounded in number at once.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::{Response, StatusCode, Url, header};

use super::retrying::{Attempt, error_body, plain_code, retry_now};
use super::sink::Sink;
use super::{Client, ClientError, MIN_DOWNLOAD_RATE};
use crate::content::Content;
use crate::telemessage::model::Item;

impl Client {
    /// Downloads an item's content, verifies size and SHA-256 against the
    /// listing, and resumes an interrupted body with `Range`. Bodies over
    /// [`MEMORY_LIMIT`](crate::content::MEMORY_LIMIT), or beyond the memory budget, are spooled to a file
    /// in `spool_dir`.
    pub async fn download(&self, item: &Item, spool_dir: &Path) -> Result<Content, ClientError> {
        let _slot = self.inner.download_slots.acquire().await.ok();
        let what = format!("downloading item {}", item.id);
        let url = self.content_url(item)?;
        let mut sink = Sink::new(item, spool_dir, &self.inner.memory).await?;
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = self.download_attempt(&url, item, &mut sink).await;
            let failure = match outcome {
                Ok(()) => match sink.verify(item) {
                    Ok(()) => return sink.finish().await,
                    Err(reason) => {
                        sink.reset().await?;
                        Attempt::Retry {
                            reason,
                            wait: self.inner.options.retry.backoff(attempt),
                        }
                    }
                },
                Err(failure) => failure,
            };
            match failure {
                Attempt::Fatal(e) => return Err(e),
                Attempt::Retry { reason, wait } => {
                    self.wait_or_give_up(&what, attempt, started, reason, wait)
                        .await?
                }
            }
        }
    }

    async fn download_attempt(
        &self,
        url: &Url,
        item: &Item,
        sink: &mut Sink,
    ) -> Result<(), Attempt> {
        let offset = sink.received;
        let deadline = self.download_deadline(item.size.saturating_sub(offset));
        let response = self
            .send(|http| {
                let req = http
                    .get(url.clone())
                    .timeout(deadline)
                    .header(header::ACCEPT, "message/rfc822");
                if offset > 0 {
                    req.header(header::RANGE, format!("bytes={offset}-"))
                } else {
                    req
                }
            })
            .await?;
        match response.status() {
            StatusCode::OK if offset > 0 => sink.reset().await.map_err(Attempt::Fatal)?,
            StatusCode::OK => {}
            StatusCode::PARTIAL_CONTENT if range_start(&response) == Some(offset) => {}
            StatusCode::PARTIAL_CONTENT => {
                sink.reset().await.map_err(Attempt::Fatal)?;
                return Err(retry_now("a 206 answer for the wrong range"));
            }
            StatusCode::NOT_FOUND => {
                // Only the API's own answer means purged; any other 404 (a
                // proxy, a wrong path) must not mark the item gone for good.
                let mut body = error_body(response).await;
                body.error = plain_code(&body.error);
                if body.error == "item_not_found" {
                    return Err(Attempt::Fatal(ClientError::ItemGone(item.id.to_string())));
                }
                return Err(retry_now(&format!(
                    "404 without item_not_found ({}) for the content",
                    if body.error.is_empty() {
                        "no API error body"
                    } else {
                        &body.error
                    }
                )));
            }
            status => return Err(self.classify(response, status, "the content").await),
        }
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| match e.is_timeout() {
                true => retry_now(&format!(
                    "the body was not complete within its {} s deadline",
                    deadline.as_secs()
                )),
                false => retry_now(&format!("the body broke off: {}", e.without_url())),
            })?;
            if sink.received + chunk.len() as u64 > item.size {
                sink.reset().await.map_err(Attempt::Fatal)?;
                return Err(retry_now("the body is longer than the listed size"));
            }
            sink.write(&chunk).await.map_err(Attempt::Fatal)?;
        }
        if sink.received < item.size {
            return Err(retry_now("the body ended early"));
        }
        Ok(())
    }

    /// The time a download of `bytes` may take in all: the request
    /// deadline plus the time the size needs at the slowest rate allowed.
    fn download_deadline(&self, bytes: u64) -> Duration {
        self.inner
            .options
            .request_deadline
            .saturating_add(Duration::from_secs(bytes / MIN_DOWNLOAD_RATE))
    }

    /// The content URL, the id percent-encoded as one path segment (an id
    /// may hold `%`, `?`, `#`, `\` or spaces).
    fn content_url(&self, item: &Item) -> Result<Url, ClientError> {
        self.content_url_of(&item.id)
    }

    pub(super) fn content_url_of(&self, id: &crate::types::ItemId) -> Result<Url, ClientError> {
        let id = id.as_str();
        if matches!(id, "." | "..") {
            return Err(ClientError::UnaddressableItem(id.to_owned()));
        }
        let mut url = self.url("/v1/archive/items", &[]);
        url.path_segments_mut()
            .map_err(|()| ClientError::BadEndpoint(self.endpoint().to_owned()))?
            .push(id)
            .push("content");
        Ok(url)
    }
}

fn range_start(response: &Response) -> Option<u64> {
    let value = response
        .headers()
        .get(header::CONTENT_RANGE)?
        .to_str()
        .ok()?;
    let range = value.strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::secrets::Secret;
    use crate::telemessage::ClientOptions;

    /// A TeleMessage API on loopback that issues tokens and answers
    /// content requests with `content`; returns its URL.
    async fn serve_content(content: axum::routing::MethodRouter) -> String {
        let app = axum::Router::new()
            .route(
                "/v1/auth/token",
                axum::routing::post(|| async {
                    axum::Json(serde_json::json!({
                        "access_token": "t",
                        "account": {"id": "a", "name": "A"},
                    }))
                }),
            )
            .route("/v1/archive/items/{id}/content", content);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    /// Bodies beyond the memory budget are spooled, however small, and
    /// the budget comes back when a body in memory is dropped.
    #[tokio::test]
    async fn bodies_beyond_the_memory_budget_are_spooled() {
        const BODY: &[u8] = &[b'x'; 40_000];
        let url = serve_content(axum::routing::get(|| async { BODY })).await;
        let options = ClientOptions {
            memory_budget: 64 * 1024,
            ..ClientOptions::default()
        };
        let client = Client::new(&url, "u", Secret::new("p"), options).unwrap();
        let item: Item = serde_json::from_value(serde_json::json!({
            "id": "itm_1", "platform": "wechat", "type": "chat",
            "conversation": {"id": "c", "kind": "direct", "title": ""},
            "sent_at": "2026-11-22T08:15:00Z", "archived_at": "2026-11-22T08:15:03Z",
            "sender": {"name": "", "mobile": null, "email": null, "wechat_id": "w"},
            "participants": [], "size": BODY.len(), "sha256": hex::encode(Sha256::digest(BODY))
        }))
        .unwrap();
        let spool = tempfile::tempdir().unwrap();

        let first = client.download(&item, spool.path()).await.unwrap();
        assert!(first.path().is_none(), "the first body fits the budget");
        let second = client.download(&item, spool.path()).await.unwrap();
        let spooled = second
            .path()
            .expect("the second body is spooled")
            .to_owned();
        assert_eq!(std::fs::read(&spooled).unwrap(), BODY);
        assert_eq!(first.to_bytes().await.unwrap(), BODY);
        drop(first);
        let third = client.download(&item, spool.path()).await.unwrap();
        assert!(third.path().is_none(), "the budget came back");
    }

    /// A 404 that is not the API's `item_not_found` (a proxy's page, a
    /// wrong path) is retried and then fails the item; it is not "gone".
    #[tokio::test]
    async fn only_item_not_found_marks_an_item_gone() {
        use axum::routing::get;
        let url = serve_content(get(
            |axum::extract::Path(id): axum::extract::Path<String>| async move {
                let code = if id == "purged" { "item_not_found" } else { "" };
                (
                    StatusCode::NOT_FOUND,
                    axum::Json(serde_json::json!({"error": code})),
                )
            },
        ))
        .await;
        let mut options = ClientOptions::default();
        options.retry.max_attempts = 2;
        let client = Client::new(&url, "u", Secret::new("p"), options).unwrap();
        let item = |id: &str| -> Item {
            serde_json::from_value(serde_json::json!({
                "id": id, "platform": "wechat", "type": "chat",
                "conversation": {"id": "c", "kind": "direct", "title": ""},
                "sent_at": "2026-11-22T08:15:00Z", "archived_at": "2026-11-22T08:15:03Z",
                "sender": {"name": "n"}, "size": 1, "sha256": "00",
            }))
            .unwrap()
        };
        let spool = std::env::temp_dir();
        let purged = client.download(&item("purged"), &spool).await;
        assert!(
            matches!(purged, Err(ClientError::ItemGone(_))),
            "{purged:?}"
        );
        let other = client.download(&item("other"), &spool).await;
        assert!(
            matches!(other, Err(ClientError::GaveUp { .. })),
            "{other:?}"
        );
    }
}
