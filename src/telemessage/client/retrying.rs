//! One failed attempt and what to do about it: classify an answer as
//! worth a retry or fatal, keep quiet while a `Retry-After` runs, and wait
//! or give up within the retry policy.

use std::time::{Duration, Instant, SystemTime};

use reqwest::{Response, StatusCode, header};

use super::{Client, ClientError};
use crate::telemessage::model::ApiErrorBody;
use crate::telemessage::retry::parse_retry_after;

/// One failed attempt, and whether it is worth another.
pub(super) enum Attempt {
    Retry { reason: String, wait: Duration },
    Fatal(ClientError),
}

impl Client {
    /// Turns an unsuccessful answer into a retry or a fatal error.
    pub(super) async fn classify(
        &self,
        response: Response,
        status: StatusCode,
        what: &str,
    ) -> Attempt {
        self.classify_answer(response, status, what, FreeText::Shown)
            .await
    }

    /// [`Client::classify`], with the server's free text shown (escaped)
    /// or, for the sign-in, never: a proxy that echoes the request would
    /// print the password.
    pub(super) async fn classify_answer(
        &self,
        response: Response,
        status: StatusCode,
        what: &str,
        text: FreeText,
    ) -> Attempt {
        if status.is_redirection() {
            return Attempt::Fatal(ClientError::Redirected {
                what: what.to_owned(),
                location: crate::http::redirect_target(&response),
            });
        }
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let mut body = error_body(response).await;
        body.error = plain_code(&body.error);
        body.message = match text {
            FreeText::Shown => crate::http::server_text(&body.message),
            FreeText::Hidden => String::new(),
        };
        let detail = if body.message.is_empty() {
            body.error.clone()
        } else {
            format!("{}: {}", body.error, body.message)
        };
        match status {
            StatusCode::TOO_MANY_REQUESTS => {
                let wait = retry_after.unwrap_or(Duration::from_secs(1));
                if wait > self.inner.options.retry.max_retry_after {
                    return Attempt::Fatal(ClientError::RetryAfterTooLong(wait));
                }
                self.quiet_for(wait);
                Attempt::Retry {
                    reason: format!("rate limited (429) {detail}"),
                    wait,
                }
            }
            StatusCode::FORBIDDEN => Attempt::Fatal(ClientError::Forbidden {
                code: body.error,
                message: body.message,
            }),
            StatusCode::BAD_REQUEST => Attempt::Fatal(ClientError::BadRequest {
                what: what.to_owned(),
                message: detail,
            }),
            s if s.is_server_error() => Attempt::Retry {
                reason: format!("server error {s} {detail}"),
                wait: retry_after.unwrap_or(Duration::ZERO),
            },
            s => Attempt::Retry {
                reason: format!("unexpected answer {s} {detail}"),
                wait: Duration::ZERO,
            },
        }
    }

    /// Sleeps until a running `Retry-After` has passed.
    pub(super) async fn keep_quiet(&self) {
        loop {
            let until = *self
                .inner
                .quiet_until
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match until {
                Some(until) if until > Instant::now() => {
                    tokio::time::sleep_until(until.into()).await
                }
                _ => return,
            }
        }
    }

    fn quiet_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut quiet = self
            .inner
            .quiet_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *quiet = Some(quiet.map_or(until, |q| q.max(until)));
    }

    /// Sleeps before the next attempt, or gives up when the policy's count
    /// or total time would be exceeded. A `wait` of zero means "use backoff".
    pub(super) async fn wait_or_give_up(
        &self,
        what: &str,
        attempt: u32,
        started: Instant,
        reason: String,
        wait: Duration,
    ) -> Result<(), ClientError> {
        let policy = &self.inner.options.retry;
        let wait = if wait.is_zero() {
            policy.backoff(attempt)
        } else {
            wait
        };
        let elapsed = started.elapsed();
        if attempt >= policy.max_attempts || elapsed + wait > policy.max_total {
            return Err(ClientError::GaveUp {
                what: what.to_owned(),
                attempts: attempt,
                elapsed,
                last: reason,
            });
        }
        tracing::info!(
            "{what}: {reason}; retrying in {} (attempt {attempt})",
            crate::text::human_duration(wait)
        );
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

pub(super) fn retry_now(reason: &str) -> Attempt {
    Attempt::Retry {
        reason: reason.to_owned(),
        wait: Duration::ZERO,
    }
}

/// Whether an error answer's `message` may be shown.
#[derive(Clone, Copy)]
pub(super) enum FreeText {
    Shown,
    Hidden,
}

/// The API's error body, from at most the first
/// [`ERROR_BODY_CAP`](crate::http::ERROR_BODY_CAP) bytes of the answer.
pub(super) async fn error_body(response: Response) -> ApiErrorBody {
    let bytes = crate::http::error_body(response).await;
    serde_json::from_slice(&bytes).unwrap_or_default()
}

/// An error code as the API defines them (`snake_case`), or a placeholder
/// for anything else a server put there.
pub(super) fn plain_code(code: &str) -> String {
    let plain = (1..=64).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
    if plain || code.is_empty() {
        code.to_owned()
    } else {
        "(unreadable error code)".to_owned()
    }
}

pub(super) fn describe_reqwest_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the connection failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind} ({detail})")
    }
}
