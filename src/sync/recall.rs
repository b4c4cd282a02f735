//! Recalled items: a `recalled` item keeps the content its sender
//! recalled, and names the original item (`recall.original_item_id`). Its
//! copies carry `In-Reply-To` and `References` naming the original's
//! `Message-ID`, so a reviewer's mail client shows the recall with the
//! message it recalled. Only the original's content holds that id: its
//! header block is read from TeleMessage (a `Range` request, a few KiB).
//! The link is left out, with a warning, when the original cannot be read
//! (purged) or the recall's own content already has an `In-Reply-To`;
//! `verify` reports recalls whose original is not archived.

use tokio::io::AsyncReadExt;

use super::Run;
use crate::content::Content;
use crate::telemessage::client::{HEAD_LIMIT, header_value};
use crate::telemessage::{Item, ItemType};
use crate::types::ItemId;

impl Run<'_> {
    /// The original's `Message-ID` for a recalled item's copies.
    pub(super) async fn recall_link(&self, item: &Item, content: &Content) -> Option<String> {
        if item.kind != ItemType::Recalled {
            return None;
        }
        let original = item.recall.as_ref()?.original_item_id.as_deref()?;
        let client = self.engine.client.as_ref()?;
        if already_linked(content).await {
            return None;
        }
        let without = |why: &str| {
            tracing::warn!(
                "recalled item {} is written without a link to its original {original}: {why}",
                item.id
            );
        };
        let id = match ItemId::parse(original) {
            Ok(id) => id,
            Err(e) => {
                without(&format!("the original's id is not valid: {e}"));
                return None;
            }
        };
        match client.message_id(&id).await {
            Ok(Some(message_id)) => Some(message_id),
            Ok(None) => {
                without("the original's content has no Message-ID");
                None
            }
            Err(e) => {
                without(&e.to_string());
                None
            }
        }
    }
}

/// Whether the content's own header block already has an `In-Reply-To`
/// (a message has at most one).
async fn already_linked(content: &Content) -> bool {
    let Ok(reader) = content.reader().await else {
        return false;
    };
    let mut head = Vec::new();
    let read = reader.take(HEAD_LIMIT as u64).read_to_end(&mut head).await;
    read.is_ok() && header_value(&head, "In-Reply-To").is_some()
}
