//! The Graph resources the simulator serves, with the documented answers.

use std::collections::HashMap;
use std::time::Instant;

use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::listing;
use super::model::{Folder, MailboxKind, Session, State, StoredAttachment, StoredMessage, Via};
use super::odata::{self, Filter};
use super::{Sim, error, percent_decode};

const CHUNK_UNIT: usize = 320 * 1024;

fn created(value: Value) -> Response {
    (axum::http::StatusCode::CREATED, axum::Json(value)).into_response()
}

pub(super) fn ok(value: Value) -> Response {
    axum::Json(value).into_response()
}

pub(super) fn query_map(query: &str) -> HashMap<String, String> {
    let url = reqwest::Url::parse(&format!("http://q/?{query}")).expect("query");
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn route(
    sim: &Sim,
    st: &mut State,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let segs: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let q = query_map(query);
    if segs.len() == 4
        && segs[1] == "oauth2"
        && segs[2] == "v2.0"
        && segs[3] == "token"
        && *method == Method::POST
    {
        return super::identity::token(sim, st, segs[0], body);
    }
    if segs == ["introspect"] && *method == Method::POST {
        return super::identity::introspect(st, body);
    }
    if let ["upload", user, message, session] = segs.as_slice() {
        return upload_chunk(sim, st, user, message, session, &q, headers, body);
    }
    let Some(rest) = segs.strip_prefix(&["v1.0"]) else {
        return error(404, "UnknownPath", path);
    };
    if let Err(resp) = check_token(st, headers) {
        return resp;
    }
    if body.len() > sim.config.max_request_bytes {
        st.stats.oversize_requests += 1;
        return error(
            413,
            "RequestEntityTooLarge",
            "The request body is larger than 4 MB.",
        );
    }
    match (method.clone(), rest) {
        (Method::GET, ["users"]) => user_by_alias(sim, st, &q, headers),
        (Method::GET, ["users", key]) => user_by_key(sim, st, key),
        (_, ["users", key, more @ ..]) => {
            let user_id = match mailbox_user(st, key) {
                Ok(id) => id,
                Err(resp) => return resp,
            };
            mailbox_route(sim, st, method, &user_id, more, &q, body)
        }
        _ => error(400, "BadRequest", &format!("unsupported {method} {path}")),
    }
}

fn check_token(st: &mut State, headers: &HeaderMap) -> Result<(), Response> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let valid = token
        .and_then(|t| st.tokens.get(t))
        .is_some_and(|exp| *exp > Instant::now());
    if valid {
        Ok(())
    } else {
        st.stats.rejected_tokens += 1;
        Err(error(
            401,
            "InvalidAuthenticationToken",
            "Access token is empty, invalid or has expired.",
        ))
    }
}

fn user_json(u: &super::SimUser) -> Value {
    json!({"id": u.id, "mail": u.address, "userPrincipalName": u.address})
}

fn user_by_key(sim: &Sim, st: &State, key: &str) -> Response {
    if sim.config.directory_forbidden {
        return error(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        );
    }
    // Graph finds users by id or userPrincipalName here, not by alias.
    match st
        .users
        .iter()
        .find(|u| u.id == key || u.address.eq_ignore_ascii_case(key))
    {
        Some(u) => ok(user_json(u)),
        None => error(
            404,
            "Request_ResourceNotFound",
            &format!("Resource '{key}' does not exist."),
        ),
    }
}

