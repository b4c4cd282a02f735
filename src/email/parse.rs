//! Reading one forwarded TeleMessage e-mail (`telemessage-email.md` §1)
//! with `mail-parser`: the original message (unwrapped from a journal
//! report), its `Message-ID` and `Date`, its type, and every participant
//! with the mobile number found in their display name.

use std::ops::Range;

use chrono::{DateTime, Utc};
use mail_parser::{Address, Encoding, HeaderValue, Message, MessageParser, PartType};

use crate::mapping;
use crate::telemessage::Participant;

/// Why a message cannot be archived as a message (it is quarantined).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the message is empty")]
    Empty,
    #[error("the data is not an e-mail message (no header fields)")]
    NotAMessage,
}

/// What the archive keeps of one forwarded message.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// Where the original message lies in the received bytes (all of them,
    /// unless it came wrapped in a journal report), if it is a plain slice.
    pub original: Original,
    pub message_id: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub subject: String,
    /// The `X-TeleMessage-*` type, when a header gives one.
    pub kind: Option<String>,
    pub platform: Option<String>,
    /// `From` first, then `Sender`, `To`, `Cc` and the journal envelope's
    /// recipients, each once.
    pub participants: Vec<Participant>,
    pub journal_wrapped: bool,
}

/// The original message's bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Original {
    /// A range of the received bytes.
    Slice(Range<usize>),
    /// Decoded from a transfer encoding (a base64 `message/rfc822` part).
    Decoded(Vec<u8>),
}

impl Original {
    /// The original's bytes, given the received bytes.
    pub fn bytes<'a>(&'a self, received: &'a [u8]) -> &'a [u8] {
        match self {
            Original::Slice(range) => &received[range.clone()],
            Original::Decoded(bytes) => bytes,
        }
    }
}

/// Parses a received message.
pub fn parse(raw: &[u8]) -> Result<Parsed, ParseError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let message = MessageParser::default()
        .parse(raw)
        .filter(|m| !m.headers().is_empty() && has_header_block(raw))
        .ok_or(ParseError::NotAMessage)?;
    match journal_original(&message, raw) {
        Some((original, envelope)) => {
            let bytes = original.bytes(raw).to_vec();
            let inner = MessageParser::default()
                .parse(&bytes)
                .filter(|m| !m.headers().is_empty())
                .ok_or(ParseError::NotAMessage)?;
            let mut parsed = describe(&inner, original);
            parsed.journal_wrapped = true;
            for party in envelope {
                push_party(&mut parsed.participants, party);
            }
            Ok(parsed)
        }
        None => Ok(describe(&message, Original::Slice(0..raw.len()))),
    }
}

/// Whether the bytes start with a header field (`Name: value`), which
/// `mail-parser` does not insist on.
fn has_header_block(raw: &[u8]) -> bool {
    let first = raw.split(|&b| b == b'\n').next().unwrap_or_default();
    match first.iter().position(|&b| b == b':') {
        Some(colon) if colon > 0 => first[..colon]
            .iter()
            .all(|&b| b.is_ascii_graphic() && b != b':'),
        _ => false,
    }
}

fn describe(message: &Message<'_>, original: Original) -> Parsed {
    let mut participants = Vec::new();
    for address in [message.from(), message.sender(), message.to(), message.cc()]
        .into_iter()
        .flatten()
    {
        for party in parties(address) {
            push_party(&mut participants, party);
        }
    }
    Parsed {
        original,
        message_id: message
            .message_id()
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_owned),
        sent_at: message
            .date()
            .and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0)),
        subject: message.subject().unwrap_or_default().to_owned(),
        kind: telemessage_header(message, &["type", "message-type", "item-type"]),
        platform: telemessage_header(message, &["platform", "network", "source"]),
        participants,
        journal_wrapped: false,
    }
}

