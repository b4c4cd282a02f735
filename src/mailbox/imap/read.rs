//! Reading copies back over IMAP (`verify`). A copy is found by the
//! `UIDVALIDITY:UID` the writer recorded (`UID FETCH uid BODY.PEEK[]`,
//! which leaves its `\Seen` flag alone); when that UID is no longer there
//! or the folder's UIDVALIDITY changed (the folder was rebuilt), by the
//! item-id trace header (`UID SEARCH HEADER`). A copy in neither place is
//! looked for in the mailbox's other folders, to tell a copy a user moved
//! from one deleted.
//!
//! Each mailbox is read on its one session of the writer's pool, so the
//! pool's bound on connections holds; mailboxes are read in parallel. The
//! commands of one read run alone on the connection, because a SEARCH or
//! FETCH answer must not mix with another's.

use super::conn::{Alone, ConnError};
use super::pool::{Folder, Session};
use super::proto::{self, Status, Value};
use super::{ImapWriter, exact_hit, lost_to_copy, selected_validity};
use crate::mailbox::readback::ReadBack;
use crate::mailbox::{ITEM_ID_HEADER, WriteError};
use crate::types::{ItemId, Mailbox};

/// The location the writer records: `UIDVALIDITY:UID`.
fn parse_location(location: &str) -> Option<(u32, u32)> {
    let (validity, uid) = location.split_once(':')?;
    Some((validity.parse().ok()?, uid.parse().ok()?))
}

impl ImapWriter {
    pub(super) async fn read_copy(
        &self,
        mailbox: &Mailbox,
        location: &str,
        item: &ItemId,
    ) -> Result<ReadBack, WriteError> {
        let (session, _in_use) = self.session(mailbox).await?;
        let alone = session.conn.alone().await;
        self.read_in(&session, &alone, location, item)
            .await
            .map_err(|e| lost_to_copy(mailbox, "reading the copy back failed", e))
    }

    async fn read_in(
        &self,
        session: &Session,
        alone: &Alone<'_>,
        location: &str,
        item: &ItemId,
    ) -> Result<ReadBack, ConnError> {
        let Some(validity) = self.select_archive(session, alone).await? else {
            return self.look_elsewhere(session, alone, item).await;
        };
        if let Some((recorded, uid)) = parse_location(location)
            && recorded == validity
            && let Some(found) = fetch_whole(alone, validity, uid).await?
        {
            return Ok(found);
        }
        if let Some(uid) = search_header(alone, item).await?
            && let Some(found) = fetch_whole(alone, validity, uid).await?
        {
            return Ok(found);
        }
        self.look_elsewhere(session, alone, item).await
    }

    /// Selects the archive folder (once per session: the reads that follow
    /// find it selected) and returns its UIDVALIDITY; `None` when the
    /// folder is not there. Unlike a write, a read never creates it.
    async fn select_archive(
        &self,
        session: &Session,
        alone: &Alone<'_>,
    ) -> Result<Option<u32>, ConnError> {
        if let Some(Folder::Selected(validity)) = session.folder.get() {
            return Ok(Some(*validity));
        }
        let selected = alone.run(&format!("SELECT {}", session.folder_arg)).await?;
        match selected_validity(&selected) {
            Some(validity) => {
                let _ = session.folder.set(Folder::Selected(validity));
                Ok(Some(validity))
            }
            None => {
                self.missing_folder(&selected.status)?;
                Ok(None)
            }
        }
    }

    /// Looks for the item's copy in every other folder of the mailbox,
    /// read-only (`EXAMINE`); then selects the archive folder again for
    /// the reads that follow.
    async fn look_elsewhere(
        &self,
        session: &Session,
        alone: &Alone<'_>,
        item: &ItemId,
    ) -> Result<ReadBack, ConnError> {
        let listed = alone.run("LIST \"\" \"*\"").await?;
        let mut found = ReadBack::Gone;
        for name in listed.untagged.iter().filter_map(|u| listed_folder(u)) {
            let Ok(arg) = proto::quote(&name) else {
                continue;
            };
            if arg == session.folder_arg {
                continue;
            }
            let examined = alone.run(&format!("EXAMINE {arg}")).await?;
            let Some(validity) = selected_validity(&examined) else {
                continue;
            };
            if let Some(uid) = search_header(alone, item).await? {
                found = ReadBack::Moved {
                    folder: crate::text::escape_control(&name).into_owned(),
                    location: format!("{validity}:{uid}"),
                };
                break;
            }
        }
        if let Some(Folder::Selected(_)) = session.folder.get() {
            let again = alone.run(&format!("SELECT {}", session.folder_arg)).await?;
            if again.status.status != Status::Ok {
                return Err(ConnError::Lost(format!(
                    "cannot select the archive folder again: {}",
                    again.status.describe()
                )));
            }
        }
        Ok(found)
    }
}