fn user_by_alias(
    sim: &Sim,
    st: &State,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    if sim.config.directory_forbidden {
        return error(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        );
    }
    let Some(Filter::ProxyAddress(addr)) = q.get("$filter").and_then(|f| odata::parse(f)) else {
        return error(400, "Request_UnsupportedQuery", "Unsupported query.");
    };
    let eventual = headers
        .get("consistencylevel")
        .is_some_and(|v| v == "eventual");
    if !eventual || q.get("$count").map(String::as_str) != Some("true") {
        return error(
            400,
            "Request_UnsupportedQuery",
            "This query needs ConsistencyLevel: eventual and $count=true.",
        );
    }
    let wanted = addr.to_lowercase();
    let Some(bare) = wanted.strip_prefix("smtp:") else {
        return ok(json!({"@odata.count": 0, "value": []}));
    };
    let found: Vec<Value> = st
        .users
        .iter()
        .filter(|u| {
            u.address.eq_ignore_ascii_case(bare)
                || u.aliases.iter().any(|a| a.eq_ignore_ascii_case(bare))
        })
        .map(user_json)
        .collect();
    ok(json!({"@odata.count": found.len(), "value": found}))
}

fn mailbox_user(st: &State, key: &str) -> Result<String, Response> {
    let Some(u) = st.user(key) else {
        return Err(error(
            404,
            "ErrorInvalidUser",
            &format!("The requested user '{key}' is invalid."),
        ));
    };
    match u.mailbox {
        MailboxKind::Enabled => Ok(u.id.clone()),
        MailboxKind::NoMailbox => Err(error(
            404,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        )),
        MailboxKind::Denied => Err(error(
            403,
            "ErrorAccessDenied",
            "Access to OData is disabled: blocked by tenant configured AppOnly AccessPolicy settings.",
        )),
    }
}

fn mailbox_route(
    sim: &Sim,
    st: &mut State,
    method: &Method,
    user: &str,
    more: &[&str],
    q: &HashMap<String, String>,
    body: &[u8],
) -> Response {
    let root = State::root_id(user);
    match (method.clone(), more) {
        (Method::GET, ["mailFolders", "msgfolderroot"]) => {
            ok(json!({"id": root, "displayName": "Top of Information Store"}))
        }
        (Method::POST, ["mailFolders"]) => create_folder(sim, st, user, &root, body),
        (Method::GET, ["mailFolders"]) => list_folders(st, user, &root, q),
        (Method::POST, ["mailFolders", parent, "childFolders"]) => {
            let parent = if *parent == "msgfolderroot" {
                root.clone()
            } else {
                (*parent).to_owned()
            };
            create_folder(sim, st, user, &parent, body)
        }
        (Method::GET, ["mailFolders", parent, "childFolders"]) => {
            let parent = if *parent == "msgfolderroot" {
                root.clone()
            } else {
                (*parent).to_owned()
            };
            list_folders(st, user, &parent, q)
        }
        (Method::POST, ["mailFolders", folder, "messages"]) => {
            create_message(sim, st, user, folder, body)
        }
        (Method::GET, ["mailFolders", folder, "messages"]) => {
            listing::list_messages(st, user, folder, q, sim.config.messages_page_size)
        }
        (Method::GET, ["mailFolders", folder]) if *folder != "msgfolderroot" => {
            listing::get_folder(st, user, folder)
        }
        (Method::GET, ["messages", id]) => match find_message(st, user, id) {
            Some(m) => ok(message_json(m, true)),
            None => not_found_item(),
        },
        (Method::DELETE, ["messages", id]) => match st
            .messages
            .iter_mut()
            .find(|m| m.user_id == user && m.id == *id && !m.deleted)
        {
            Some(m) => {
                m.deleted = true;
                axum::http::StatusCode::NO_CONTENT.into_response()
            }
            None => not_found_item(),
        },
        (Method::GET, ["messages", id, "attachments"]) => list_attachments(sim, st, user, id, q),
        (Method::GET, ["messages", id, "attachments", attachment, "$value"]) => {
            match find_message(st, user, id)
                .and_then(|m| m.attachments.iter().find(|a| a.id == *attachment))
            {
                Some(a) => (
                    [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
                    a.bytes.clone(),
                )
                    .into_response(),
                None => not_found_item(),
            }
        }
        (Method::POST, ["messages", id, "attachments"]) => post_attachment(sim, st, user, id, body),
        (Method::POST, ["messages", id, "attachments", "createUploadSession"]) => {
            create_session(sim, st, user, id, body)
        }
        _ => error(
            400,
            "BadRequest",
            &format!("unsupported {method} /users/{user}/{}", more.join("/")),
        ),
    }
}

pub(super) fn not_found_item() -> Response {
    error(
        404,
        "ErrorItemNotFound",
        "The specified object was not found in the store.",
    )
}

/// A page of a message's attachments, with `@odata.nextLink` while more
/// remain; `$top` is refused as the v1.0 metadata marks it unsupported.
fn list_attachments(
    sim: &Sim,
    st: &mut State,
    user: &str,
    id: &str,
    q: &HashMap<String, String>,
) -> Response {
    if q.contains_key("$top") {
        st.stats.unsupported_queries += 1;
        return error(
            400,
            "BadRequest",
            "Query option '$top' is not allowed on message attachments.",
        );
    }
    let Some(m) = find_message(st, user, id) else {
        return not_found_item();
    };
    let skip: usize = q
        .get("$skiptoken")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let size = sim.config.attachments_page_size.max(1);
    let value: Vec<Value> = m
        .attachments
        .iter()
        .skip(skip)
        .take(size)
        .map(|a| {
            json!({
                "id": a.id, "name": a.name, "size": a.bytes.len(),
                "contentType": a.content_type, "isInline": a.is_inline
            })
        })
        .collect();
    let mut page = json!({ "value": value });
    if skip + size < m.attachments.len() {
        page["@odata.nextLink"] = json!(format!(
            "{}/v1.0/users/{user}/messages/{id}/attachments?$select=id&$skiptoken={}",
            st.base,
            skip + size
        ));
    }
    ok(page)
}

fn find_message<'a>(st: &'a State, user: &str, id: &str) -> Option<&'a StoredMessage> {
    st.messages
        .iter()
        .find(|m| m.user_id == user && m.id == id && !m.deleted)
}

