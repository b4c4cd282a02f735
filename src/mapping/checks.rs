//! The optional checks of `map validate` against the outside world: the
//! TeleMessage account's registered users, and the target's users.

use std::collections::HashSet;

use super::phone;
use super::report::{Code, Finding};
use super::table::MappingTable;
use crate::mailbox::{MailboxWriter, WriteError};
use crate::telemessage::model::RegisteredUser;
use crate::types::E164;

/// Compares the mapping with the account's registered users: a number the
/// account does not know maps nothing (its traffic is not archived), and an
/// active user without a row is mapped only by e-mail, if at all.
pub fn check_telemessage(table: &MappingTable, users: &[RegisteredUser]) -> Vec<Finding> {
    let registered: HashSet<E164> = users
        .iter()
        .filter_map(|u| registered_number(u, table))
        .collect();
    let mut findings: Vec<Finding> = table
        .iter()
        .filter(|(number, _)| !registered.contains(*number))
        .map(|(number, entry)| {
            Finding::new(
                Code::NotInTelemessage,
                Some(entry.line),
                number.as_str(),
                format!(
                    "{number} ({}) is not registered in the TeleMessage account, so no traffic of it is archived: register the employee in TeleMessage, or correct the number",
                    entry.mailbox
                ),
            )
        })
        .collect();
    findings.extend(
        users
            .iter()
            .filter(|u| u.status != "suspended")
            .filter(|u| registered_number(u, table).is_some_and(|n| table.get(&n).is_none()))
            .map(unmapped_user),
    );
    findings
}

fn registered_number(user: &RegisteredUser, table: &MappingTable) -> Option<E164> {
    let raw = user.mobile.as_deref()?.trim();
    E164::parse_canonical(raw)
        .ok()
        .or_else(|| phone::normalise(raw, table.default_region()).ok())
}

fn unmapped_user(user: &RegisteredUser) -> Finding {
    let mobile = user.mobile.as_deref().unwrap_or("");
    let fallback = match &user.email {
        Some(email) => format!(
            "their traffic goes to {email} only if automatic mapping is on and the target has that user"
        ),
        None => {
            "TeleMessage has no e-mail for them either, so their traffic stays unmapped".to_owned()
        }
    };
    Finding::new(
        Code::UnmappedRegisteredUser,
        None,
        mobile,
        format!(
            "registered TeleMessage user {} ({mobile}) has no row in this file; {fallback}",
            if user.name.is_empty() {
                "(no name)"
            } else {
                &user.name
            }
        ),
    )
}

/// Asks the target about every distinct mailbox of the mapping; a mailbox
/// that is not one of its users would make the sync skip that mapping.
pub async fn check_target(
    table: &MappingTable,
    target: &dyn MailboxWriter,
    mailbox_column: Option<&str>,
) -> Result<Vec<Finding>, WriteError> {
    let mut findings = Vec::new();
    for (mailbox, line) in table.mailboxes() {
        if !target.is_valid_user(mailbox).await? {
            let mut finding = Finding::new(
                Code::NotATargetUser,
                Some(line),
                mailbox.as_str(),
                format!(
                    "{mailbox} is not a user of {}: items mapped to it would not be delivered; correct the address or create the mailbox",
                    target.describe()
                ),
            );
            if let Some(column) = mailbox_column {
                finding = finding.in_column(column);
            }
            findings.push(finding);
        }
    }
    Ok(findings)
}
