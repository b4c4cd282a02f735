//! Listing a folder's messages and reading a folder, as Graph v1.0 does:
//! `$filter` in the documented forms, `$expand` of the extended
//! properties (only those the `$filter` inside it names), `$select` of
//! `internetMessageHeaders` (returned only when selected), `$orderby=
//! createdDateTime desc`, and pages of `$top` (at most 1,000, and at most
//! the configured page size) with an `@odata.nextLink` carrying `$skip`
//! while more remain.

use std::collections::HashMap;

use axum::response::Response;
use serde_json::{Value, json};

use super::api::{message_json, not_found_item, ok};
use super::error;
use super::model::{State, StoredMessage};
use super::odata::{self, Filter};

/// Graph's largest page of messages.
const MAX_TOP: usize = 1000;

/// `GET /users/{id}/mailFolders/{id}`: the folder with its item count.
pub fn get_folder(st: &State, user: &str, folder: &str) -> Response {
    let Some(f) = st
        .folders
        .iter()
        .find(|f| f.user_id == user && f.id == folder)
    else {
        return not_found_item();
    };
    let total = in_folder(st, user, folder).count();
    ok(json!({
        "id": f.id,
        "displayName": f.display_name,
        "parentFolderId": f.parent_id,
        "totalItemCount": total,
    }))
}

fn in_folder<'a>(
    st: &'a State,
    user: &'a str,
    folder: &'a str,
) -> impl Iterator<Item = &'a StoredMessage> {
    st.messages
        .iter()
        .filter(move |m| m.user_id == user && m.folder_id == folder && !m.deleted)
}

pub fn list_messages(
    st: &State,
    user: &str,
    folder: &str,
    q: &HashMap<String, String>,
    page_size: usize,
) -> Response {
    if !st
        .folders
        .iter()
        .any(|f| f.user_id == user && f.id == folder)
    {
        return not_found_item();
    }
    let filter = match q.get("$filter") {
        None => None,
        Some(f) => match odata::parse(f) {
            Some(f @ (Filter::ExtendedProperty { .. } | Filter::InternetMessageId(_))) => Some(f),
            _ => return invalid_filter(),
        },
    };
    let newest_first = match q.get("$orderby").map(|o| o.trim().to_ascii_lowercase()) {
        None => false,
        Some(o) if o == "createddatetime desc" => true,
        Some(_) => return invalid_filter(),
    };
    // Graph: the property id's Name is case-sensitive, its value is not.
    let matches = |m: &StoredMessage| match &filter {
        None => true,
        Some(Filter::ExtendedProperty { id, value }) => m
            .extended
            .iter()
            .any(|(k, v)| k == id && v.to_lowercase() == value.to_lowercase()),
        Some(Filter::InternetMessageId(id)) => {
            m.internet_message_id.as_deref() == Some(id.as_str())
        }
        Some(_) => false,
    };
    let wanted: Option<Vec<String>> = q.get("$expand").map(|e| {
        odata::literals_and_shape(e)
            .map(|(lits, _)| lits)
            .unwrap_or_default()
    });
    let headers = q
        .get("$select")
        .is_some_and(|s| s.split(',').any(|p| p.trim() == "internetMessageHeaders"));
    let top: usize = q
        .get("$top")
        .and_then(|t| t.parse().ok())
        .unwrap_or(10)
        .min(MAX_TOP)
        .min(page_size.max(1));
    let skip: usize = q.get("$skip").and_then(|t| t.parse().ok()).unwrap_or(0);
    let mut all: Vec<&StoredMessage> = in_folder(st, user, folder).filter(|m| matches(m)).collect();
    if newest_first {
        // Stored in creation order.
        all.reverse();
    }
    let value: Vec<Value> = all
        .iter()
        .skip(skip)
        .take(top)
        .map(|m| listed_json(m, wanted.as_deref(), headers))
        .collect();
    let mut page = json!({ "value": value });
    if skip + top < all.len() {
        page["@odata.nextLink"] = json!(next_link(st, user, folder, q, skip + top));
    }
    ok(page)
}

fn invalid_filter() -> Response {
    error(
        400,
        "ErrorInvalidUrlQueryFilter",
        "The query filter contains one or more invalid nodes.",
    )
}

fn listed_json(m: &StoredMessage, wanted: Option<&[String]>, headers: bool) -> Value {
    let mut v = message_json(m, false);
    if let Some(ids) = wanted {
        let props: Vec<Value> = m
            .extended
            .iter()
            .filter(|(k, _)| ids.is_empty() || ids.iter().any(|i| i.eq_ignore_ascii_case(k)))
            .map(|(id, value)| json!({"id": id, "value": value}))
            .collect();
        if !props.is_empty() {
            v["singleValueExtendedProperties"] = json!(props);
        }
    }
    if headers {
        v["internetMessageHeaders"] = json!(
            m.headers
                .iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect::<Vec<_>>()
        );
    }
    v
}

/// The same query from `skip` on, under the simulator's root.
fn next_link(
    st: &State,
    user: &str,
    folder: &str,
    q: &HashMap<String, String>,
    skip: usize,
) -> String {
    let mut url = reqwest::Url::parse(&format!(
        "{}/v1.0/users/{user}/mailFolders/{folder}/messages",
        st.base
    ))
    .expect("simulator URL");
    {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in q.iter().filter(|(k, _)| k.as_str() != "$skip") {
            pairs.append_pair(k, v);
        }
        pairs.append_pair("$skip", &skip.to_string());
    }
    url.to_string()
}