fn create_folder(sim: &Sim, st: &mut State, user: &str, parent: &str, body: &[u8]) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return error(400, "RequestBodyRead", "not JSON");
    };
    let Some(name) = v.get("displayName").and_then(Value::as_str) else {
        return error(400, "ErrorInvalidRequest", "displayName is required");
    };
    let exists = st.folders.iter().any(|f| {
        f.user_id == user
            && f.parent_id == parent
            && f.display_name.to_lowercase() == name.to_lowercase()
    });
    if exists {
        return error(
            sim.config.folder_exists_status,
            "ErrorFolderExists",
            "A folder with the specified name already exists.",
        );
    }
    st.stats.folder_creates += 1;
    let id = st.id("folder-");
    st.folders.push(Folder {
        id: id.clone(),
        user_id: user.to_owned(),
        parent_id: parent.to_owned(),
        display_name: name.to_owned(),
    });
    created(json!({"id": id, "displayName": name, "parentFolderId": parent}))
}

fn list_folders(st: &State, user: &str, parent: &str, q: &HashMap<String, String>) -> Response {
    let filter = match q.get("$filter") {
        None => None,
        Some(f) => match odata::parse(f) {
            Some(Filter::DisplayName(n)) => Some(n),
            _ => {
                return error(
                    400,
                    "ErrorInvalidUrlQueryFilter",
                    "The query filter contains one or more invalid nodes.",
                );
            }
        },
    };
    let value: Vec<Value> = st
        .folders
        .iter()
        .filter(|f| f.user_id == user && f.parent_id == parent)
        .filter(|f| {
            filter
                .as_ref()
                .is_none_or(|n| n.to_lowercase() == f.display_name.to_lowercase())
        })
        .map(|f| json!({"id": f.id, "displayName": f.display_name, "parentFolderId": f.parent_id}))
        .collect();
    ok(json!({"value": value}))
}

