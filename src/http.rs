//! What every HTTP client of the tool shares, because every server is
//! treated as hostile: no redirects (a redirect would re-send a password,
//! a client secret or a bearer token to another origin), bodies read into
//! memory only up to a cap, and server numbers clamped before use.

use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::{Response, header};

/// The longest `Retry-After` ever taken from a server; any caller's own
/// limit is lower, so a larger value only needs to read as "too long".
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How much of an error answer is read: enough for any JSON error, and
/// the rest is dropped with the connection.
pub const ERROR_BODY_CAP: usize = 64 * 1024;

/// A client builder that never follows redirects: a redirected request is
/// answered with its 3xx, which callers turn into an error naming it.
pub fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("wechat-archiver/", env!("CARGO_PKG_VERSION")))
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the answer is larger than the {0} bytes allowed for it")]
    TooLarge(usize),
    #[error("the answer broke off: {}", describe_broken(.0))]
    Broken(reqwest::Error),
}

fn describe_broken(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the request's deadline passed before it was complete".to_owned()
    } else {
        let mut reason = "the connection failed".to_owned();
        let mut source = std::error::Error::source(e);
        while let Some(inner) = source {
            reason = inner.to_string();
            source = inner.source();
        }
        reason
    }
}

/// Reads a whole body, failing as soon as it passes `cap` bytes (by its
/// `Content-Length` or by what arrived).
pub async fn read_capped(response: Response, cap: usize) -> Result<Bytes, BodyError> {
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(BodyError::TooLarge(cap));
    }
    let mut body = BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(BodyError::Broken)?;
        if body.len().saturating_add(chunk.len()) > cap {
            return Err(BodyError::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The first [`ERROR_BODY_CAP`] bytes of an error answer; the rest is
/// never read, and a broken body reads as what arrived.
pub async fn error_body(response: Response) -> Bytes {
    let mut body = BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = ERROR_BODY_CAP - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= ERROR_BODY_CAP {
            break;
        }
    }
    body.freeze()
}

/// Where a refused redirect pointed, for the error message (`Location`
/// is visible ASCII by the header rules; it is cut short all the same).
pub fn redirect_target(response: &Response) -> String {
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("(no Location)");
    location.chars().take(200).collect()
}

/// Text a server chose (an error message), cut to 500 characters and
/// escaped with [`crate::text::escape_control`], so it can neither drive
/// the terminal it is printed on nor forge lines in a log.
pub fn server_text(text: &str) -> String {
    let cut: String = text.chars().take(500).collect();
    crate::text::escape_control(&cut).into_owned()
}

/// Parses `Retry-After`: delay seconds (fractions accepted) or an HTTP
/// date; negative or unreadable values are ignored, huge ones clamped to
/// [`MAX_RETRY_AFTER`].
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        if !(secs.is_finite() && secs >= 0.0) {
            return None;
        }
        return Some(
            Duration::try_from_secs_f64(secs)
                .unwrap_or(MAX_RETRY_AFTER)
                .min(MAX_RETRY_AFTER),
        );
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn server_text_cannot_drive_a_terminal() {
        assert_eq!(
            server_text("a\x1b]52;c;x\x07b\nc"),
            "a\\x1b]52;c;x\\x07b\\nc"
        );
        assert_eq!(server_text(&"x".repeat(900)).len(), 500);
    }

    #[test]
    fn absurd_retry_after_values_are_clamped_or_ignored() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for huge in ["1e20", "1e308", "18446744073709551616", "9999999999999"] {
            assert_eq!(
                parse_retry_after(huge, now),
                Some(MAX_RETRY_AFTER),
                "{huge}"
            );
        }
        for bad in ["-1", "-1e20", "NaN", "inf", "-inf"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
        let far = httpdate::fmt_http_date(now + Duration::from_secs(9_000_000_000));
        assert_eq!(parse_retry_after(&far, now), Some(MAX_RETRY_AFTER));
    }
}
