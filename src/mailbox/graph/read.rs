//! Reading copies back from Microsoft Graph (`verify`). Graph does not keep
//! the MIME message a copy was made from, only the properties and
//! attachments the writer set, so a Graph copy's manifest records a digest
//! of those instead of the SHA-256 of its bytes: the SHA-256 of a canonical
//! JSON form ([`Canonical`]) holding the item id property, the subject, the
//! body's visible text, the sender's and recipients' addresses, the
//! `internetMessageId`, and each attachment's name, content type, length
//! and SHA-256, sorted. The writer computes it from what it sends; `verify`
//! computes it from what Graph returns, so a change to any of those is
//! reported as altered.
//!
//! The body's visible text (markup dropped, whitespace runs made one
//! space) is compared rather than its markup, because Exchange rewrites an
//! HTML body's markup when it stores it; a change to the words is still
//! seen.
//!
//! A copy is read by the immutable id the writer recorded (it survives a
//! move): not found is gone (deleted for good), found in another folder
//! (`parentFolderId`) is moved, which is also where a user's delete puts it
//! (Deleted Items). Every call goes through the mailbox's gate, so reads
//! keep within the per-mailbox budget the writer keeps to, and attachment
//! bytes are held within the writer's memory budget.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::GraphWriter;
use super::client::{Call, with_query};
use super::compose::{BYTES_PROP, ITEM_ID_PROP, Plan, named_property};
use super::error::GraphError;
use super::users::{User, odata_string};
use crate::mailbox::{ReadBack, WriteError};
use crate::types::{ItemId, Mailbox};

/// Pages of a message's attachments read before giving up on a server
/// whose `@odata.nextLink` never ends.
const MAX_ATTACHMENT_PAGES: u32 = 1_000;

/// What `verify` compares of a Graph copy. Serialised as JSON (fields in
/// this order) and hashed.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub(crate) struct Canonical {
    item: String,
    subject: String,
    body: String,
    from: Option<String>,
    to: Vec<String>,
    cc: Vec<String>,
    internet_message_id: Option<String>,
    attachments: Vec<CanonicalAttachment>,
}

#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
struct CanonicalAttachment {
    name: String,
    content_type: String,
    bytes: u64,
    sha256: String,
}

impl CanonicalAttachment {
    fn new(name: &str, content_type: &str, bytes: &[u8]) -> CanonicalAttachment {
        CanonicalAttachment {
            name: name.to_owned(),
            content_type: content_type.to_ascii_lowercase(),
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
        }
    }
}

impl Canonical {
    /// The copy as the writer sends it.
    pub(crate) fn of_plan(plan: &Plan, item: &ItemId) -> Canonical {
        let mut canonical = Canonical::of_fields(&plan.create);
        canonical.item = item.to_string();
        let inline = plan.create["attachments"].as_array().into_iter().flatten();
        for a in inline {
            let bytes = a["contentBytes"]
                .as_str()
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .unwrap_or_default();
            canonical.attachments.push(CanonicalAttachment::new(
                a["name"].as_str().unwrap_or(""),
                a["contentType"].as_str().unwrap_or(""),
                &bytes,
            ));
        }
        for a in plan.separate.iter().chain(&plan.sessions) {
            let mut attachment = CanonicalAttachment::new(&a.name, &a.content_type, &a.bytes);
            if let Some(run) = &a.elided {
                attachment.bytes = run.decoded_len;
                attachment.sha256 = run.sha256.clone();
            }
            canonical.attachments.push(attachment);
        }
        canonical
    }

    /// The message's own properties, as a create request or a GET of the
    /// message has them (attachments and the item id apart).
    fn of_fields(message: &Value) -> Canonical {
        let addresses = |key: &str| -> Vec<String> {
            let list = message[key].as_array().into_iter().flatten();
            list.filter_map(address).collect()
        };
        Canonical {
            item: String::new(),
            subject: message["subject"].as_str().unwrap_or("").to_owned(),
            body: visible_text(
                message["body"]["contentType"].as_str().unwrap_or("text"),
                message["body"]["content"].as_str().unwrap_or(""),
            ),
            from: address(&message["from"]),
            to: addresses("toRecipients"),
            cc: addresses("ccRecipients"),
            internet_message_id: message["internetMessageId"].as_str().map(str::to_owned),
            attachments: Vec::new(),
        }
    }

    /// The SHA-256 (hex) of the canonical JSON, attachments sorted (Graph
    /// lists them in no promised order).
    pub(crate) fn digest(mut self) -> String {
        self.attachments.sort();
        let json = serde_json::to_vec(&self).unwrap_or_default();
        hex::encode(Sha256::digest(json))
    }
}