/// The value of the first `X-TeleMessage-<suffix>` header, lowercase.
fn telemessage_header(message: &Message<'_>, suffixes: &[&str]) -> Option<String> {
    message.headers().iter().find_map(|h| {
        let name = h.name().to_ascii_lowercase();
        let suffix = name.strip_prefix("x-telemessage-")?;
        if !suffixes.contains(&suffix) {
            return None;
        }
        let value = match &h.value {
            HeaderValue::Text(t) => t.trim().to_ascii_lowercase(),
            _ => return None,
        };
        (!value.is_empty() && value.len() <= 64 && value.bytes().all(|b| b.is_ascii_graphic()))
            .then_some(value)
    })
}

fn push_party(list: &mut Vec<Participant>, party: Participant) {
    let same = |p: &Participant| {
        p.email.as_deref().map(str::to_lowercase) == party.email.as_deref().map(str::to_lowercase)
            && p.mobile == party.mobile
    };
    if !list.iter().any(same) {
        list.push(party);
    }
}

fn parties(address: &Address<'_>) -> Vec<Participant> {
    address
        .iter()
        .map(|a| participant(a.name().unwrap_or_default(), a.address()))
        .collect()
}

/// A participant from a display name and an address: a mobile number in
/// the name (`"Li Wei +8613800138000" <li.wei@contoso.com>`) is taken out
/// of it.
pub fn participant(display: &str, address: Option<&str>) -> Participant {
    let (name, mobile) = split_mobile(display);
    Participant {
        name,
        mobile,
        email: address
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned),
        wechat_id: None,
    }
}

