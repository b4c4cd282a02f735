//! Whose mailboxes an item belongs in, by the rules of `user-mapping.md`:
//! per participant, the custom mapping first, then the e-mail TeleMessage
//! holds, each only if the target has that user; otherwise unmapped.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Mutex;

use serde::Serialize;

use super::phone;
use super::table::MappingTable;
use crate::mailbox::{MailboxWriter, WriteError};
use crate::telemessage::{Item, Participant};
use crate::types::{E164, Mailbox};

/// Where an item goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolution {
    /// Each mailbox once (compared case-insensitively), in the order the
    /// participants come (sender first).
    pub mailboxes: Vec<Mailbox>,
    /// The participants no rule mapped, with the reason.
    pub unmapped: Vec<Unmapped>,
    /// Participants whose mailbox the target could not look up (a `400`
    /// for one address), with the error: the item goes to the others and
    /// is retried for these.
    pub lookup_failures: Vec<String>,
}

impl Resolution {
    /// No participant mapped: the item reaches no user's mailbox (the
    /// engine keeps it as unmapped, and writes it to the fallback mailbox).
    pub fn is_unmapped(&self) -> bool {
        self.mailboxes.is_empty() && self.lookup_failures.is_empty()
    }

    /// Why some participants' mailboxes are unknown, if any are.
    pub fn lookup_failure(&self) -> Option<String> {
        (!self.lookup_failures.is_empty()).then(|| {
            format!(
                "cannot look up the mailbox of {}",
                self.lookup_failures.join("; ")
            )
        })
    }
}

/// A participant no rule mapped, described for the run report and ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unmapped {
    pub name: String,
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub wechat_id: Option<String>,
    /// Why each rule did not apply, e.g. `+8613800138000 is not in the
    /// mapping file; automatic mapping is off`.
    pub reason: String,
}

impl fmt::Display for Unmapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.name.is_empty() {
            "(no name)"
        } else {
            &self.name
        };
        let ids: Vec<&str> = [&self.mobile, &self.email, &self.wechat_id]
            .into_iter()
            .filter_map(|v| v.as_deref())
            .collect();
        write!(f, "{name} ({}): {}", ids.join(", "), self.reason)
    }
}

/// Maps items to mailboxes for one run; remembers the target's answer for
/// each address, so a run asks about an address once (twice at most when
/// two items needing it are resolved at the same moment).
pub struct Resolver {
    custom: Option<MappingTable>,
    auto_mapping: bool,
    valid_users: Mutex<HashMap<String, bool>>,
}

impl Resolver {
    pub fn new(custom: Option<MappingTable>, auto_mapping: bool) -> Self {
        Resolver {
            custom,
            auto_mapping,
            valid_users: Mutex::new(HashMap::new()),
        }
    }

    /// The domains of the custom mapping's mailboxes, lowercase, each once:
    /// an e-mail source maps addresses in them only, unless told others.
    pub fn mapped_domains(&self) -> Vec<String> {
        let mut domains: Vec<String> = self
            .custom
            .iter()
            .flat_map(|t| t.mailboxes())
            .filter_map(|(m, _)| m.key().rsplit_once('@').map(|(_, d)| d.to_owned()))
            .collect();
        domains.sort();
        domains.dedup();
        domains
    }

    /// The mailboxes `item` belongs in. Fails only when the target as a
    /// whole cannot answer whether an address is one of its users; a
    /// lookup that fails for one address is kept in
    /// [`Resolution::lookup_failures`].
    pub async fn resolve(
        &self,
        item: &Item,
        users: &dyn MailboxWriter,
    ) -> Result<Resolution, WriteError> {
        self.resolve_holding(item, users, &HashSet::new()).await
    }

    /// As [`Resolver::resolve`], for an item of which the mailboxes in
    /// `holding` (keys) already hold a copy: those are taken as users
    /// without asking the target, so a run with nothing to write to a
    /// mailbox does not log in to it.
    pub async fn resolve_holding(
        &self,
        item: &Item,
        target: &dyn MailboxWriter,
        holding: &HashSet<String>,
    ) -> Result<Resolution, WriteError> {
        let users = Users { target, holding };
        let users = &users;
        let mut resolution = Resolution::default();
        for party in item.parties() {
            let found = match self.participant(party, users).await {
                Err(e @ WriteError::Target(_)) => return Err(e),
                Err(e) => {
                    let who = unmapped(party, String::new());
                    let who = who.email.or(who.mobile).unwrap_or(who.name);
                    resolution.lookup_failures.push(format!("{who}: {e}"));
                    continue;
                }
                Ok(found) => found,
            };
            match found {
                Ok(mailbox) => {
                    if !resolution.mailboxes.contains(&mailbox) {
                        resolution.mailboxes.push(mailbox);
                    }
                }
                Err(reason) => {
                    let unmapped = unmapped(party, reason);
                    if !resolution.unmapped.contains(&unmapped) {
                        resolution.unmapped.push(unmapped);
                    }
                }
            }
        }
        Ok(resolution)
    }

