//! Turning the TeleMessage RFC 5322 message into the JSON message Graph
//! creates as a received (not draft) item: the MAPI flags and times set at
//! creation, the original addresses, body, `internetMessageId` and trace
//! headers, and the attachments split by how they can travel.

use std::borrow::Cow;

use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use mail_parser::{Address, Message, MessageParser, MimeHeaders, PartType};
use serde_json::{Map, Value, json};

use super::elided::{self, ElidedRun, Skeleton};
use crate::mailbox::{CONNECTOR_HEADER, Copy, ITEM_ID_HEADER};

/// The property set of this tool's named extended properties.
pub(crate) const PROPERTY_SET: &str = "{b8f2c0d4-5e1a-4f7b-9c3d-776563686174}";
/// The item id: the dedupe key searched for after a crash.
pub(crate) const ITEM_ID_PROP: &str = "ItemId";
/// How many attachments the finished copy has; fewer means a write died
/// half-way.
pub(crate) const ATTACHMENT_COUNT_PROP: &str = "AttachmentCount";
/// The byte length of the copy as the other targets count it.
pub(crate) const BYTES_PROP: &str = "Bytes";

/// Graph's cap on a request body (4 MB), with room to spare.
pub(crate) const REQUEST_LIMIT: usize = 4_000_000;
/// Attachments up to this size may travel inside a JSON request.
pub(crate) const INLINE_LIMIT: usize = 3_000_000;
/// The largest attachment Graph accepts (150 MB, through an upload session).
pub(crate) const ATTACHMENT_LIMIT: u64 = 150 * 1024 * 1024;
/// A body longer than this becomes an attachment so the create request
/// keeps room under [`REQUEST_LIMIT`].
const BODY_LIMIT: usize = 2_000_000;
/// `internetMessageHeaders` takes at most this many `x-` headers.
const MAX_HEADERS: usize = 5;
/// Original headers worth a slot first, in order.
const PREFERRED_HEADERS: [&str; 3] = [
    "X-TeleMessage-Type",
    "X-TeleMessage-Recalled-At",
    "X-TeleMessage-Conversation",
];

/// The id of one of this tool's named extended properties.
pub(crate) fn named_property(name: &str) -> String {
    format!("String {PROPERTY_SET} Name {name}")
}

#[derive(Debug, Clone)]
pub(crate) struct Attachment {
    pub name: String,
    pub content_type: String,
    pub content_id: Option<String>,
    pub inline: bool,
    /// The content, or for an attachment left in the spool file (see
    /// `elided.rs`) the name that stands for it.
    pub bytes: Bytes,
    pub elided: Option<ElidedRun>,
}

impl Attachment {
    /// The content's length.
    pub fn len(&self) -> usize {
        match &self.elided {
            Some(run) => usize::try_from(run.decoded_len).unwrap_or(usize::MAX),
            None => self.bytes.len(),
        }
    }

    /// The `fileAttachment` resource, content included.
    pub fn file_attachment(&self) -> Value {
        let mut v = json!({
            "@odata.type": "#microsoft.graph.fileAttachment",
            "name": self.name,
            "contentType": self.content_type,
            "isInline": self.inline,
            "contentBytes": base64::engine::general_purpose::STANDARD.encode(&self.bytes),
        });
        if let Some(cid) = &self.content_id {
            v["contentId"] = json!(cid);
        }
        v
    }

    /// The `attachmentItem` an upload session is created for.
    pub fn attachment_item(&self) -> Value {
        let mut v = json!({
            "attachmentType": "file",
            "name": self.name,
            "size": self.len(),
            "contentType": self.content_type,
            "isInline": self.inline,
        });
        if let Some(cid) = &self.content_id {
            v["contentId"] = json!(cid);
        }
        v
    }
}

/// What one copy becomes in Graph.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The create request, with the attachments that fit inside it.
    pub create: Value,
    /// Attachments small enough for one `POST .../attachments` each.
    pub separate: Vec<Attachment>,
    /// Attachments that need an upload session.
    pub sessions: Vec<Attachment>,
}