fn address(recipient: &Value) -> Option<String> {
    let address = recipient["emailAddress"]["address"].as_str()?;
    Some(address.to_lowercase())
}

/// A body's words: an HTML body without its markup, `<head>`, `<style>`
/// and `<script>`; every run of whitespace one space.
fn visible_text(kind: &str, content: &str) -> String {
    let text = if kind.eq_ignore_ascii_case("html") {
        strip_markup(content)
    } else {
        content.to_owned()
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn strip_markup(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let mut out = String::with_capacity(html.len());
    let mut pos = 0;
    while let Some(open) = lower[pos..].find('<').map(|i| pos + i) {
        out.push_str(&html[pos..open]);
        out.push(' ');
        let skipped = ["head", "style", "script"].iter().find_map(|tag| {
            let after = &lower[open + 1..];
            let named = after.starts_with(tag)
                && after[tag.len()..].starts_with(|c: char| c == '>' || c.is_whitespace());
            named.then(|| {
                let close = format!("</{tag}");
                lower[open..].find(&close).map(|i| open + i + close.len())
            })?
        });
        let from = skipped.unwrap_or(open);
        pos = match lower[from..].find('>') {
            Some(i) => from + i + 1,
            None => html.len(),
        };
    }
    out.push_str(&html[pos.min(html.len())..]);
    out
}

/// A location the large-item fallback (IMAP) wrote: `UIDVALIDITY:UID`, or
/// empty when the server gave no UID. Graph ids have no colon.
fn is_fallback_location(location: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    location.is_empty()
        || location
            .split_once(':')
            .is_some_and(|(a, b)| digits(a) && digits(b))
}

#[derive(Deserialize)]
struct AttachmentInfo {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default, rename = "contentType")]
    content_type: Option<String>,
    #[serde(default)]
    size: u64,
}

#[derive(Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    #[serde(default, rename = "@odata.nextLink")]
    next_link: Option<String>,
}

impl GraphWriter {
    /// The digest of a copy written through Graph (see [`Canonical`]);
    /// `None` for one the fallback wrote, which keeps its bytes.
    pub(super) async fn read_copy(
        &self,
        mailbox: &Mailbox,
        location: &str,
        item: &ItemId,
    ) -> Result<ReadBack, WriteError> {
        if is_fallback_location(location) {
            return match &self.fallback {
                Some(fallback) => fallback.read_back(mailbox, location, item).await,
                None => Err(WriteError::Copy(format!(
                    "the recorded location {location:?} is not a Graph message id, and no fallback target is configured to read it from"
                ))),
            };
        }
        let user = self.user(mailbox).await?;
        self.read_message(mailbox, &user, location)
            .await
            .map_err(|e| e.into_write_error(mailbox.as_str()))
    }

    async fn read_message(
        &self,
        mailbox: &Mailbox,
        user: &User,
        id: &str,
    ) -> Result<ReadBack, GraphError> {
        let url = self.api.url(&["users", &user.id, "messages", id]);
        let expand = format!(
            "singleValueExtendedProperties($filter=id eq {} or id eq {})",
            odata_string(&named_property(ITEM_ID_PROP)),
            odata_string(&named_property(BYTES_PROP))
        );
        let select = "subject,body,from,toRecipients,ccRecipients,internetMessageId,parentFolderId";
        let url = with_query(url, &[("$select", select), ("$expand", &expand)]);
        let call = Call::get(url).header("Prefer", "IdType=\"ImmutableId\"");
        let message: Value = match self.api.call(Some(&user.gate), call).await {
            Ok(reply) => reply.json()?,
            Err(e) if e.is_not_found() => return Ok(ReadBack::Gone),
            Err(e) => return Err(e),
        };
        let parent = message["parentFolderId"].as_str().unwrap_or("");
        let archive = self.existing_folder(mailbox, user).await?;
        if archive.as_deref() != Some(parent) {
            return Ok(ReadBack::Moved {
                folder: self.folder_name(user, parent).await,
                location: id.to_owned(),
            });
        }
        let property = |name: &str| {
            let wanted = named_property(name);
            let props = message["singleValueExtendedProperties"].as_array();
            props.into_iter().flatten().find_map(|p| {
                let found = p["id"].as_str()?.eq_ignore_ascii_case(&wanted);
                found.then(|| p["value"].as_str().unwrap_or("").to_owned())
            })
        };
        let mut canonical = Canonical::of_fields(&message);
        canonical.item = property(ITEM_ID_PROP).unwrap_or_default();
        canonical.attachments = self.read_attachments(user, id).await?;
        let bytes = property(BYTES_PROP)
            .and_then(|b| b.parse().ok())
            .unwrap_or(0);
        Ok(ReadBack::Found {
            sha256: canonical.digest(),
            bytes,
            location: id.to_owned(),
        })
    }

