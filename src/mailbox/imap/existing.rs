//! The copies an IMAP archive folder already holds, for a ledger that does
//! not know them (see `sync::adopt`): the folder's mark is its
//! `UIDVALIDITY`, `UIDNEXT` and `MESSAGES` from one `STATUS` (any APPEND
//! moves `UIDNEXT`), and its copies come from `UID FETCH` of the two trace
//! headers over the whole folder, in ranges of [`FETCH_RANGE`] UIDs so a
//! folder of a million copies is never one answer in memory.

use super::conn::{Alone, ConnError};
use super::pool::{Folder, Session};
use super::proto::{self, Status, Value};
use super::{ImapWriter, lost_to_copy, selected_validity};
use crate::mailbox::existing::{self, CopyKey, FolderCopies, Found};
use crate::mailbox::{CONNECTOR_HEADER, ITEM_ID_HEADER, WriteError, Written};
use crate::types::Mailbox;

/// UIDs asked for in one `UID FETCH`.
const FETCH_RANGE: u32 = 5_000;

/// A folder's `STATUS` figures.
#[derive(Debug, Default, PartialEq, Eq)]
struct FolderStatus {
    validity: u32,
    next: u32,
    messages: u32,
}

impl ImapWriter {
    /// The archive folder's `UIDVALIDITY`, `UIDNEXT` and `MESSAGES`, or
    /// `absent` when it does not exist yet.
    pub(super) async fn mark(&self, mailbox: &Mailbox) -> Result<Option<String>, WriteError> {
        let (session, _in_use) = self.session(mailbox).await?;
        let status = {
            let alone = session.conn.alone().await;
            self.folder_status(&alone, &session).await
        };
        let status = status.map_err(|e| lost_to_copy(mailbox, "reading the folder's STATUS", e))?;
        Ok(Some(match status {
            Some(s) => existing::mark_of(&[
                &s.validity.to_string(),
                &s.next.to_string(),
                &s.messages.to_string(),
            ]),
            None => existing::mark_of(&["absent"]),
        }))
    }

    /// Every copy in the archive folder, by item id, with the connector
    /// named in its trace header; the lowest UID of an item wins.
    pub(super) async fn copies_in(&self, mailbox: &Mailbox) -> Result<FolderCopies, WriteError> {
        let (session, _in_use) = self.session(mailbox).await?;
        let copies = {
            let alone = session.conn.alone().await;
            self.list_copies(&alone, &session).await
        };
        copies.map_err(|e| lost_to_copy(mailbox, "listing the archive folder's copies", e))
    }

    async fn list_copies(
        &self,
        alone: &Alone<'_>,
        session: &Session,
    ) -> Result<FolderCopies, ConnError> {
        let mut copies = FolderCopies::new(CopyKey::ItemId);
        let Some(status) = self.folder_status(alone, session).await? else {
            return Ok(copies);
        };
        let Some(validity) = self.select(alone, session).await? else {
            return Ok(copies);
        };
        let mut hits = Vec::new();
        let mut low = 1u32;
        while low < status.next.max(2) {
            let high = low.saturating_add(FETCH_RANGE - 1);
            let fetched = alone
                .run(&format!(
                    "UID FETCH {low}:{high} (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS ({ITEM_ID_HEADER} {CONNECTOR_HEADER})])"
                ))
                .await?;
            if fetched.status.status != Status::Ok {
                return Err(ConnError::Lost(format!(
                    "the server refused to list the folder's copies: {}",
                    super::said(&fetched.status)
                )));
            }
            hits.extend(
                fetched
                    .untagged
                    .iter()
                    .filter_map(|u| proto::fetch_items(u))
                    .filter_map(|items| traced_copy(&items)),
            );
            if high == u32::MAX {
                break;
            }
            low = high + 1;
        }
        hits.sort_by_key(|h| h.uid);
        for hit in hits {
            let found = Found {
                written: Written {
                    location: format!("{validity}:{}", hit.uid),
                    bytes: hit.size,
                },
                connector: hit.connector,
            };
            copies.insert(hit.item, found);
        }
        Ok(copies)
    }