/// Why a copy cannot be expressed in Graph at all.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ComposeError {
    #[error("the item content is not an RFC 5322 message")]
    NotAMessage,
    #[error(
        "attachment {name:?} is {size} bytes; Microsoft Graph accepts attachments up to {ATTACHMENT_LIMIT} bytes (150 MB)"
    )]
    TooLarge { name: String, size: u64 },
}

/// Builds the plan for one copy from its RFC 5322 bytes.
pub(crate) fn plan(copy: &Copy<'_>, raw: &[u8]) -> Result<Plan, ComposeError> {
    plan_with(copy, raw, &[])
}

/// Builds the plan; an attachment that decodes to the name of one of
/// `runs` is that run, left in the spool file.
fn plan_with(copy: &Copy<'_>, raw: &[u8], runs: &[ElidedRun]) -> Result<Plan, ComposeError> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(ComposeError::NotAMessage)?;
    let mut attachments = attachments(&message);
    for a in &mut attachments {
        if let Some(i) = (0..runs.len()).find(|&i| a.bytes == elided::marker(i)) {
            a.elided = Some(runs[i].clone());
            a.bytes = Bytes::new();
        }
    }
    let mut fields = fields(copy, &message);
    if body_len(&fields) > BODY_LIMIT {
        attachments.insert(0, body_as_attachment(&mut fields));
    }
    if let Some(big) = attachments
        .iter()
        .find(|a| a.len() as u64 > ATTACHMENT_LIMIT)
    {
        return Err(ComposeError::TooLarge {
            name: big.name.clone(),
            size: big.len() as u64,
        });
    }
    let count = attachments.len();
    fields.insert(
        "singleValueExtendedProperties".into(),
        extended_properties(copy, count),
    );
    let (create, separate, sessions) = split(fields, attachments);
    Ok(Plan {
        create,
        separate,
        sessions,
    })
}

/// Builds the plan from a skeleton (`elided.rs`); `None` unless each run
/// left out stands for exactly one attachment sent through an upload
/// session, and nothing else holds a run's name.
pub(crate) fn plan_elided(
    copy: &Copy<'_>,
    skeleton: &Skeleton,
) -> Result<Option<Plan>, ComposeError> {
    let plan = plan_with(copy, &skeleton.raw, &skeleton.runs)?;
    let mut found = vec![0u32; skeleton.runs.len()];
    let elided = |a: &Attachment| a.elided.as_ref().map(|run| run.offset);
    let in_sessions: Vec<u64> = plan.sessions.iter().filter_map(elided).collect();
    if plan.separate.iter().any(|a| a.elided.is_some()) {
        return Ok(None);
    }
    for (i, run) in skeleton.runs.iter().enumerate() {
        found[i] = in_sessions.iter().filter(|o| **o == run.offset).count() as u32;
    }
    if found.iter().any(|n| *n != 1) {
        return Ok(None);
    }
    let create = plan.create.to_string();
    let separate = plan.separate.iter().map(|a| a.bytes.as_ref());
    let others = std::iter::once(create.as_bytes()).chain(separate);
    let named = |hay: &[u8]| {
        let name = b"wechat-archiver elided run";
        hay.windows(name.len()).any(|w| w == name)
    };
    if others.into_iter().any(named) || plan.sessions.iter().any(|a| named(&a.bytes)) {
        return Ok(None);
    }
    Ok(Some(plan))
}

/// Everything but attachments and extended properties.
fn fields(copy: &Copy<'_>, message: &Message<'_>) -> Map<String, Value> {
    let mut m = Map::new();
    let subject = message.subject().unwrap_or("").to_owned();
    m.insert("subject".into(), json!(subject));
    let (kind, content) = body(message);
    m.insert(
        "body".into(),
        json!({"contentType": kind, "content": content}),
    );
    let from = message
        .from()
        .and_then(|a| recipients(a).into_iter().next())
        .or_else(|| sender_from_item(copy));
    if let Some(from) = from {
        m.insert("from".into(), from.clone());
        m.insert("sender".into(), from);
    }
    m.insert(
        "toRecipients".into(),
        json!(message.to().map(recipients).unwrap_or_default()),
    );
    m.insert(
        "ccRecipients".into(),
        json!(message.cc().map(recipients).unwrap_or_default()),
    );
    if let Some(id) = message.message_id() {
        m.insert("internetMessageId".into(), json!(format!("<{id}>")));
    }
    m.insert(
        "internetMessageHeaders".into(),
        json!(headers(copy, message)),
    );
    m
}