/// The lowest UID in the selected folder whose item-id header is exactly
/// the item's id (the header search matches substrings, so each hit's
/// header is compared).
async fn search_header(alone: &Alone<'_>, item: &ItemId) -> Result<Option<u32>, ConnError> {
    let id = proto::quote(item.as_str()).map_err(ConnError::Lost)?;
    let searched = alone
        .run(&format!("UID SEARCH HEADER {ITEM_ID_HEADER} {id}"))
        .await?;
    let uids: Vec<String> = searched
        .untagged
        .iter()
        .filter_map(|u| proto::search_results(u))
        .flatten()
        .map(|uid| uid.to_string())
        .collect();
    if uids.is_empty() {
        return Ok(None);
    }
    let fetched = alone
        .run(&format!(
            "UID FETCH {} (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS ({ITEM_ID_HEADER})])",
            uids.join(",")
        ))
        .await?;
    let hit = fetched
        .untagged
        .iter()
        .filter_map(|u| proto::fetch_items(u))
        .filter_map(|items| exact_hit(&items, item.as_str()))
        .map(|(uid, _)| uid)
        .min();
    Ok(hit)
}

/// The whole message at `uid` of the selected folder, hashed as it is
/// read; `None` when there is no such UID.
async fn fetch_whole(
    alone: &Alone<'_>,
    validity: u32,
    uid: u32,
) -> Result<Option<ReadBack>, ConnError> {
    let fetched = alone
        .run(&format!("UID FETCH {uid} (UID BODY.PEEK[])"))
        .await?;
    if fetched.status.status != Status::Ok {
        return Err(ConnError::Lost(format!(
            "UID FETCH {uid} was refused: {}",
            fetched.status.describe()
        )));
    }
    let body = fetched
        .untagged
        .iter()
        .filter_map(|u| proto::fetch_items(u))
        .find_map(|items| body_of(&items, uid));
    Ok(body.map(|bytes| {
        let (sha256, len) = crate::mailbox::readback::hash_bytes(&bytes);
        ReadBack::Found {
            sha256,
            bytes: len,
            location: format!("{validity}:{uid}"),
        }
    }))
}

/// The `BODY[]` of a FETCH answer for `uid` (a server may send unasked
/// FETCH answers for other messages, e.g. flag changes).
fn body_of(items: &[Value], uid: u32) -> Option<Vec<u8>> {
    let mut this_uid = None;
    let mut body = None;
    for pair in items.chunks(2) {
        let [name, value] = pair else { continue };
        let name = name.as_atom()?.to_ascii_uppercase();
        match (name.as_str(), value) {
            ("UID", Value::Atom(v)) => this_uid = v.parse::<u32>().ok(),
            ("BODY[]", Value::Bytes(b)) => body = Some(b.clone()),
            ("BODY[]", Value::Nil) => body = Some(Vec::new()),
            _ => {}
        }
    }
    (this_uid == Some(uid)).then_some(body).flatten()
}

/// The name of a folder in an untagged `LIST (flags) "delim" name`
/// answer, unless it cannot be selected (`\Noselect`, `\NonExistent`).
fn listed_folder(untagged: &[u8]) -> Option<String> {
    let rest = untagged.get(5..)?;
    if !untagged.get(..5)?.eq_ignore_ascii_case(b"LIST ") {
        return None;
    }
    let values = proto::values(rest)?;
    let [Value::List(flags), _delimiter, name] = values.as_slice() else {
        return None;
    };
    let unselectable = flags.iter().any(|f| {
        f.as_atom().is_some_and(|a| {
            a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent")
        })
    });
    if unselectable {
        return None;
    }
    match name {
        Value::Bytes(b) => String::from_utf8(b.clone()).ok(),
        Value::Atom(a) => Some(a.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_is_uidvalidity_and_uid() {
        assert_eq!(parse_location("1712:42"), Some((1712, 42)));
        assert_eq!(parse_location(""), None);
        assert_eq!(parse_location("x:1"), None);
    }

    #[test]
    fn listed_folders_skip_those_that_cannot_be_selected() {
        let name = |s: &str| listed_folder(s.as_bytes());
        assert_eq!(
            name("LIST (\\HasNoChildren) \"/\" \"WeChat Archiver\""),
            Some("WeChat Archiver".into())
        );
        assert_eq!(name("LIST () \".\" Trash"), Some("Trash".into()));
        assert_eq!(name("LIST (\\Noselect) \"/\" Shared"), None);
        assert_eq!(name("LSUB () \"/\" Trash"), None);
    }

    #[test]
    fn the_body_is_taken_only_from_the_answer_for_the_uid_asked() {
        let items = proto::fetch_items(b"3 FETCH (UID 7 BODY[] {3}\r\nabc)").unwrap();
        assert_eq!(body_of(&items, 7), Some(b"abc".to_vec()));
        assert_eq!(body_of(&items, 8), None);
    }
}