    /// Each attachment's bytes (`$value`), one at a time, within the
    /// writer's memory budget.
    async fn read_attachments(
        &self,
        user: &User,
        id: &str,
    ) -> Result<Vec<CanonicalAttachment>, GraphError> {
        let base = self
            .api
            .url(&["users", &user.id, "messages", id, "attachments"]);
        let mut url = with_query(base.clone(), &[("$select", "id,name,contentType,size")]);
        let mut out = Vec::new();
        for _ in 0..MAX_ATTACHMENT_PAGES {
            let call = Call::get(url).header("Prefer", "IdType=\"ImmutableId\"");
            let page: Page<AttachmentInfo> = self.api.call(Some(&user.gate), call).await?.json()?;
            for a in page.value {
                let _memory = self.memory.reserve(a.size).await;
                let mut value = base.clone();
                value
                    .path_segments_mut()
                    .map_err(|()| GraphError::Protocol("the Graph root cannot take a path".into()))?
                    .push(&a.id)
                    .push("$value");
                let reply = self.api.call(Some(&user.gate), Call::get(value)).await?;
                let content_type = a.content_type.as_deref().unwrap_or("");
                out.push(CanonicalAttachment::new(&a.name, content_type, &reply.body));
            }
            match page.next_link {
                None => return Ok(out),
                Some(link) => url = self.next_link(&link)?,
            }
        }
        Err(GraphError::Protocol(format!(
            "message {id} lists attachments over more than {MAX_ATTACHMENT_PAGES} pages"
        )))
    }

    /// A folder's display name for the report; its id if Graph will not say.
    async fn folder_name(&self, user: &User, folder: &str) -> String {
        let url = self.api.url(&["users", &user.id, "mailFolders", folder]);
        let url = with_query(url, &[("$select", "displayName")]);
        let named = match self.api.call(Some(&user.gate), Call::get(url)).await {
            Ok(reply) => reply.json::<Value>().ok(),
            Err(_) => None,
        };
        named
            .and_then(|v| v["displayName"].as_str().map(str::to_owned))
            .unwrap_or_else(|| folder.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_html_body_is_compared_by_its_words() {
        let written = "<p>Hello   <b>world</b></p>";
        let stored = "<html><head><meta charset=\"utf-8\"><style>p{}</style></head>\r\n<body><p>Hello <b>world</b></p></body></html>";
        assert_eq!(visible_text("html", written), visible_text("HTML", stored));
        assert_eq!(visible_text("html", stored), "Hello world");
        assert_ne!(
            visible_text("html", written),
            visible_text("html", "<p>Hello world!</p>")
        );
        assert_eq!(visible_text("text", "a\r\n b "), "a b");
    }

    #[test]
    fn the_digest_changes_with_any_compared_property_but_not_attachment_order() {
        let message = json!({
            "subject": "s", "body": {"contentType": "text", "content": "b"},
            "from": {"emailAddress": {"name": "A", "address": "A@x.com"}},
            "toRecipients": [{"emailAddress": {"address": "b@x.com"}}],
            "internetMessageId": "<m@x>",
        });
        let with = |attachments: &[(&str, &[u8])], subject: &str| {
            let mut m = message.clone();
            m["subject"] = json!(subject);
            let mut c = Canonical::of_fields(&m);
            c.item = "itm_1".into();
            c.attachments = attachments
                .iter()
                .map(|(n, b)| CanonicalAttachment::new(n, "image/png", b))
                .collect();
            c.digest()
        };
        let base = with(&[("a", b"1"), ("b", b"2")], "s");
        assert_eq!(base, with(&[("b", b"2"), ("a", b"1")], "s"));
        assert_ne!(base, with(&[("a", b"1"), ("b", b"3")], "s"));
        assert_ne!(base, with(&[("a", b"1"), ("b", b"2")], "t"));
        assert_eq!(
            Canonical::of_fields(&message).from.as_deref(),
            Some("a@x.com")
        );
    }

    #[test]
    fn imap_locations_of_the_fallback_are_told_from_graph_ids() {
        assert!(is_fallback_location("1712:42"));
        assert!(is_fallback_location(""));
        assert!(!is_fallback_location("AAMkAGI2THVSAAA="));
        assert!(!is_fallback_location("AAMkAG-msg-12"));
    }
}