/// Splits a display name into the name and the E.164 number written in
/// it (`+8613800138000`, `+86 138 0013 8000`, `8613800138000`).
pub fn split_mobile(display: &str) -> (String, Option<String>) {
    let chars: Vec<char> = display.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '+' || chars[i].is_ascii_digit() {
            let start = i;
            let mut end = i;
            let mut digits = 0;
            let mut j = i + usize::from(chars[i] == '+');
            while j < chars.len() && (chars[j].is_ascii_digit() || " -.()".contains(chars[j])) {
                if chars[j].is_ascii_digit() {
                    digits += 1;
                    end = j + 1;
                }
                j += 1;
            }
            let candidate: String = chars[start..end].iter().collect();
            if (7..=15).contains(&digits)
                && let Some(number) = as_international(&candidate)
            {
                let rest: String = chars[..start].iter().chain(&chars[end..]).collect();
                let name = rest.split_whitespace().collect::<Vec<_>>().join(" ");
                return (name, Some(number));
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    (display.trim().to_owned(), None)
}

/// A number in international form, with or without its `+`.
fn as_international(candidate: &str) -> Option<String> {
    let text = if candidate.starts_with('+') {
        candidate.to_owned()
    } else {
        format!("+{candidate}")
    };
    mapping::normalise(&text, None)
        .ok()
        .map(|n| n.as_str().to_owned())
}

/// A journal report's original message and its envelope's parties: the
/// report carries exactly one `message/rfc822` part and an envelope (an
/// `X-MS-Journal-Report` header, or a text part of `Sender:` /
/// `Recipient:` / `To:` lines).
fn journal_original(message: &Message<'_>, raw: &[u8]) -> Option<(Original, Vec<Participant>)> {
    let nested: Vec<_> = message
        .parts
        .iter()
        .filter(|p| matches!(p.body, PartType::Message(_)))
        .collect();
    let [part] = nested.as_slice() else {
        return None;
    };
    let envelope = envelope_parties(message);
    let flagged = message.header_raw("X-MS-Journal-Report").is_some();
    if !flagged && envelope.is_empty() {
        return None;
    }
    let PartType::Message(inner) = &part.body else {
        return None;
    };
    let original = match part.encoding {
        Encoding::None => {
            let range = part.offset_body as usize..part.offset_end as usize;
            raw.get(range.clone())?;
            Original::Slice(range)
        }
        _ => Original::Decoded(inner.raw_message().to_vec()),
    };
    Some((original, envelope))
}

/// The parties named by the envelope text of a journal report.
fn envelope_parties(message: &Message<'_>) -> Vec<Participant> {
    let mut parties = Vec::new();
    for part in &message.parts {
        let PartType::Text(text) = &part.body else {
            continue;
        };
        for line in text.lines() {
            let Some((field, value)) = line.split_once(':') else {
                continue;
            };
            let field = field.trim().to_ascii_lowercase();
            if !matches!(field.as_str(), "sender" | "recipient" | "to" | "cc" | "bcc") {
                continue;
            }
            for piece in value.split([',', ';']) {
                let piece = piece.trim();
                if let Some(address) = envelope_address(piece) {
                    push_party(&mut parties, participant("", Some(&address)));
                }
            }
        }
    }
    parties
}

/// The address in `a@b`, `<a@b>` or `Name <a@b>`.
fn envelope_address(piece: &str) -> Option<String> {
    let inner = match (piece.rfind('<'), piece.rfind('>')) {
        (Some(open), Some(close)) if open < close => &piece[open + 1..close],
        _ => piece,
    };
    let inner = inner.trim();
    (inner.contains('@') && !inner.contains(char::is_whitespace)).then(|| inner.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_in_any_common_form_is_taken_from_the_display_name() {
        for display in [
            "Li Wei +8613800138000",
            "Li Wei +86 138 0013 8000",
            "Li Wei 8613800138000",
            "+86-138-0013-8000 Li Wei",
        ] {
            let (name, mobile) = split_mobile(display);
            assert_eq!(name, "Li Wei", "{display}");
            assert_eq!(mobile.as_deref(), Some("+8613800138000"), "{display}");
        }
        assert_eq!(split_mobile("Room 101"), ("Room 101".to_owned(), None));
    }

    #[test]
    fn participants_come_from_from_sender_to_and_cc() {
        let raw = b"From: \"Li Wei +8613800138000\" <li.wei@contoso.com>\r\n\
To: \"Zhang San +8613900139000\" <zs@example.cn>, other@example.cn\r\n\
Cc: cc@contoso.com\r\nMessage-ID: <m1@tm>\r\nDate: Sun, 22 Nov 2026 08:15:00 +0000\r\n\
X-TeleMessage-Type: call\r\nSubject: hi\r\n\r\nbody\r\n";
        let p = parse(raw).unwrap();
        assert_eq!(p.message_id.as_deref(), Some("m1@tm"));
        assert_eq!(p.kind.as_deref(), Some("call"));
        assert_eq!(p.sent_at.unwrap().to_rfc3339(), "2026-11-22T08:15:00+00:00");
        let mobiles: Vec<_> = p.participants.iter().map(|p| p.mobile.clone()).collect();
        assert_eq!(
            mobiles,
            [
                Some("+8613800138000".into()),
                Some("+8613900139000".into()),
                None,
                None
            ]
        );
        assert_eq!(p.original, Original::Slice(0..raw.len()));
    }

    #[test]
    fn a_journal_report_is_unwrapped_to_the_original_bytes() {
        let original = "From: \"Li Wei +8613800138000\" <li.wei@contoso.com>\r\nTo: x@example.cn\r\n\
Message-ID: <orig@tm>\r\nSubject: inner\r\n\r\nhello\r\n";
        let raw = format!(
            "From: journal@contoso.com\r\nTo: archive@contoso.com\r\nMessage-ID: <envelope@x>\r\n\
X-MS-Journal-Report:\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nSender: li.wei@contoso.com\r\nRecipient: wang@contoso.com\r\n\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\n{original}\r\n--b--\r\n"
        );
        let p = parse(raw.as_bytes()).unwrap();
        assert!(p.journal_wrapped);
        assert_eq!(p.message_id.as_deref(), Some("orig@tm"));
        let bytes = p.original.bytes(raw.as_bytes());
        assert!(original.as_bytes().starts_with(bytes) || bytes.starts_with(original.as_bytes()));
        assert!(String::from_utf8_lossy(bytes).contains("hello"));
        let emails: Vec<_> = p
            .participants
            .iter()
            .filter_map(|p| p.email.clone())
            .collect();
        assert!(
            emails.contains(&"wang@contoso.com".to_owned()),
            "{emails:?}"
        );
    }

    #[test]
    fn garbage_is_not_a_message() {
        assert_eq!(parse(b"   \r\n"), Err(ParseError::Empty));
        assert_eq!(parse(b"\x00\x01\x02 garbage"), Err(ParseError::NotAMessage));
    }
}
