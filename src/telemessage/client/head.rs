//! The `Message-ID` of an item's content, read from its head with `Range`
//! (at most [`HEAD_LIMIT`] bytes, never the whole item): a recalled item's
//! copy names its original's, which only the original's content holds.

use futures_util::StreamExt;
use reqwest::{StatusCode, header};

use super::retrying::Attempt;
use super::{Client, ClientError};
use crate::types::ItemId;

/// The most of a content read to find its header block.
pub const HEAD_LIMIT: usize = 64 * 1024;

impl Client {
    /// The `Message-ID` (with its angle brackets) of item `id`'s content;
    /// `None` when its header block has none. One attempt: a caller that
    /// cannot have it goes on without it.
    pub async fn message_id(&self, id: &ItemId) -> Result<Option<String>, ClientError> {
        let what = format!("reading the head of item {id}");
        let failed = |reason: String| ClientError::Misbehaving {
            what: what.clone(),
            reason,
        };
        let url = self.content_url_of(id)?;
        let deadline = self.inner.options.request_deadline;
        let sent = self
            .send(|http| {
                http.get(url.clone())
                    .timeout(deadline)
                    .header(header::ACCEPT, "message/rfc822")
                    .header(header::RANGE, format!("bytes=0-{}", HEAD_LIMIT - 1))
            })
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(Attempt::Fatal(e)) => return Err(e),
            Err(Attempt::Retry { reason, .. }) => return Err(failed(reason)),
        };
        if !matches!(
            response.status(),
            StatusCode::OK | StatusCode::PARTIAL_CONTENT
        ) {
            return Err(failed(format!(
                "TeleMessage answered {}",
                response.status()
            )));
        }
        let mut head = Vec::new();
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| failed(e.without_url().to_string()))?;
            head.extend_from_slice(&chunk);
            if head.len() >= HEAD_LIMIT || header_end(&head).is_some() {
                break;
            }
        }
        head.truncate(HEAD_LIMIT);
        Ok(message_id_of(&head))
    }
}

fn header_end(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes.windows(4).position(|w| w == b"\r\n\r\n");
    crlf.or_else(|| bytes.windows(2).position(|w| w == b"\n\n"))
}

/// The value of a header in a message's header block (unfolded, trimmed).
pub fn header_value(message: &[u8], name: &str) -> Option<String> {
    let block = &message[..header_end(message).unwrap_or(message.len())];
    let text = String::from_utf8_lossy(block);
    let mut found: Option<String> = None;
    let mut in_it = false;
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if in_it && let Some(v) = found.as_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if found.is_some() {
            break;
        }
        in_it = false;
        if let Some((n, v)) = line.split_once(':')
            && n.trim().eq_ignore_ascii_case(name)
        {
            found = Some(v.trim().to_owned());
            in_it = true;
        }
    }
    found
}

/// A message's `Message-ID`: one `<...>` of printable ASCII without spaces.
pub fn message_id_of(message: &[u8]) -> Option<String> {
    let value = header_value(message, "Message-ID")?;
    let start = value.find('<')?;
    let end = start + value[start..].find('>')?;
    let id = &value[start..=end];
    let plain = id.len() > 2 && id.len() <= 998 && id.bytes().all(|b| b.is_ascii_graphic());
    plain.then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_id_is_read_from_the_header_block_only() {
        let m = b"From: a@b\r\nMessage-Id:\r\n <x1@tm.sim>\r\nSubject: s\r\n\r\nMessage-ID: <body@x>\r\n";
        assert_eq!(message_id_of(m).as_deref(), Some("<x1@tm.sim>"));
        assert_eq!(
            message_id_of(b"Subject: s\r\n\r\nMessage-ID: <b@x>\r\n"),
            None
        );
        assert_eq!(message_id_of(b"Message-ID: <a b@x>\r\n\r\n"), None);
        assert_eq!(
            header_value(b"In-Reply-To: <p@x>\n\nbody", "in-reply-to").as_deref(),
            Some("<p@x>")
        );
    }
}
