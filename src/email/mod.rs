//! TeleMessage's e-mail delivery as a source (`telemessage-email.md`): the
//! LMTP server ([`lmtp`]), the pipe ([`Intake`] from standard input) and
//! the EML batch importer ([`import`]) all hand each message to one
//! [`Intake`], which parses it, gives it its item id and passes it to the
//! sync engine's per-item path through a [`Session`], so mapping, ledger
//! and exactly-once rules are the API source's.

pub mod identity;
pub mod import;
pub mod lmtp;
pub mod manifest;
pub mod parse;
pub mod quarantine;

use std::collections::HashSet;
use std::sync::Mutex;

use bytes::Bytes;
use chrono::Utc;
use tokio::sync::Notify;

use crate::content::Content;
use crate::sync::{Session, Settled, SyncError};
use crate::telemessage::model::{Conversation, ConversationKind, ItemType, Platform};
use crate::telemessage::{Item, Participant};
use crate::types::ItemId;

pub use quarantine::Quarantine;

/// Largest message accepted (LMTP `SIZE`, pipe and import alike).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

/// Why a message could not be taken in; the MTA should try again later.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error("cannot keep an unparseable message in the quarantine {dir}: {source}")]
    Quarantine { dir: String, source: std::io::Error },
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Durable in every mailbox it belongs to (now or earlier), recorded.
    Archived { id: ItemId, collision: bool },
    /// No participant maps to a mailbox: kept as unmapped (and in the
    /// fallback mailbox, if there is one).
    Unmapped { id: ItemId },
    /// Not a message: kept whole in the quarantine.
    Quarantined { reason: String },
    /// Some copy could not be written (the target is down): try again.
    Failed { id: ItemId, reason: String },
}

/// How an e-mail connector reads participants.
#[derive(Debug, Clone, Default)]
pub struct EmailOptions {
    /// Lowercase domains whose addresses may map automatically; empty:
    /// every address.
    pub domains: Vec<String>,
    /// The envelope recipient (without `+tag`) is a participant.
    pub mailbox_from_recipient: bool,
}

/// Takes received messages into a session, one per call (several calls
/// may run at once).
pub struct Intake<'s> {
    pub session: &'s Session<'s>,
    pub connector: String,
    pub quarantine: Quarantine,
    pub options: EmailOptions,
    busy: ItemLocks,
}

