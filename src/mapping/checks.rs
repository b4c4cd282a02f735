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

#[cfg(test)]
mod tests {
    use async_trait::async_trait;

    use super::*;
    use crate::mailbox::{Copy, Written};
    use crate::telemessage::Item;
    use crate::types::Mailbox;

    fn table(dir: &tempfile::TempDir, text: &str) -> MappingTable {
        let path = dir.path().join("m.csv");
        std::fs::write(&path, text).unwrap();
        crate::mapping::load(&path, Some("CN")).unwrap()
    }

    fn user(name: &str, mobile: Option<&str>, email: Option<&str>, status: &str) -> RegisteredUser {
        RegisteredUser {
            name: name.into(),
            mobile: mobile.map(Into::into),
            email: email.map(Into::into),
            wechat_id: None,
            status: status.into(),
        }
    }

    #[test]
    fn telemessage_check_warns_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let t = table(
            &dir,
            "mobile,email\n+8613800138000,li.wei@contoso.com\n139 0013 9000,ghost@contoso.com\n",
        );
        let users = [
            user(
                "Li Wei",
                Some("+8613800138000"),
                Some("li.wei@contoso.com"),
                "active",
            ),
            user("Zhang Min", Some("+85291234567"), None, "active"),
            user("Gone", Some("+8613700137000"), None, "suspended"),
            user("No phone", None, Some("np@contoso.com"), "active"),
        ];
        let findings = check_telemessage(&t, &users);
        let got: Vec<_> = findings
            .iter()
            .map(|f| (f.code, f.line, f.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (Code::NotInTelemessage, Some(3), "+8613900139000"),
                (Code::UnmappedRegisteredUser, None, "+85291234567"),
            ]
        );
        assert!(findings[1].message.contains("Zhang Min"));
        assert!(
            findings
                .iter()
                .all(|f| f.level == crate::mapping::Level::Warning)
        );
    }

    struct OnlyContoso;

    #[async_trait]
    impl MailboxWriter for OnlyContoso {
        fn describe(&self) -> String {
            "imaps://mail.contoso.com:993".into()
        }
        async fn is_valid_user(&self, mailbox: &Mailbox) -> Result<bool, WriteError> {
            Ok(mailbox.key().ends_with("@contoso.com"))
        }
        async fn find_existing(
            &self,
            _: &Mailbox,
            _: &Item,
        ) -> Result<Option<Written>, WriteError> {
            Ok(None)
        }
        async fn write(&self, _: &Mailbox, _: &Copy<'_>) -> Result<Written, WriteError> {
            Err(WriteError::Target("not in this test".into()))
        }
    }

    #[tokio::test]
    async fn target_check_is_an_error_per_unknown_mailbox_at_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let t = table(
            &dir,
            "mobile,email\n+8613800138000,li.wei@contoso.com\n+8613900139000,x@fabrikam.com\n+8613700137000,X@fabrikam.com\n",
        );
        let findings = check_target(&t, &OnlyContoso, Some("email")).await.unwrap();
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].code, Code::NotATargetUser);
        assert_eq!(findings[0].line, Some(3));
        assert_eq!(findings[0].column.as_deref(), Some("email"));
        assert!(findings[0].message.contains("imaps://mail.contoso.com:993"));
    }
}
