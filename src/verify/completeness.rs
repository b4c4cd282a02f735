//! Completeness (API connectors): the window listed again from TeleMessage
//! and every item accounted for from the ledger: archived in every mailbox
//! it belongs in, unmapped, failed, gone, or missing (never seen). A
//! recalled item's original must be archived too.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::VerifyError;
use super::report::{Completeness, Finding, FindingKind, VerifyReport};
use crate::ledger::Ledger;
use crate::mailbox::MailboxWriter;
use crate::mapping::Resolver;
use crate::sync::Progress;
use crate::telemessage::{Client, Item, ItemType};
use crate::types::{ItemId, Mailbox};

/// What completeness needs: the source, and what decides the mailboxes.
pub struct Sources<'a> {
    pub client: &'a Client,
    pub resolver: &'a Resolver,
    pub writer: &'a dyn MailboxWriter,
    pub ledger: &'a Ledger,
    pub fallback_mailbox: Option<&'a Mailbox>,
}

/// Lists `[since, until)` and accounts for each item.
pub async fn check(
    sources: &Sources<'_>,
    connector: &str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    progress: Option<&dyn Progress>,
    report: &mut VerifyReport,
) -> Result<(), VerifyError> {
    let mut figures = Completeness::default();
    let mut seen = HashSet::<ItemId>::new();
    let mut listing = sources.client.list(since, until);
    while let Some(page) = listing.next_page().await? {
        if let Some(p) = progress {
            p.listed(page.len() as u64, 0);
        }
        for item in page {
            if let Some(p) = progress {
                p.item_done(0);
            }
            if !seen.insert(item.id.clone()) {
                continue;
            }
            figures.listed += 1;
            account(sources, connector, &item, &mut figures, report).await?;
            check_recall(sources, connector, &item, &mut figures, report)?;
        }
    }
    report.completeness = Some(figures);
    Ok(())
}

/// Accounts for one listed item.
async fn account(
    sources: &Sources<'_>,
    connector: &str,
    item: &Item,
    figures: &mut Completeness,
    report: &mut VerifyReport,
) -> Result<(), VerifyError> {
    let state = sources.ledger.item_state(connector, &item.id)?;
    let Some((state, _)) = state else {
        figures.missing += 1;
        let detail = format!(
            "TeleMessage holds this {} (archived {}) but the ledger never saw it: run sync over its time",
            item.kind,
            item.archived_at.to_rfc3339()
        );
        report.add(Finding::new(FindingKind::ItemMissing, detail).item(item.id.as_str()));
        return Ok(());
    };
    match state.as_str() {
        "unmapped" => figures.unmapped += 1,
        "failed" => figures.failed += 1,
        "gone" => figures.gone += 1,
        _ => {
            let lacking = lacking_mailboxes(sources, connector, item).await?;
            match lacking {
                Ok(lacking) if lacking.is_empty() => figures.archived += 1,
                Ok(lacking) => {
                    figures.incomplete += 1;
                    for mailbox in lacking {
                        let detail = format!("archived, but {mailbox} has no copy of it");
                        report.add(
                            Finding::new(FindingKind::ItemIncomplete, detail)
                                .item(item.id.as_str())
                                .mailbox(mailbox.key()),
                        );
                    }
                }
                Err(why) => report.add(
                    Finding::new(
                        FindingKind::Unchecked,
                        format!("cannot resolve its mailboxes: {why}"),
                    )
                    .item(item.id.as_str()),
                ),
            }
        }
    }
    Ok(())
}

/// The mailboxes the item belongs in (by the mapping now) without a copy
/// in the ledger; the resolver's error when it cannot say.
async fn lacking_mailboxes(
    sources: &Sources<'_>,
    connector: &str,
    item: &Item,
) -> Result<Result<Vec<Mailbox>, String>, VerifyError> {
    let resolution = match sources.resolver.resolve(item, sources.writer).await {
        Ok(r) => r,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let mut wanted = resolution.mailboxes;
    if wanted.is_empty() {
        wanted.extend(sources.fallback_mailbox.cloned());
    }
    let copies = sources.ledger.copies_of(connector, &item.id)?;
    Ok(Ok(wanted
        .into_iter()
        .filter(|m| !copies.contains(m.key()))
        .collect()))
}

/// A recalled item whose original is not archived is reported.
fn check_recall(
    sources: &Sources<'_>,
    connector: &str,
    item: &Item,
    figures: &mut Completeness,
    report: &mut VerifyReport,
) -> Result<(), VerifyError> {
    if item.kind != ItemType::Recalled {
        return Ok(());
    }
    figures.recalls += 1;
    let Some(original) = item
        .recall
        .as_ref()
        .and_then(|r| r.original_item_id.as_deref())
    else {
        return Ok(());
    };
    let state = match ItemId::parse(original) {
        Ok(id) => sources.ledger.item_state(connector, &id)?.map(|(s, _)| s),
        Err(_) => None,
    };
    if state.as_deref() == Some("archived") {
        return Ok(());
    }
    figures.recalls_without_original += 1;
    let why = state.map_or("the ledger never saw it".to_owned(), |s| {
        format!("it is {s}")
    });
    report.add(
        Finding::new(
            FindingKind::RecallOriginalMissing,
            format!("recalls item {original}, whose original is not archived: {why}"),
        )
        .item(item.id.as_str()),
    );
    Ok(())
}