fn body(message: &Message<'_>) -> (&'static str, String) {
    let has_html = message
        .html_part(0)
        .is_some_and(|p| matches!(p.body, PartType::Html(_)));
    if has_html {
        let html = message
            .body_html(0)
            .map(Cow::into_owned)
            .unwrap_or_default();
        ("html", html)
    } else {
        let text = message
            .body_text(0)
            .map(Cow::into_owned)
            .unwrap_or_default();
        ("text", text)
    }
}

fn body_len(fields: &Map<String, Value>) -> usize {
    fields["body"]["content"].as_str().map_or(0, str::len)
}

/// A body too long for the create request travels as a file, and the body
/// says so.
fn body_as_attachment(fields: &mut Map<String, Value>) -> Attachment {
    let kind = fields["body"]["contentType"]
        .as_str()
        .unwrap_or("text")
        .to_owned();
    let content = fields["body"]["content"].as_str().unwrap_or("").to_owned();
    let (name, content_type) = if kind == "html" {
        ("message.html", "text/html; charset=utf-8")
    } else {
        ("message.txt", "text/plain; charset=utf-8")
    };
    let note = format!(
        "The message text ({} bytes) is too long for a Microsoft 365 message body; it is attached unchanged as {name}.",
        content.len()
    );
    fields.insert(
        "body".into(),
        json!({"contentType": "text", "content": note}),
    );
    Attachment {
        name: name.into(),
        content_type: content_type.into(),
        content_id: None,
        inline: false,
        bytes: Bytes::from(content.into_bytes()),
        elided: None,
    }
}

fn recipients(address: &Address<'_>) -> Vec<Value> {
    address
        .iter()
        .filter_map(|a| {
            let addr = a.address()?;
            Some(json!({"emailAddress": {"name": a.name().unwrap_or(addr), "address": addr}}))
        })
        .collect()
}

/// The listing's sender, for a message without a usable `From`; Graph
/// needs an address, so a sender without one is left out.
fn sender_from_item(copy: &Copy<'_>) -> Option<Value> {
    let s = &copy.item.sender;
    let address = s.email.as_deref().filter(|a| !a.is_empty())?;
    let name = if s.name.is_empty() { address } else { &s.name };
    Some(json!({"emailAddress": {"name": name, "address": address}}))
}

/// The trace headers first, then the original's most telling `x-` headers.
fn headers(copy: &Copy<'_>, message: &Message<'_>) -> Vec<Value> {
    let mut out = vec![
        (ITEM_ID_HEADER.to_owned(), copy.item.id.to_string()),
        (CONNECTOR_HEADER.to_owned(), copy.connector.to_owned()),
    ];
    let originals: Vec<(String, String)> = message
        .headers_raw()
        .filter(|(name, _)| name.len() > 2 && name.as_bytes()[..2].eq_ignore_ascii_case(b"x-"))
        .filter(|(name, _)| {
            !name.eq_ignore_ascii_case("X-TeleMessage-Item-Id")
                && !name.eq_ignore_ascii_case(ITEM_ID_HEADER)
                && !name.eq_ignore_ascii_case(CONNECTOR_HEADER)
        })
        .map(|(name, value)| (name.to_owned(), unfold(value)))
        .collect();
    let rank = |name: &str| {
        PREFERRED_HEADERS
            .iter()
            .position(|p| p.eq_ignore_ascii_case(name))
            .unwrap_or(PREFERRED_HEADERS.len())
    };
    let mut ranked: Vec<_> = originals.into_iter().enumerate().collect();
    ranked.sort_by_key(|(i, (name, _))| (rank(name), *i));
    out.extend(ranked.into_iter().map(|(_, h)| h));
    out.truncate(MAX_HEADERS);
    out.into_iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect()
}

fn unfold(value: &str) -> String {
    let joined: String = value
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    joined.chars().take(900).collect()
}

