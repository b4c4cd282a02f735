//! An e-mail's item id (`telemessage-email.md` §1, "Identity and exactly
//! once"): the original's `Message-ID`, or `sha256:<hex>` without one. Two
//! messages that share a `Message-ID` but differ in their bytes are both
//! kept, the second under the id plus a hash suffix; which id each content
//! got is remembered in the ledger.

use sha2::{Digest, Sha256};

use crate::ledger::{Ledger, LedgerError};
use crate::types::ItemId;

/// Transport fields each relay adds at the top; set aside when comparing.
const TRACE_FIELDS: [&str; 4] = ["return-path", "received", "delivered-to", "x-original-to"];

/// Longest `Message-ID` kept as the id itself; longer ones are hashed.
const MAX_ID_TEXT: usize = 100;

/// The digest that decides whether two deliveries are the same message:
/// SHA-256 of the bytes after the leading trace fields, with CRLF read as
/// LF (a batch export and SMTP end lines differently).
pub fn content_digest(original: &[u8]) -> String {
    let body = strip_trace_fields(original);
    let mut hash = Sha256::new();
    let mut rest = body;
    while let Some(pos) = memchr::memchr(b'\r', rest) {
        hash.update(&rest[..pos]);
        if rest.get(pos + 1) != Some(&b'\n') {
            hash.update(b"\r");
        }
        rest = &rest[pos + 1..];
    }
    hash.update(rest);
    hex::encode(hash.finalize())
}

/// The bytes after the leading `Return-Path`, `Received`, `Delivered-To`
/// and `X-Original-To` fields (with their continuation lines).
pub fn strip_trace_fields(raw: &[u8]) -> &[u8] {
    let mut at = 0;
    let mut in_trace = false;
    while at < raw.len() {
        let end = memchr::memchr(b'\n', &raw[at..]).map_or(raw.len(), |p| at + p + 1);
        let line = &raw[at..end];
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if continuation && in_trace {
            at = end;
            continue;
        }
        let name = line.iter().position(|&b| b == b':').map(|c| {
            String::from_utf8_lossy(&line[..c])
                .trim()
                .to_ascii_lowercase()
        });
        match name {
            Some(n) if !continuation && TRACE_FIELDS.contains(&n.as_str()) => {
                in_trace = true;
                at = end;
            }
            _ => break,
        }
    }
    &raw[at..]
}

/// The id for a `Message-ID` (angle brackets removed): the text itself
/// when it is short printable ASCII (`%` and `/` escaped), else a hash.
fn id_text(message_id: &str) -> String {
    let bare = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let printable = bare.bytes().all(|b| (0x21..0x7f).contains(&b));
    if printable && !bare.is_empty() && bare.len() <= MAX_ID_TEXT {
        let escaped = bare.replace('%', "%25").replace('/', "%2F");
        if escaped.len() <= MAX_ID_TEXT + 20 {
            return format!("<{escaped}>");
        }
    }
    format!(
        "mid-sha256:{}",
        hex::encode(Sha256::digest(bare.as_bytes()))
    )
}

/// An id and whether it was a collision (same `Message-ID`, other bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub id: ItemId,
    pub collision: bool,
}

/// The item id of a message with this `Message-ID` (if any) and content
/// digest, recorded in the ledger's open batch (made durable with the
/// message's copies).
pub fn identify(
    ledger: &Ledger,
    connector: &str,
    message_id: Option<&str>,
    digest: &str,
) -> Result<Identity, LedgerError> {
    let Some(message_id) = message_id else {
        return Ok(Identity {
            id: parse_id(format!("sha256:{digest}")),
            collision: false,
        });
    };
    let base = id_text(message_id);
    let collided = format!("{base}#{}", &digest[..16]);
    let known = ledger.email_identity(connector, &base, digest, &collided)?;
    Ok(Identity {
        id: parse_id(known.item_id),
        collision: known.collision,
    })
}

/// Every id built here is printable ASCII without `/` and short enough.
fn parse_id(text: String) -> ItemId {
    ItemId::parse(&text).unwrap_or_else(|_| {
        ItemId::parse(&format!(
            "mid-sha256:{}",
            hex::encode(Sha256::digest(text.as_bytes()))
        ))
        .expect("a hash id is valid")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relays_trace_fields_and_line_ends_do_not_change_the_digest() {
        let a = b"Received: from a\r\n\tby b\r\nReturn-Path: <x@y>\r\nFrom: a@b\r\n\r\nhi\r\n";
        let b = b"Delivered-To: z@y\nFrom: a@b\n\nhi\n";
        assert_eq!(content_digest(a), content_digest(b));
        assert_ne!(content_digest(a), content_digest(b"From: a@b\n\nho\n"));
    }

    #[test]
    fn a_colliding_message_id_keeps_both_and_a_repeat_gets_its_id_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        let ledger = Ledger::open(&path).unwrap();
        let first = identify(&ledger, "c", Some("<m/1@x>"), &"a".repeat(64)).unwrap();
        assert_eq!(first.id.as_str(), "<m%2F1@x>");
        let other = identify(&ledger, "c", Some("<m/1@x>"), &"b".repeat(64)).unwrap();
        assert!(other.collision);
        assert_eq!(other.id.as_str(), format!("<m%2F1@x>#{}", "b".repeat(16)));
        drop(ledger);
        let ledger = Ledger::open(&path).unwrap();
        let again = identify(&ledger, "c", Some("<m/1@x>"), &"a".repeat(64)).unwrap();
        assert_eq!(again, first);
        let other_again = identify(&ledger, "c", Some("<m/1@x>"), &"b".repeat(64)).unwrap();
        assert_eq!(other_again.id, other.id);
        let none = identify(&ledger, "c", None, &"c".repeat(64)).unwrap();
        assert_eq!(none.id.as_str(), format!("sha256:{}", "c".repeat(64)));
    }
}
