//! The JSON shapes of the TeleMessage API (`telemessage-api.md`), read
//! leniently: unknown fields are ignored and unknown enum values kept.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::types::ItemId;

/// An enum value the spec lists, or one it does not (kept, never fatal).
macro_rules! open_enum {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            /// A value this version does not know; the item is still archived.
            Other(String),
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Other(s) => s,
                }
            }

            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Other(_))
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match s.as_str() {
                    $($text => $name::$variant,)+
                    _ => $name::Other(s),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok(String::deserialize(d)?.into())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

open_enum!(Platform { WeChat => "wechat", WeCom => "wecom" });
open_enum!(ItemType {
    Chat => "chat",
    Call => "call",
    Attachment => "attachment",
    File => "file",
    Recalled => "recalled",
});
open_enum!(ConversationKind { Direct => "direct", Group => "group" });

/// A party to an item. `mobile` and `email` are kept as sent; the mapping
/// module decides whether they are usable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub mobile: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub wechat_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub kind: ConversationKind,
    #[serde(default)]
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachmentInfo {
    pub name: String,
    #[serde(default)]
    pub content_type: String,
    #[serde(default)]
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallInfo {
    pub media: String,
    pub started_at: DateTime<Utc>,
    pub duration_seconds: u64,
    pub result: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecallInfo {
    pub recalled_at: DateTime<Utc>,
    #[serde(default)]
    pub original_item_id: Option<String>,
}

/// One archived item as listed; its content is fetched separately.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: ItemId,
    pub platform: Platform,
    #[serde(rename = "type")]
    pub kind: ItemType,
    pub conversation: Conversation,
    pub sent_at: DateTime<Utc>,
    pub archived_at: DateTime<Utc>,
    pub sender: Participant,
    #[serde(default)]
    pub participants: Vec<Participant>,
    pub size: u64,
    pub sha256: String,
    #[serde(default)]
    pub attachments: Vec<AttachmentInfo>,
    #[serde(default)]
    pub call: Option<CallInfo>,
    #[serde(default)]
    pub recall: Option<RecallInfo>,
}

impl Item {
    /// Every party, sender first, without repeating the sender.
    pub fn parties(&self) -> impl Iterator<Item = &Participant> {
        std::iter::once(&self.sender).chain(self.participants.iter().filter(|p| **p != self.sender))
    }
}

/// A page of `GET /v1/archive/items`.
#[derive(Debug, Clone, Deserialize)]
pub struct ItemPage {
    pub items: Vec<Item>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// The account a token belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub products: Vec<String>,
    #[serde(default)]
    pub timezone: Option<String>,
}

/// An employee registered for archiving (`GET /v1/account/users`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisteredUser {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub mobile: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub wechat_id: Option<String>,
    #[serde(default)]
    pub status: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UserPage {
    pub users: Vec<RegisteredUser>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// The body of an API error answer.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ApiErrorBody {
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_and_values_are_kept_not_fatal() {
        let json = r#"{"id":"i1","platform":"qq","type":"sticker","conversation":{"id":"c","kind":"channel","title":""},
            "sent_at":"2026-11-22T08:15:00Z","archived_at":"2026-11-22T08:15:03.5Z",
            "sender":{"name":"A","mobile":null,"email":null,"wechat_id":"a"},"participants":[],
            "size":1,"sha256":"00","attachments":[],"call":null,"recall":null,"brand_new":{"x":1}}"#;
        let item: Item = serde_json::from_str(json).unwrap();
        assert_eq!(item.platform, Platform::Other("qq".into()));
        assert_eq!(item.kind.as_str(), "sticker");
        assert!(!item.kind.is_known());
    }
}