    /// `STATUS` of the archive folder; `None` if it does not exist.
    async fn folder_status(
        &self,
        alone: &Alone<'_>,
        session: &Session,
    ) -> Result<Option<FolderStatus>, ConnError> {
        let reply = alone
            .run(&format!(
                "STATUS {} (UIDVALIDITY UIDNEXT MESSAGES)",
                session.folder_arg
            ))
            .await?;
        if reply.status.status != Status::Ok {
            self.missing_folder(&reply.status)?;
            return Ok(None);
        }
        reply
            .untagged
            .iter()
            .find_map(|u| parse_status_data(u))
            .map(Some)
            .ok_or_else(|| ConnError::Lost("the server's STATUS answer has no figures".into()))
    }

    /// Selects the folder unless the session already has it selected; its
    /// UIDVALIDITY, or `None` if it does not exist.
    async fn select(&self, alone: &Alone<'_>, session: &Session) -> Result<Option<u32>, ConnError> {
        if let Some(Folder::Selected(validity)) = session.folder.get() {
            return Ok(Some(*validity));
        }
        let selected = alone.run(&format!("SELECT {}", session.folder_arg)).await?;
        let Some(validity) = selected_validity(&selected) else {
            self.missing_folder(&selected.status)?;
            return Ok(None);
        };
        let _ = session.folder.set(Folder::Selected(validity));
        Ok(Some(validity))
    }
}

/// One copy a FETCH answer shows.
struct Hit {
    uid: u32,
    size: u64,
    item: String,
    connector: Option<String>,
}

/// The UID, size and trace headers of one FETCH answer; `None` for a
/// message without our item-id header.
fn traced_copy(items: &[Value]) -> Option<Hit> {
    let mut uid = None;
    let mut size = 0;
    let mut trace = (None, None);
    for pair in items.chunks(2) {
        let [name, value] = pair else { continue };
        let name = name.as_atom()?.to_ascii_uppercase();
        match (name.as_str(), value) {
            ("UID", Value::Atom(v)) => uid = v.parse().ok(),
            ("RFC822.SIZE", Value::Atom(v)) => size = v.parse().unwrap_or(0),
            (n, Value::Bytes(header)) if n.starts_with("BODY[") => {
                trace = existing::trace_of(header)
            }
            _ => {}
        }
    }
    let (item, connector) = trace;
    Some(Hit {
        uid: uid?,
        size,
        item: item.filter(|i| !i.is_empty())?,
        connector,
    })
}

/// The figures of an untagged `STATUS "folder" (UIDVALIDITY n UIDNEXT n
/// MESSAGES n)`.
fn parse_status_data(untagged: &[u8]) -> Option<FolderStatus> {
    let values = proto::values(untagged)?;
    let [Value::Atom(word), _name, Value::List(figures)] = values.as_slice() else {
        return None;
    };
    if !word.eq_ignore_ascii_case("STATUS") {
        return None;
    }
    let mut status = FolderStatus::default();
    for pair in figures.chunks(2) {
        let [Value::Atom(name), Value::Atom(value)] = pair else {
            continue;
        };
        let value = value.parse().ok()?;
        match name.to_ascii_uppercase().as_str() {
            "UIDVALIDITY" => status.validity = value,
            "UIDNEXT" => status.next = value,
            "MESSAGES" => status.messages = value,
            _ => {}
        }
    }
    Some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_figures_are_read_whatever_their_order() {
        let s = parse_status_data(b"STATUS \"WeChat\" (UIDNEXT 12 MESSAGES 11 UIDVALIDITY 7)");
        assert_eq!(
            s,
            Some(FolderStatus {
                validity: 7,
                next: 12,
                messages: 11
            })
        );
        assert_eq!(parse_status_data(b"FLAGS (\\Seen)"), None);
    }

    #[test]
    fn a_fetched_copy_gives_its_item_and_connector_and_others_are_skipped() {
        let ours = proto::fetch_items(
            b"3 FETCH (UID 9 RFC822.SIZE 120 BODY[HEADER.FIELDS (X-WeChat-Archiver-Item-Id X-WeChat-Archiver-Connector)] {71}\r\nX-WeChat-Archiver-Item-Id: itm_A\r\nX-WeChat-Archiver-Connector: prod\r\n\r\n)",
        )
        .unwrap();
        let hit = traced_copy(&ours).unwrap();
        assert_eq!((hit.uid, hit.size, hit.item.as_str()), (9, 120, "itm_A"));
        assert_eq!(hit.connector.as_deref(), Some("prod"));
        let other = proto::fetch_items(
            b"4 FETCH (UID 10 RFC822.SIZE 5 BODY[HEADER.FIELDS (X)] {2}\r\n\r\n)",
        )
        .unwrap();
        assert!(traced_copy(&other).is_none());
    }
}
