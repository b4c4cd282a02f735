//! Where a user's own folders live (RFC 2342 `NAMESPACE`). Dovecot puts
//! them at the top (prefix `""`); Cyrus with its default `altnamespace:
//! no` puts them under `INBOX/`, and a top-level name there is a shared
//! folder the user may not create. A user without a personal namespace
//! (`NIL`) has no mailbox on the server.

use super::proto::{self, Value};

/// The personal namespace: its prefix as the server spells it (modified
/// UTF-7 already) and its hierarchy delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Personal {
    pub prefix: String,
    pub delimiter: Option<char>,
}

/// Reads an untagged `NAMESPACE personal other shared` answer: `None` if
/// the line is not one, `Some(None)` when the personal namespace is `NIL`,
/// else its first entry.
pub fn parse(untagged: &[u8]) -> Option<Option<Personal>> {
    let rest = untagged.get(..10)?;
    if !rest.eq_ignore_ascii_case(b"NAMESPACE ") {
        return None;
    }
    let values = proto::values(&untagged[10..])?;
    match values.first()? {
        Value::Nil => Some(None),
        Value::List(entries) => match entries.first() {
            Some(Value::List(entry)) => Some(Some(personal(entry)?)),
            _ => Some(None),
        },
        _ => None,
    }
}

fn personal(entry: &[Value]) -> Option<Personal> {
    let prefix = match entry.first()? {
        Value::Bytes(b) => String::from_utf8(b.clone()).ok()?,
        Value::Atom(a) => a.clone(),
        _ => return None,
    };
    let delimiter = match entry.get(1)? {
        Value::Bytes(b) if b.len() == 1 => Some(char::from(b[0])),
        Value::Nil => None,
        _ => return None,
    };
    Some(Personal { prefix, delimiter })
}

/// The archive folder's name on the wire (modified UTF-7, not yet quoted):
/// `folder` under the personal prefix, joined by the server's delimiter
/// when the prefix does not already end with it. Without a personal
/// namespace (the server has no `NAMESPACE`), the folder as given.
pub fn folder_name(personal: Option<&Personal>, folder: &str) -> String {
    let encoded = proto::encode_mailbox_name(folder);
    let Some(personal) = personal.filter(|p| !p.prefix.is_empty()) else {
        return encoded;
    };
    match personal.delimiter {
        Some(d) if !personal.prefix.ends_with(d) => format!("{}{d}{encoded}", personal.prefix),
        _ => format!("{}{encoded}", personal.prefix),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn personal(prefix: &str, delimiter: char) -> Option<Option<Personal>> {
        Some(Some(Personal {
            prefix: prefix.to_owned(),
            delimiter: Some(delimiter),
        }))
    }

    #[test]
    fn reads_the_personal_namespace_of_dovecot_and_both_cyrus_modes() {
        assert_eq!(parse(br#"NAMESPACE (("" ".")) NIL NIL"#), personal("", '.'));
        assert_eq!(
            parse(br#"NAMESPACE (("INBOX/" "/")) (("user/" "/")) (("" "/"))"#),
            personal("INBOX/", '/')
        );
        assert_eq!(
            parse(br#"namespace (("" "/")) (("Other Users/" "/")) (("Shared Folders/" "/"))"#),
            personal("", '/')
        );
    }

    #[test]
    fn a_nil_personal_namespace_means_no_mailbox() {
        assert_eq!(
            parse(br#"NAMESPACE NIL (("user/" "/")) (("" "/"))"#),
            Some(None)
        );
    }

    #[test]
    fn extensions_literals_and_other_lines() {
        assert_eq!(
            parse(b"NAMESPACE ((\"INBOX.\" \".\" \"X-PARAM\" (\"a\" \"b\"))) NIL NIL"),
            personal("INBOX.", '.')
        );
        assert_eq!(
            parse(b"NAMESPACE (({6}\r\nINBOX/ \"/\")) NIL NIL"),
            personal("INBOX/", '/')
        );
        assert_eq!(parse(b"STATUS INBOX (MESSAGES 1)"), None);
        assert_eq!(parse(b"NAMESPACE (("), None);
        assert_eq!(parse(b"NAMESPACE"), None);
    }

    #[test]
    fn the_folder_goes_under_the_prefix_with_the_servers_delimiter() {
        let cyrus = Personal {
            prefix: "INBOX/".to_owned(),
            delimiter: Some('/'),
        };
        assert_eq!(
            folder_name(Some(&cyrus), "WeChat Archiver"),
            "INBOX/WeChat Archiver"
        );
        let bare = Personal {
            prefix: "INBOX".to_owned(),
            delimiter: Some('.'),
        };
        assert_eq!(folder_name(Some(&bare), "Archiv"), "INBOX.Archiv");
        let top = Personal {
            prefix: String::new(),
            delimiter: Some('/'),
        };
        assert_eq!(folder_name(Some(&top), "Archiv"), "Archiv");
        assert_eq!(folder_name(None, "微信"), "&X65P4Q-");
        assert_eq!(folder_name(Some(&cyrus), "微信"), "INBOX/&X65P4Q-");
    }
}