    /// One participant's mailbox, or why there is none.
    async fn participant(
        &self,
        party: &Participant,
        users: &Users<'_>,
    ) -> Result<Result<Mailbox, String>, WriteError> {
        let mut reasons = Vec::new();
        match &self.custom {
            Some(table) => match self.custom_mailbox(table, party, users).await? {
                Ok(mailbox) => return Ok(Ok(mailbox)),
                Err(reason) => reasons.push(reason),
            },
            None => reasons.push("no custom mapping is configured".to_owned()),
        }
        if self.auto_mapping {
            match self.auto_mailbox(party, users).await? {
                Ok(mailbox) => return Ok(Ok(mailbox)),
                Err(reason) => reasons.push(reason),
            }
        } else {
            reasons.push("automatic mapping is off".to_owned());
        }
        Ok(Err(reasons.join("; ")))
    }

    async fn custom_mailbox(
        &self,
        table: &MappingTable,
        party: &Participant,
        users: &Users<'_>,
    ) -> Result<Result<Mailbox, String>, WriteError> {
        let Some(raw) = party.mobile.as_deref().filter(|m| !m.trim().is_empty()) else {
            return Ok(Err("no mobile number".to_owned()));
        };
        let number = match participant_number(raw, table) {
            Ok(n) => n,
            Err(e) => return Ok(Err(format!("mobile {raw:?} is not usable: {e}"))),
        };
        let Some(mailbox) = table.get(&number) else {
            return Ok(Err(format!("{number} is not in the mapping file")));
        };
        if self.is_valid_user(mailbox, users).await? {
            Ok(Ok(mailbox.clone()))
        } else {
            Ok(Err(format!(
                "{number} is mapped to {mailbox}, which is not a user of {}",
                users.target.describe()
            )))
        }
    }

    async fn auto_mailbox(
        &self,
        party: &Participant,
        users: &Users<'_>,
    ) -> Result<Result<Mailbox, String>, WriteError> {
        let Some(raw) = party.email.as_deref().filter(|e| !e.trim().is_empty()) else {
            return Ok(Err("TeleMessage has no e-mail address for them".to_owned()));
        };
        let Ok(mailbox) = Mailbox::parse(raw) else {
            return Ok(Err(format!("their e-mail {raw:?} is not a valid address")));
        };
        if self.is_valid_user(&mailbox, users).await? {
            Ok(Ok(mailbox))
        } else {
            Ok(Err(format!(
                "their e-mail {mailbox} is not a user of {}",
                users.target.describe()
            )))
        }
    }

    async fn is_valid_user(
        &self,
        mailbox: &Mailbox,
        users: &Users<'_>,
    ) -> Result<bool, WriteError> {
        if users.holding.contains(mailbox.key()) {
            return Ok(true);
        }
        if let Some(known) = self.cached(mailbox) {
            return Ok(known);
        }
        let valid = users.target.is_valid_user(mailbox).await?;
        if let Ok(mut cache) = self.valid_users.lock() {
            cache.insert(mailbox.key().to_owned(), valid);
        }
        Ok(valid)
    }

    fn cached(&self, mailbox: &Mailbox) -> Option<bool> {
        self.valid_users
            .lock()
            .ok()
            .and_then(|cache| cache.get(mailbox.key()).copied())
    }
}

/// Who answers whether an address is a user: the target, except for the
/// mailboxes that already hold a copy of the item being resolved.
struct Users<'a> {
    target: &'a dyn MailboxWriter,
    holding: &'a HashSet<String>,
}

/// TeleMessage sends E.164; anything else is read like the CSV was.
fn participant_number(raw: &str, table: &MappingTable) -> Result<E164, phone::PhoneError> {
    E164::parse_canonical(raw.trim()).or_else(|_| phone::normalise(raw, table.default_region()))
}

