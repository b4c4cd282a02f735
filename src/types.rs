//! Small value types that make wrong states hard to build: an item id that
//! is safe to store and name files after, an E.164 number, a mailbox address.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// A TeleMessage item id: 1..128 printable ASCII characters, never `/`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ItemId(String);

/// Why a string is not an [`ItemId`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("item id {0:?} is not 1..128 printable ASCII characters without '/'")]
pub struct InvalidItemId(pub String);

impl ItemId {
    pub fn parse(s: &str) -> Result<Self, InvalidItemId> {
        let ok = (1..=128).contains(&s.len())
            && s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'/');
        if ok {
            Ok(ItemId(s.to_owned()))
        } else {
            Err(InvalidItemId(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short, file-name-safe fingerprint of the id, used to find a copy
    /// on disk when the ledger lost track of it (crash after the write).
    pub fn tag(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        hex::encode(&digest[..10])
    }
}

impl TryFrom<String> for ItemId {
    type Error = InvalidItemId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ItemId::parse(&s)
    }
}

impl From<ItemId> for String {
    fn from(id: ItemId) -> String {
        id.0
    }
}

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ItemId({})", self.0)
    }
}

/// A phone number in E.164 form (`+` then 7..15 digits, no leading zero).
///
/// Only normalised numbers can be built; turning what people type into one
/// is the mapping module's job.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct E164(String);

/// Why a string is not an [`E164`] number.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not an E.164 number (+ and 7 to 15 digits)")]
pub struct InvalidE164(pub String);

impl E164 {
    /// Accepts only the canonical form, as TeleMessage sends it.
    pub fn parse_canonical(s: &str) -> Result<Self, InvalidE164> {
        let digits = s.strip_prefix('+').unwrap_or("");
        let ok = (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if ok {
            Ok(E164(s.to_owned()))
        } else {
            Err(InvalidE164(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for E164 {
    type Error = InvalidE164;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        E164::parse_canonical(&s)
    }
}

impl From<E164> for String {
    fn from(n: E164) -> String {
        n.0
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E164({})", self.0)
    }
}

/// A mailbox address that has passed RFC 5322 validation.
///
/// Compared and hashed case-insensitively, as the mapping rules require, but
/// displayed as written.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Mailbox {
    address: String,
    key: String,
}

/// Why a string is not a [`Mailbox`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a valid e-mail address")]
pub struct InvalidMailbox(pub String);

impl Mailbox {
    pub fn parse(s: &str) -> Result<Self, InvalidMailbox> {
        let trimmed = s.trim();
        let valid = email_address::EmailAddress::parse_with_options(
            trimmed,
            email_address::Options::default().without_display_text(),
        )
        .is_ok()
            && !trimmed.contains(['\r', '\n', '\0']);
        if valid {
            Ok(Mailbox {
                address: trimmed.to_owned(),
                key: trimmed.to_lowercase(),
            })
        } else {
            Err(InvalidMailbox(s.to_owned()))
        }
    }

    /// The address as written.
    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The lowercase form used for comparison, ledger keys and paths.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// A directory name for this mailbox that is safe on every file system:
    /// bytes outside `[a-z0-9.+_@-]` are `%XX`-escaped, and so is a leading
    /// dot, so the name can never be `.`, `..`, hidden, or contain `/`.
    pub fn dir_name(&self) -> String {
        let mut out = String::with_capacity(self.key.len());
        for (i, b) in self.key.bytes().enumerate() {
            let safe = b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'+' | b'_' | b'@' | b'-')
                || (b == b'.' && i > 0);
            if safe {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }
}

impl PartialEq for Mailbox {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Mailbox {}

impl Hash for Mailbox {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl PartialOrd for Mailbox {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Mailbox {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

impl FromStr for Mailbox {
    type Err = InvalidMailbox;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mailbox::parse(s)
    }
}

impl TryFrom<String> for Mailbox {
    type Error = InvalidMailbox;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Mailbox::parse(&s)
    }
}

impl From<Mailbox> for String {
    fn from(m: Mailbox) -> String {
        m.address
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

impl fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mailbox({})", self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_id_rejects_slash_and_control_characters() {
        assert!(ItemId::parse("itm_01JD3Q8ZK2").is_ok());
        assert!(ItemId::parse("a/b").is_err());
        assert!(ItemId::parse("a\nb").is_err());
        assert!(ItemId::parse("").is_err());
        assert!(ItemId::parse(&"x".repeat(129)).is_err());
    }

    #[test]
    fn mailboxes_compare_case_insensitively() {
        let a = Mailbox::parse("Li.Wei@Contoso.com").unwrap();
        let b = Mailbox::parse("li.wei@contoso.com").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "Li.Wei@Contoso.com");
    }

    #[test]
    fn mailbox_dir_name_cannot_escape_the_archive_root() {
        let m = Mailbox::parse("\"../../etc\"@contoso.com").unwrap();
        let dir = m.dir_name();
        assert!(!dir.contains('/'));
        assert!(!dir.starts_with('.'));
        let m = Mailbox::parse(".hidden\"@x\"@contoso.com");
        if let Ok(m) = m {
            assert!(!m.dir_name().starts_with('.'));
        }
    }

    #[test]
    fn e164_canonical_only() {
        assert!(E164::parse_canonical("+8613800138000").is_ok());
        assert!(E164::parse_canonical("8613800138000").is_err());
        assert!(E164::parse_canonical("+0861").is_err());
    }
}
