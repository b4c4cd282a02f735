//! E-mail identities: which item id each forwarded message got. A message
//! is known by its `Message-ID` and its content digest; two messages that
//! share a `Message-ID` but differ in their bytes both get an id (see
//! `email/identity.rs`). Kept in the ledger's own write batch, so a
//! message's identity becomes durable in the same commit as its copies.

use rusqlite::{OptionalExtension, params};

use super::{Ledger, LedgerError};

/// The id a message was given, and whether another message had taken its
/// `Message-ID` first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailIdentity {
    pub item_id: String,
    pub collision: bool,
}

impl Ledger {
    /// The id of the message with this `Message-ID` text and digest: the
    /// one it got before, else `message_id` itself, or `collided` when
    /// another message holds that `Message-ID` already.
    pub fn email_identity(
        &self,
        connector: &str,
        message_id: &str,
        digest: &str,
        collided: &str,
    ) -> Result<EmailIdentity, LedgerError> {
        let mut found = None;
        self.batched(|conn| {
            found = Some(identify(conn, connector, message_id, digest, collided)?);
            Ok(())
        })?;
        found.ok_or_else(|| LedgerError::Corrupt {
            item: message_id.to_owned(),
            message: "no identity was recorded".into(),
        })
    }
}

fn identify(
    conn: &rusqlite::Connection,
    connector: &str,
    message_id: &str,
    digest: &str,
    collided: &str,
) -> rusqlite::Result<EmailIdentity> {
    let known: Option<String> = conn
        .query_row(
            "SELECT item_id FROM email_identities \
             WHERE connector = ?1 AND message_id = ?2 AND digest = ?3",
            params![connector, message_id, digest],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(item_id) = known {
        return Ok(EmailIdentity {
            item_id,
            collision: false,
        });
    }
    let taken: bool = conn.query_row(
        "SELECT count(*) > 0 FROM email_identities WHERE connector = ?1 AND message_id = ?2",
        params![connector, message_id],
        |r| r.get(0),
    )?;
    let item_id = if taken { collided } else { message_id };
    conn.execute(
        "INSERT INTO email_identities (connector, message_id, digest, item_id) \
         VALUES (?1, ?2, ?3, ?4)",
        params![connector, message_id, digest, item_id],
    )?;
    Ok(EmailIdentity {
        item_id: item_id.to_owned(),
        collision: taken,
    })
}
