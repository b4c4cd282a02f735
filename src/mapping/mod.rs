//! Interim resolver until the full mapping module lands (issue #3).

use std::collections::HashMap;
use std::path::Path;

use crate::mailbox::{MailboxWriter, WriteError};
use crate::telemessage::Item;
use crate::types::{E164, Mailbox};

#[derive(Debug, thiserror::Error)]
#[error("mapping file {path}: {message}")]
pub struct MappingError {
    pub path: String,
    pub message: String,
}

#[derive(Debug, Default, Clone)]
pub struct MappingTable {
    entries: HashMap<E164, Mailbox>,
}

pub fn load(path: &Path, _default_region: Option<&str>) -> Result<MappingTable, MappingError> {
    let err = |message: String| MappingError {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let mut entries = HashMap::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let Some((number, mailbox)) = line.split_once(',') else {
            continue;
        };
        let number = E164::parse_canonical(number.trim())
            .map_err(|e| err(format!("line {}: {e}", n + 1)))?;
        let mailbox = Mailbox::parse(mailbox).map_err(|e| err(format!("line {}: {e}", n + 1)))?;
        entries.insert(number, mailbox);
    }
    Ok(MappingTable { entries })
}

pub struct Resolution {
    pub mailboxes: Vec<Mailbox>,
}

pub struct Resolver {
    custom: Option<MappingTable>,
    auto: bool,
}

impl Resolver {
    pub fn new(custom: Option<MappingTable>, auto: bool) -> Resolver {
        Resolver { custom, auto }
    }

    pub async fn resolve(
        &self,
        item: &Item,
        users: &dyn MailboxWriter,
    ) -> Result<Resolution, WriteError> {
        let mut mailboxes: Vec<Mailbox> = Vec::new();
        for p in item.parties() {
            let custom = p
                .mobile
                .as_deref()
                .and_then(|m| E164::parse_canonical(m).ok())
                .and_then(|m| self.custom.as_ref()?.entries.get(&m).cloned());
            let auto = if self.auto {
                p.email.as_deref().and_then(|e| Mailbox::parse(e).ok())
            } else {
                None
            };
            for candidate in [custom, auto].into_iter().flatten() {
                if users.is_valid_user(&candidate).await? {
                    if !mailboxes.contains(&candidate) {
                        mailboxes.push(candidate);
                    }
                    break;
                }
            }
        }
        Ok(Resolution { mailboxes })
    }
}