fn unmapped(party: &Participant, reason: String) -> Unmapped {
    Unmapped {
        name: party.name.clone(),
        mobile: party.mobile.clone(),
        email: party.email.clone(),
        wechat_id: party.wechat_id.clone(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::mailbox::{Copy, Written};

    /// A target that knows a fixed set of users and counts the questions.
    struct Users {
        valid: HashSet<String>,
        asked: AtomicUsize,
    }

    impl Users {
        fn new(valid: &[&str]) -> Self {
            Users {
                valid: valid.iter().map(|s| s.to_lowercase()).collect(),
                asked: AtomicUsize::new(0),
            }
        }
    }

    #[async_trait]
    impl MailboxWriter for Users {
        fn describe(&self) -> String {
            "test-target".into()
        }
        async fn is_valid_user(&self, mailbox: &Mailbox) -> Result<bool, WriteError> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            Ok(self.valid.contains(mailbox.key()))
        }
        async fn find_existing(
            &self,
            _: &Mailbox,
            _: &Item,
        ) -> Result<Option<Written>, WriteError> {
            Err(WriteError::Target("resolution never writes".into()))
        }
        async fn write(&self, _: &Mailbox, _: &Copy<'_>) -> Result<Written, WriteError> {
            Err(WriteError::Target("resolution never writes".into()))
        }
    }

    /// A target that cannot be reached.
    struct Down;

    #[async_trait]
    impl MailboxWriter for Down {
        fn describe(&self) -> String {
            "down".into()
        }
        async fn is_valid_user(&self, _: &Mailbox) -> Result<bool, WriteError> {
            Err(WriteError::Target("connection refused".into()))
        }
        async fn find_existing(
            &self,
            _: &Mailbox,
            _: &Item,
        ) -> Result<Option<Written>, WriteError> {
            Err(WriteError::Target("down".into()))
        }
        async fn write(&self, _: &Mailbox, _: &Copy<'_>) -> Result<Written, WriteError> {
            Err(WriteError::Target("down".into()))
        }
    }

    fn party(name: &str, mobile: Option<&str>, email: Option<&str>) -> serde_json::Value {
        serde_json::json!({"name": name, "mobile": mobile, "email": email, "wechat_id": name.to_lowercase()})
    }

    fn item(sender: serde_json::Value, others: Vec<serde_json::Value>) -> Item {
        let mut participants = vec![sender.clone()];
        participants.extend(others);
        serde_json::from_value(serde_json::json!({
            "id": "itm_1", "platform": "wechat", "type": "chat",
            "conversation": {"id": "c1", "kind": "group", "title": "t"},
            "sent_at": "2026-11-22T08:15:00Z", "archived_at": "2026-11-22T08:15:03Z",
            "sender": sender, "participants": participants,
            "size": 10, "sha256": "00"
        }))
        .unwrap()
    }

    fn table(rows: &[(&str, &str)]) -> MappingTable {
        MappingTable::from_pairs(rows.iter().map(|(n, m)| {
            (
                E164::parse_canonical(n).unwrap(),
                Mailbox::parse(m).unwrap(),
            )
        }))
    }

    fn names(r: &Resolution) -> Vec<&str> {
        r.mailboxes.iter().map(Mailbox::as_str).collect()
    }

    #[tokio::test]
    async fn the_csv_mailbox_wins_over_the_telemessage_email() {
        let users = Users::new(&["li.wei@contoso.com", "lw@contoso.com"]);
        let resolver = Resolver::new(
            Some(table(&[("+8613800138000", "li.wei@contoso.com")])),
            true,
        );
        let it = item(
            party("Li Wei", Some("+8613800138000"), Some("lw@contoso.com")),
            vec![],
        );
        let r = resolver.resolve(&it, &users).await.unwrap();
        assert_eq!(names(&r), ["li.wei@contoso.com"]);
        assert!(r.unmapped.is_empty());
    }

    #[tokio::test]
    async fn an_invalid_csv_mailbox_falls_through_to_the_email_then_to_unmapped() {
        let users = Users::new(&["lw@contoso.com"]);
        let mapping = table(&[("+8613800138000", "gone@contoso.com")]);
        let it = item(
            party("Li Wei", Some("+8613800138000"), Some("lw@contoso.com")),
            vec![],
        );

        let r = Resolver::new(Some(mapping.clone()), true)
            .resolve(&it, &users)
            .await
            .unwrap();
        assert_eq!(names(&r), ["lw@contoso.com"]);

        let r = Resolver::new(Some(mapping), false)
            .resolve(&it, &users)
            .await
            .unwrap();
        assert!(r.is_unmapped());
        assert_eq!(r.unmapped.len(), 1);
        let reason = &r.unmapped[0].reason;
        assert!(
            reason.contains("gone@contoso.com, which is not a user of test-target"),
            "{reason}"
        );
        assert!(reason.contains("automatic mapping is off"), "{reason}");
    }

    #[tokio::test]
    async fn automatic_mapping_needs_a_valid_user_and_can_be_off() {
        let users = Users::new(&["zhang.min@contoso.com"]);
        let it = item(
            party(
                "Zhang Min",
                Some("+85291234567"),
                Some("zhang.min@contoso.com"),
            ),
            vec![
                party("Outsider", None, Some("someone@gmail.com")),
                party("Anon", None, None),
            ],
        );
        let r = Resolver::new(None, true)
            .resolve(&it, &users)
            .await
            .unwrap();
        assert_eq!(names(&r), ["zhang.min@contoso.com"]);
        let unmapped: Vec<&str> = r.unmapped.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(unmapped, ["Outsider", "Anon"]);
        assert!(r.unmapped[0].reason.contains("not a user of test-target"));
        assert!(r.unmapped[1].reason.contains("no e-mail"));

        let r = Resolver::new(None, false)
            .resolve(&it, &users)
            .await
            .unwrap();
        assert!(r.is_unmapped());
        assert_eq!(r.unmapped.len(), 3);
    }

    #[tokio::test]
    async fn duplicates_across_participants_collapse_case_insensitively() {
        let users = Users::new(&["li.wei@contoso.com", "zhang.min@contoso.com"]);
        let mapping = table(&[
            ("+8613800138000", "Li.Wei@Contoso.com"),
            ("+8613900139000", "li.wei@contoso.com"),
        ]);
        let it = item(
            party("Li Wei", Some("+8613800138000"), None),
            vec![
                party("Li Wei (2nd phone)", Some("+8613900139000"), None),
                party("Zhang Min", None, Some("zhang.min@contoso.com")),
                party("Li Wei by mail", None, Some("LI.WEI@contoso.com")),
            ],
        );
        let resolver = Resolver::new(Some(mapping), true);
        let r = resolver.resolve(&it, &users).await.unwrap();
        assert_eq!(names(&r), ["Li.Wei@Contoso.com", "zhang.min@contoso.com"]);
        assert!(r.unmapped.is_empty());
        assert_eq!(
            users.asked.load(Ordering::SeqCst),
            2,
            "each address asked once"
        );
        resolver.resolve(&it, &users).await.unwrap();
        assert_eq!(users.asked.load(Ordering::SeqCst), 2, "cached across items");
    }

    #[tokio::test]
    async fn participant_numbers_not_in_e164_are_read_in_the_mapping_region() {
        let users = Users::new(&["li.wei@contoso.com"]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mapping.csv");
        std::fs::write(&path, "mobile,email\n138 0013 8000,li.wei@contoso.com\n").unwrap();
        let mapping = crate::mapping::load(&path, Some("CN")).unwrap();
        let it = item(party("Li Wei", Some("0086 138-0013-8000"), None), vec![]);
        let r = Resolver::new(Some(mapping), false)
            .resolve(&it, &users)
            .await
            .unwrap();
        assert_eq!(names(&r), ["li.wei@contoso.com"]);
    }

    /// Answers for one address with an error of that lookup only.
    struct RefusesOne;

    #[async_trait]
    impl MailboxWriter for RefusesOne {
        fn describe(&self) -> String {
            "graph".into()
        }
        async fn is_valid_user(&self, mailbox: &Mailbox) -> Result<bool, WriteError> {
            match mailbox.as_str() {
                "odd@contoso.com" => Err(WriteError::Copy("Graph answered 400".into())),
                _ => Ok(true),
            }
        }
        async fn find_existing(
            &self,
            _: &Mailbox,
            _: &Item,
        ) -> Result<Option<Written>, WriteError> {
            Ok(None)
        }
        async fn write(&self, _: &Mailbox, _: &Copy<'_>) -> Result<Written, WriteError> {
            Err(WriteError::Target("resolution never writes".into()))
        }
    }

    #[tokio::test]
    async fn a_lookup_error_for_one_participant_spares_the_others() {
        let resolver = Resolver::new(None, true);
        let it = item(
            party("Odd", None, Some("odd@contoso.com")),
            vec![party("Li Wei", None, Some("li.wei@contoso.com"))],
        );
        let r = resolver.resolve(&it, &RefusesOne).await.unwrap();
        assert_eq!(names(&r), ["li.wei@contoso.com"]);
        let failure = r.lookup_failure().expect("the failed lookup is kept");
        assert!(
            failure.contains("odd@contoso.com: Graph answered 400"),
            "{failure}"
        );
        assert!(!r.is_unmapped());
    }

    #[tokio::test]
    async fn a_target_that_cannot_answer_fails_the_resolution() {
        let resolver = Resolver::new(None, true);
        let it = item(party("Li Wei", None, Some("li.wei@contoso.com")), vec![]);
        assert!(matches!(
            resolver.resolve(&it, &Down).await,
            Err(WriteError::Target(_))
        ));
    }
}