impl<'s> Intake<'s> {
    pub fn new(
        session: &'s Session<'s>,
        connector: &str,
        quarantine: Quarantine,
        options: EmailOptions,
    ) -> Intake<'s> {
        Intake {
            session,
            connector: connector.to_owned(),
            quarantine,
            options,
            busy: ItemLocks::default(),
        }
    }

    /// Archives one received message for its envelope recipients. When
    /// this returns `Archived`, `Unmapped` or `Quarantined`, the message is
    /// durable and recorded.
    pub async fn accept(&self, raw: Bytes, recipients: &[String]) -> Result<Accepted, EmailError> {
        let parsed = match parse::parse(&raw) {
            Ok(parsed) => parsed,
            Err(e) => return self.keep_unparseable(&raw, &e.to_string()),
        };
        let original = match &parsed.original {
            parse::Original::Slice(range) if *range == (0..raw.len()) => raw.clone(),
            parse::Original::Slice(range) => raw.slice(range.clone()),
            parse::Original::Decoded(bytes) => Bytes::from(bytes.clone()),
        };
        let handover = self.session.handover();
        let digest = identity::content_digest(&original);
        let identity = identity::identify(
            self.session.ledger(),
            &self.connector,
            parsed.message_id.as_deref(),
            &digest,
        )?;
        if identity.collision {
            tracing::warn!(
                "message {} shares its Message-ID with a different message; kept as {}",
                parsed.message_id.as_deref().unwrap_or_default(),
                identity.id
            );
        }
        let item = self.item(
            &parsed,
            identity.id.clone(),
            &digest,
            original.len(),
            recipients,
        );
        let content = Content::Memory(original);
        let _busy = self.busy.hold(&item.id).await;
        let settled = self.session.deliver(&item, &content).await?;
        self.session.saved(handover).await?;
        Ok(match settled {
            Settled::Archived | Settled::Planned => Accepted::Archived {
                id: identity.id,
                collision: identity.collision,
            },
            Settled::Unmapped => Accepted::Unmapped { id: identity.id },
            Settled::Failed(reason) => Accepted::Failed {
                id: identity.id,
                reason,
            },
        })
    }

    fn keep_unparseable(&self, raw: &[u8], reason: &str) -> Result<Accepted, EmailError> {
        let path = self
            .quarantine
            .keep(raw, reason)
            .map_err(|source| EmailError::Quarantine {
                dir: self.quarantine.dir().display().to_string(),
                source,
            })?;
        tracing::warn!(
            "a message that cannot be parsed ({reason}) is kept in {}",
            path.display()
        );
        Ok(Accepted::Quarantined {
            reason: reason.to_owned(),
        })
    }

    fn item(
        &self,
        parsed: &parse::Parsed,
        id: ItemId,
        digest: &str,
        size: usize,
        recipients: &[String],
    ) -> Item {
        let mut parties: Vec<Participant> = Vec::new();
        if self.options.mailbox_from_recipient {
            for recipient in recipients {
                parties.push(parse::participant("", Some(&without_tag(recipient))));
            }
        }
        for party in &parsed.participants {
            let mut party = party.clone();
            if !self.in_domains(party.email.as_deref()) {
                party.email = None;
            }
            parties.push(party);
        }
        let sender = if parties.is_empty() {
            parse::participant("", None)
        } else {
            parties.remove(0)
        };
        let now = Utc::now();
        Item {
            id,
            platform: Platform::from(parsed.platform.clone().unwrap_or_else(|| "wechat".into())),
            kind: ItemType::from(parsed.kind.clone().unwrap_or_else(|| "chat".into())),
            conversation: Conversation {
                id: format!("email:{}", &digest[..16]),
                kind: if parties.len() <= 1 {
                    ConversationKind::Direct
                } else {
                    ConversationKind::Group
                },
                title: parsed.subject.chars().take(200).collect(),
            },
            sent_at: parsed.sent_at.unwrap_or(now),
            archived_at: now,
            sender,
            participants: parties,
            size: size as u64,
            sha256: digest.to_owned(),
            attachments: Vec::new(),
            call: None,
            recall: None,
        }
    }

    fn in_domains(&self, address: Option<&str>) -> bool {
        let Some(address) = address else {
            return false;
        };
        if self.options.domains.is_empty() {
            return true;
        }
        let domain = address
            .rsplit('@')
            .next()
            .unwrap_or_default()
            .to_lowercase();
        self.options.domains.contains(&domain)
    }
}

/// `li.wei+wechat@x` → `li.wei@x`.
pub fn without_tag(address: &str) -> String {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let local = local.split_once('+').map_or(local, |(l, _)| l);
            format!("{local}@{domain}")
        }
        None => address.to_owned(),
    }
}

/// Items being delivered right now: a second delivery of the same item
/// (an MTA retry on another connection) waits for the first to settle,
/// then finds its copies in the ledger.
#[derive(Default)]
struct ItemLocks {
    held: Mutex<HashSet<ItemId>>,
    released: Notify,
}

struct ItemGuard<'a> {
    locks: &'a ItemLocks,
    id: ItemId,
}

impl ItemLocks {
    async fn hold(&self, id: &ItemId) -> ItemGuard<'_> {
        loop {
            let released = self.released.notified();
            {
                let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
                if held.insert(id.clone()) {
                    return ItemGuard {
                        locks: self,
                        id: id.clone(),
                    };
                }
            }
            released.await;
        }
    }
}

impl Drop for ItemGuard<'_> {
    fn drop(&mut self) {
        self.locks
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
        self.locks.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recipient_tag_is_removed() {
        assert_eq!(
            without_tag("<li.wei+wechat@contoso.com>"),
            "li.wei@contoso.com"
        );
        assert_eq!(without_tag("li.wei@contoso.com"), "li.wei@contoso.com");
    }
}