fn system_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `PidTagMessageFlags` = read (not unsent) and the delivery and submit
/// times, which only take effect at creation, plus the dedupe key.
fn extended_properties(copy: &Copy<'_>, attachment_count: usize) -> Value {
    let sent = system_time(copy.item.sent_at);
    json!([
        {"id": "Integer 0x0E07", "value": "1"},
        {"id": "SystemTime 0x0E06", "value": sent},
        {"id": "SystemTime 0x0039", "value": sent},
        {"id": named_property(ITEM_ID_PROP), "value": copy.item.id.to_string()},
        {"id": named_property(ATTACHMENT_COUNT_PROP), "value": attachment_count.to_string()},
        {"id": named_property(BYTES_PROP), "value": copy.len().to_string()},
    ])
}

/// Every non-body part, with a name Outlook can show.
fn attachments(message: &Message<'_>) -> Vec<Attachment> {
    message
        .attachments()
        .enumerate()
        .map(|(i, part)| {
            let (bytes, default_name, default_type) = match &part.body {
                PartType::Message(m) => (
                    m.raw_message().to_vec(),
                    format!("message-{}.eml", i + 1),
                    "message/rfc822",
                ),
                PartType::Text(_) | PartType::Html(_) => (
                    undecoded_text(message, part),
                    format!("attachment-{}.txt", i + 1),
                    "text/plain",
                ),
                PartType::Binary(b) | PartType::InlineBinary(b) => (
                    b.to_vec(),
                    format!("attachment-{}.bin", i + 1),
                    "application/octet-stream",
                ),
                PartType::Multipart(_) => (
                    Vec::new(),
                    format!("attachment-{}.bin", i + 1),
                    "application/octet-stream",
                ),
            };
            let content_type = part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_owned(),
                })
                .unwrap_or_else(|| default_type.to_owned());
            let inline = part.content_disposition().is_some_and(|d| d.is_inline())
                || (part.content_disposition().is_none() && part.content_id().is_some());
            Attachment {
                name: part
                    .attachment_name()
                    .map(str::to_owned)
                    .unwrap_or(default_name),
                content_type,
                content_id: part.content_id().map(str::to_owned),
                inline,
                bytes: Bytes::from(bytes),
                elided: None,
            }
        })
        .collect()
}

/// A text attachment's bytes as sent, only the transfer encoding undone:
/// mail-parser would also convert the charset (and replace bytes that are
/// not valid in it), and an archived file must stay byte-identical.
fn undecoded_text(message: &Message<'_>, part: &mail_parser::MessagePart<'_>) -> Vec<u8> {
    let raw = message.raw_message();
    let start = (part.raw_body_offset() as usize).min(raw.len());
    let end = (part.raw_end_offset() as usize).clamp(start, raw.len());
    let body = &raw[start..end];
    let decoded = match part.encoding {
        mail_parser::Encoding::Base64 => mail_parser::decoders::base64::base64_decode(body),
        mail_parser::Encoding::QuotedPrintable => {
            mail_parser::decoders::quoted_printable::quoted_printable_decode(body)
        }
        mail_parser::Encoding::None => Some(body.to_vec()),
    };
    decoded.unwrap_or_else(|| body.to_vec())
}