fn extended_number(id: &str) -> Option<(String, u32)> {
    let (kind, tag) = id.split_once(' ')?;
    let tag = tag
        .trim()
        .strip_prefix("0x")
        .or_else(|| tag.trim().strip_prefix("0X"))?;
    Some((kind.to_lowercase(), u32::from_str_radix(tag, 16).ok()?))
}

fn emails(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["emailAddress"]["address"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A `fileAttachment` from JSON, or the answer refusing it.
fn file_attachment(
    sim: &Sim,
    st: &mut State,
    v: &Value,
    via: Via,
) -> Result<StoredAttachment, Response> {
    if v["@odata.type"].as_str() != Some("#microsoft.graph.fileAttachment") {
        return Err(error(
            400,
            "ErrorInvalidRequest",
            "only fileAttachment is supported",
        ));
    }
    let bytes = v["contentBytes"]
        .as_str()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .ok_or_else(|| error(400, "ErrorInvalidRequest", "contentBytes is not base64"))?;
    if bytes.len() > sim.config.max_inline_attachment {
        st.stats.oversize_inline_attachments += 1;
        return Err(error(
            413,
            "ErrorAttachmentSizeLimitExceeded",
            "Attachments over 3 MB need an upload session.",
        ));
    }
    Ok(StoredAttachment {
        id: st.id("att-"),
        name: v["name"].as_str().unwrap_or("").to_owned(),
        content_type: v["contentType"].as_str().unwrap_or("").to_owned(),
        is_inline: v["isInline"].as_bool().unwrap_or(false),
        content_id: v["contentId"].as_str().map(str::to_owned),
        bytes,
        via,
    })
}

fn create_message(sim: &Sim, st: &mut State, user: &str, folder: &str, body: &[u8]) -> Response {
    if !st
        .folders
        .iter()
        .any(|f| f.user_id == user && f.id == folder)
    {
        return not_found_item();
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return error(400, "RequestBodyRead", "not JSON");
    };
    let headers: Vec<(String, String)> = v["internetMessageHeaders"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|h| {
                    (
                        h["name"].as_str().unwrap_or("").to_owned(),
                        h["value"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if headers.len() > 5
        || headers
            .iter()
            .any(|(n, _)| !n.to_lowercase().starts_with("x-"))
    {
        st.stats.bad_headers += 1;
        return error(
            400,
            "InvalidInternetMessageHeader",
            "The internet message header name should start with 'x-' or 'X-'; at most 5 are allowed.",
        );
    }
    let extended: Vec<(String, String)> = v["singleValueExtendedProperties"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p["id"].as_str().unwrap_or("").to_owned(),
                        p["value"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let tagged = |kind: &str, tag: u32| {
        extended
            .iter()
            .find(|(id, _)| extended_number(id) == Some((kind.to_owned(), tag)))
            .map(|(_, v)| v.clone())
    };
    let flags = tagged("integer", 0x0E07).and_then(|v| v.parse::<i64>().ok());
    let mut attachments = Vec::new();
    for a in v["attachments"].as_array().cloned().unwrap_or_default() {
        match file_attachment(sim, st, &a, Via::InCreate) {
            Ok(att) => attachments.push(att),
            Err(resp) => return resp,
        }
    }
    let message = StoredMessage {
        id: st.id("AAMkAG-msg-"),
        user_id: user.to_owned(),
        folder_id: folder.to_owned(),
        // Without PidTagMessageFlags at creation Graph makes a draft.
        is_draft: flags.is_none_or(|f| f & 0x8 != 0),
        message_flags: flags,
        received: tagged("systemtime", 0x0E06),
        sent: tagged("systemtime", 0x0039),
        subject: v["subject"].as_str().unwrap_or("").to_owned(),
        body_type: v["body"]["contentType"]
            .as_str()
            .unwrap_or("text")
            .to_owned(),
        body: v["body"]["content"].as_str().unwrap_or("").to_owned(),
        from: v["from"]["emailAddress"]["address"]
            .as_str()
            .map(str::to_owned),
        to: emails(&v["toRecipients"]),
        cc: emails(&v["ccRecipients"]),
        internet_message_id: v["internetMessageId"].as_str().map(str::to_owned),
        headers,
        extended,
        attachments,
        deleted: false,
    };
    let answer = message_json(&message, false);
    st.messages.push(message);
    created(answer)
}

pub(super) fn message_json(m: &StoredMessage, with_extended: bool) -> Value {
    let mut v = json!({
        "id": m.id,
        "isDraft": m.is_draft,
        "subject": m.subject,
        "receivedDateTime": m.received,
        "sentDateTime": m.sent,
        "internetMessageId": m.internet_message_id,
        "hasAttachments": !m.attachments.is_empty(),
        "parentFolderId": m.folder_id,
        "body": {"contentType": m.body_type, "content": m.body},
        "toRecipients": addresses(&m.to),
        "ccRecipients": addresses(&m.cc),
    });
    if let Some(from) = &m.from {
        v["from"] = json!({"emailAddress": {"address": from}});
    }
    if with_extended {
        v["singleValueExtendedProperties"] = json!(
            m.extended
                .iter()
                .map(|(id, value)| json!({"id": id, "value": value}))
                .collect::<Vec<_>>()
        );
    }
    v
}

fn addresses(list: &[String]) -> Value {
    json!(
        list.iter()
            .map(|a| json!({"emailAddress": {"address": a}}))
            .collect::<Vec<_>>()
    )
}

/// Refuses attachments on a received message when the test says Graph
/// does (the point Microsoft's documentation leaves open).
fn refuse_non_draft(sim: &Sim, st: &State, user: &str, id: &str) -> Result<(), Response> {
    let Some(m) = find_message(st, user, id) else {
        return Err(not_found_item());
    };
    if sim.config.refuse_attachments_on_non_draft && !m.is_draft {
        return Err(error(
            400,
            "ErrorInvalidOperation",
            "Attachments can only be added to draft messages.",
        ));
    }
    Ok(())
}

fn post_attachment(sim: &Sim, st: &mut State, user: &str, id: &str, body: &[u8]) -> Response {
    if let Err(resp) = refuse_non_draft(sim, st, user, id) {
        return resp;
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return error(400, "RequestBodyRead", "not JSON");
    };
    let att = match file_attachment(sim, st, &v, Via::Post) {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let answer = json!({"id": att.id, "name": att.name, "size": att.bytes.len()});
    let m = st
        .messages
        .iter_mut()
        .find(|m| m.id == id)
        .expect("checked");
    m.attachments.push(att);
    created(answer)
}

fn create_session(sim: &Sim, st: &mut State, user: &str, id: &str, body: &[u8]) -> Response {
    if let Err(resp) = refuse_non_draft(sim, st, user, id) {
        return resp;
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return error(400, "RequestBodyRead", "not JSON");
    };
    let item = if v["AttachmentItem"].is_object() {
        &v["AttachmentItem"]
    } else {
        &v["attachmentItem"]
    };
    if item["attachmentType"].as_str() != Some("file") {
        return error(400, "ErrorInvalidRequest", "attachmentType must be file");
    }
    let Some(size) = item["size"].as_u64().filter(|s| *s > 0) else {
        return error(400, "ErrorInvalidRequest", "size is required");
    };
    if size > sim.config.max_attachment {
        return error(
            400,
            "ErrorAttachmentSizeLimitExceeded",
            "Attachments are limited to 150 MB.",
        );
    }
    st.stats.upload_sessions += 1;
    let session_id = st.id("session-");
    let token = st.id("upload-token-");
    st.sessions.insert(
        session_id.clone(),
        Session {
            user_id: user.to_owned(),
            message_id: id.to_owned(),
            token: token.clone(),
            name: item["name"].as_str().unwrap_or("").to_owned(),
            content_type: item["contentType"]
                .as_str()
                .unwrap_or("application/octet-stream")
                .to_owned(),
            is_inline: item["isInline"].as_bool().unwrap_or(false),
            content_id: item["contentId"].as_str().map(str::to_owned),
            size,
            received: Vec::new(),
        },
    );
    let url = format!(
        "{}/upload/{user}/{id}/{session_id}?authtoken={token}",
        st.base
    );
    created(
        json!({"uploadUrl": url, "expirationDateTime": "2099-01-01T00:00:00Z", "nextExpectedRanges": ["0-"]}),
    )
}

#[allow(clippy::too_many_arguments)]
fn upload_chunk(
    sim: &Sim,
    st: &mut State,
    user: &str,
    message: &str,
    session_id: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if headers.contains_key("authorization") {
        st.stats.authorization_on_upload += 1;
        return error(
            400,
            "InvalidAuthenticationHeader",
            "The upload URL is pre-authenticated; do not send an Authorization header.",
        );
    }
    let Some(session) = st.sessions.get(session_id).cloned() else {
        return error(
            404,
            "ErrorItemNotFound",
            "upload session not found or finished",
        );
    };
    if q.get("authtoken") != Some(&session.token)
        || session.user_id != user
        || session.message_id != message
    {
        return error(
            401,
            "InvalidAuthenticationToken",
            "upload URL token is not valid",
        );
    }
    if body.len() > sim.config.max_request_bytes {
        st.stats.oversize_requests += 1;
        return error(
            413,
            "RequestEntityTooLarge",
            "Each range must be under 4 MB.",
        );
    }
    let range = headers
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_range);
    let Some((start, end, total)) = range else {
        st.stats.chunk_rule_violations += 1;
        return error(
            400,
            "InvalidContentRange",
            "Content-Range must be 'bytes start-end/total'.",
        );
    };
    let next = session.received.len() as u64;
    let final_chunk = end + 1 == total;
    let unit_ok = final_chunk || body.len().is_multiple_of(CHUNK_UNIT);
    if total != session.size
        || start != next
        || end < start
        || end - start + 1 != body.len() as u64
        || end >= total
        || !unit_ok
    {
        st.stats.chunk_rule_violations += 1;
        return error(
            400,
            "InvalidContentRange",
            &format!(
                "expected a range from {next} of {} bytes, in multiples of 320 KiB",
                session.size
            ),
        );
    }
    st.stats.upload_chunks.push(body.len());
    let session = st.sessions.get_mut(session_id).expect("present");
    session.received.extend_from_slice(body);
    if !final_chunk {
        let next = session.received.len();
        return ok(
            json!({"expirationDateTime": "2099-01-01T00:00:00Z", "nextExpectedRanges": [next.to_string()]}),
        );
    }
    let session = st.sessions.remove(session_id).expect("present");
    let att_id = st.id("att-");
    let Some(m) = st
        .messages
        .iter_mut()
        .find(|m| m.id == message && !m.deleted)
    else {
        return not_found_item();
    };
    m.attachments.push(StoredAttachment {
        id: att_id.clone(),
        name: session.name,
        content_type: session.content_type,
        is_inline: session.is_inline,
        content_id: session.content_id,
        bytes: session.received,
        via: Via::UploadSession,
    });
    let location = format!(
        "{}/v1.0/users/{user}/messages/{message}/attachments/{att_id}",
        st.base
    );
    let mut resp = created(json!({}));
    resp.headers_mut()
        .insert("Location", location.parse().expect("header"));
    resp
}

fn parse_range(v: &str) -> Option<(u64, u64, u64)> {
    let rest = v.strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    Some((start.parse().ok()?, end.parse().ok()?, total.parse().ok()?))
}