/// Fills the create request with attachments in order while it stays
/// under the request cap; the rest go one request each, or through upload
/// sessions when they are too big for a request.
fn split(
    mut fields: Map<String, Value>,
    attachments: Vec<Attachment>,
) -> (Value, Vec<Attachment>, Vec<Attachment>) {
    const ARRAY_OVERHEAD: usize = 32;
    let mut used = Value::Object(fields.clone()).to_string().len() + ARRAY_OVERHEAD;
    let mut inline = Vec::new();
    let mut separate = Vec::new();
    let mut sessions = Vec::new();
    for a in attachments {
        if a.len() > INLINE_LIMIT {
            sessions.push(a);
            continue;
        }
        let value = a.file_attachment();
        let len = value.to_string().len() + 1;
        if used + len <= REQUEST_LIMIT {
            used += len;
            inline.push(value);
        } else if len + ARRAY_OVERHEAD <= REQUEST_LIMIT {
            separate.push(a);
        } else {
            sessions.push(a);
        }
    }
    if !inline.is_empty() {
        fields.insert("attachments".into(), Value::Array(inline));
    }
    (Value::Object(fields), separate, sessions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::Content;
    use crate::telemessage::Item;

    #[test]
    fn text_attachments_keep_their_bytes_whatever_the_charset_or_encoding() {
        let gbk: &[u8] = b"\xc4\xe3\xba\xc3 ok\r\nline 2";
        let mut raw = b"From: a@x.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nbody\r\n--B\r\nContent-Type: text/plain; charset=GBK; name=a.txt\r\nContent-Disposition: attachment; filename=a.txt\r\nContent-Transfer-Encoding: 8bit\r\n\r\n".to_vec();
        raw.extend_from_slice(gbk);
        raw.extend_from_slice(b"\r\n--B\r\nContent-Type: text/plain; name=b.txt\r\nContent-Disposition: attachment; filename=b.txt\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nna=C3=AFve=\r\n end\r\n--B--\r\n");
        let message = MessageParser::default().parse(&raw).unwrap();
        let found = attachments(&message);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].bytes.as_ref(), gbk);
        assert_eq!(found[1].bytes.as_ref(), "naïve end".as_bytes());
    }

    fn item() -> Item {
        serde_json::from_value(json!({
            "id": "itm_1", "platform": "wechat", "type": "recalled",
            "conversation": {"id": "c", "kind": "direct", "title": ""},
            "sent_at": "2026-11-22T08:15:00.250Z", "archived_at": "2026-11-22T09:00:00Z",
            "sender": {"name": "", "mobile": null, "email": null, "wechat_id": "w"},
            "participants": [], "size": 1, "sha256": "00"
        }))
        .unwrap()
    }

    #[test]
    fn five_x_headers_at_most_trace_headers_and_the_telling_ones_first() {
        let raw = b"Message-ID: <m1@tm>\r\nFrom: <a@b.c>\r\nX-TeleMessage-Item-Id: itm_1\r\nX-TeleMessage-Platform: wechat\r\nX-TeleMessage-Archived-At: t\r\nX-TeleMessage-Conversation: c\r\nX-TeleMessage-Recalled-At: r\r\nX-TeleMessage-Type: recalled\r\nSubject: s\r\n\r\nbody\r\n";
        let item = item();
        let content = Content::Memory(Bytes::from_static(raw));
        let copy = Copy {
            item: &item,
            connector: "conn",
            content: &content,
            in_reply_to: None,
        };
        let plan = plan(&copy, raw).unwrap();
        let names: Vec<&str> = plan.create["internetMessageHeaders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                ITEM_ID_HEADER,
                CONNECTOR_HEADER,
                "X-TeleMessage-Type",
                "X-TeleMessage-Recalled-At",
                "X-TeleMessage-Conversation"
            ]
        );
        assert_eq!(plan.create["internetMessageId"], "<m1@tm>");
        let props = plan.create["singleValueExtendedProperties"]
            .as_array()
            .unwrap();
        assert!(
            props
                .contains(&json!({"id": "SystemTime 0x0039", "value": "2026-11-22T08:15:00.250Z"}))
        );
        assert!(
            props.contains(&json!({"id": named_property(ATTACHMENT_COUNT_PROP), "value": "0"}))
        );
    }

    #[test]
    fn without_a_from_header_or_sender_address_there_is_no_from() {
        let raw = b"Subject: s\r\n\r\nbody\r\n";
        let item = item();
        let content = Content::Memory(Bytes::from_static(raw));
        let copy = Copy {
            item: &item,
            connector: "conn",
            content: &content,
            in_reply_to: None,
        };
        let plan = plan(&copy, raw).unwrap();
        assert!(plan.create.get("from").is_none());
        assert!(plan.create.get("internetMessageId").is_none());
    }

    #[test]
    fn garbage_is_not_a_message() {
        let item = item();
        let content = Content::Memory(Bytes::new());
        let copy = Copy {
            item: &item,
            connector: "conn",
            content: &content,
            in_reply_to: None,
        };
        assert!(matches!(plan(&copy, b""), Err(ComposeError::NotAMessage)));
    }
}
