//! A Microsoft Graph simulator on loopback that behaves as Microsoft
//! documents it, and fails requests that break the documented limits
//! (4 concurrent requests per mailbox, `Retry-After`, request and upload
//! budgets, 4 MB bodies, 3 MB inline attachments, upload-session chunk
//! rules, no `Authorization` on upload URLs), so a test that passes proves
//! the writer keeps to them.

#![allow(dead_code)]
// Handlers answer with the HTTP response itself, as axum does.
#![allow(clippy::result_large_err)]

mod api;
mod identity;
mod listing;
pub mod model;
pub mod odata;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State as AxumState};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub use model::{
    Fault, Folder, LogEntry, MailboxKind, SimConfig, SimUser, Stats, StoredMessage, Via,
};
use model::{Pause, State};

/// Largest body the simulator reads at all (it rejects >4 MB itself).
const READ_LIMIT: usize = 256 * 1024 * 1024;

pub struct Sim {
    pub config: SimConfig,
    pub state: Mutex<State>,
}

/// A running simulator; stops with the test's runtime.
pub struct GraphSim {
    pub url: String,
    pub sim: Arc<Sim>,
}

impl GraphSim {
    pub async fn start(config: SimConfig) -> GraphSim {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let sim = Arc::new(Sim {
            config,
            state: Mutex::new(State {
                base: url.clone(),
                ..State::default()
            }),
        });
        let app = axum::Router::new()
            .fallback(dispatch)
            .with_state(sim.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("graph simulator");
        });
        GraphSim { url, sim }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.sim.state.lock().expect("sim state")
    }

    /// Adds a user with an Exchange mailbox; returns its id.
    pub fn add_user(&self, address: &str, aliases: &[&str], mailbox: MailboxKind) -> String {
        let mut st = self.state();
        let id = format!(
            "{:08x}-0000-4000-8000-{:012x}",
            st.users.len() + 1,
            st.users.len() + 1
        );
        st.users.push(SimUser {
            id: id.clone(),
            address: address.to_owned(),
            aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
            mailbox,
        });
        id
    }

    /// A folder that exists before the writer comes (a rerun, or a user
    /// who made one of that name).
    pub fn add_folder(&self, address: &str, name: &str) -> String {
        let mut st = self.state();
        let user_id = st.user(address).expect("known user").id.clone();
        let id = st.id("folder-");
        st.folders.push(Folder {
            id: id.clone(),
            parent_id: State::root_id(&user_id),
            user_id,
            display_name: name.to_owned(),
        });
        id
    }

    pub fn inject(&self, fault: Fault) {
        self.state().faults.push(fault);
    }

    /// Invalidates every issued token, as Entra ID may before `expires_in`.
    pub fn revoke_tokens(&self) {
        self.state().tokens.clear();
    }

    /// Revokes every token when the `n`th token introspection (an IMAP
    /// login at Dovecot) has been answered: a token that dies mid-run.
    pub fn revoke_tokens_after_introspections(&self, n: u32) {
        self.state().revoke_after_introspections = Some(n);
    }

    /// Every IMAP token introspects as inactive, as when the tenant never
    /// registered the application's service principal in Exchange.
    pub fn withhold_imap_access(&self) {
        self.state().imap_access_withheld = true;
    }

    /// Tokens issued from now on live this long.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state().token_lifetime = Some(lifetime);
    }

    pub fn stats(&self) -> Stats {
        self.state().stats.clone()
    }

    pub fn log(&self) -> Vec<LogEntry> {
        self.state().log.clone()
    }

    /// Live (not deleted) messages in the named folder of a mailbox.
    pub fn messages(&self, address: &str, folder: &str) -> Vec<StoredMessage> {
        let st = self.state();
        let Some(user) = st.user(address) else {
            return Vec::new();
        };
        let folder_ids: Vec<&str> = st
            .folders
            .iter()
            .filter(|f| f.user_id == user.id && f.display_name.eq_ignore_ascii_case(folder))
            .map(|f| f.id.as_str())
            .collect();
        st.messages
            .iter()
            .filter(|m| !m.deleted && folder_ids.contains(&m.folder_id.as_str()))
            .cloned()
            .collect()
    }

    pub fn folders(&self, address: &str) -> Vec<Folder> {
        let st = self.state();
        let Some(user) = st.user(address) else {
            return Vec::new();
        };
        st.folders
            .iter()
            .filter(|f| f.user_id == user.id)
            .cloned()
            .collect()
    }

    /// Messages a client deleted (moved to Deleted Items).
    pub fn deleted(&self, address: &str) -> Vec<StoredMessage> {
        let st = self.state();
        let Some(user) = st.user(address) else {
            return Vec::new();
        };
        st.messages
            .iter()
            .filter(|m| m.deleted && m.user_id == user.id)
            .cloned()
            .collect()
    }

    /// Cuts a message's attachments down to `keep`, as a run that died
    /// between the create and the last upload leaves it.
    pub fn drop_attachments(&self, message_id: &str, keep: usize) {
        let mut st = self.state();
        if let Some(m) = st.messages.iter_mut().find(|m| m.id == message_id) {
            m.attachments.truncate(keep);
        }
    }

    /// Changes a stored message as a user or a tamperer would: edits it,
    /// moves it (`folder_id`), or deletes it for good (`deleted`).
    pub fn edit_message(&self, message_id: &str, edit: impl FnOnce(&mut StoredMessage)) {
        let mut st = self.state();
        let m = st.messages.iter_mut().find(|m| m.id == message_id);
        edit(m.unwrap_or_else(|| panic!("no message {message_id} in the Graph simulator")));
    }

    pub fn max_in_flight(&self, address: &str) -> usize {
        let st = self.state();
        let Some(user) = st.user(address) else {
            return 0;
        };
        st.stats.max_in_flight.get(&user.id).copied().unwrap_or(0)
    }
}

pub(crate) fn error(status: u16, code: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).expect("status");
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn throttled(status: u16, code: &str, retry_after: &str) -> Response {
    let mut resp = error(status, code, "Application is over its limit; retry later.");
    resp.headers_mut()
        .insert("Retry-After", retry_after.parse().expect("header value"));
    resp
}

/// The mailbox a path addresses: `/v1.0/users/{u}/<anything>` and
/// `/upload/{u}/...`. Directory reads (`/users/{u}` alone) are not mailbox
/// requests.
fn mailbox_of(st: &State, path: &str) -> Option<String> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let key = match segs.as_slice() {
        ["v1.0", "users", u, _, ..] => percent_decode(u),
        ["upload", u, ..] => percent_decode(u),
        _ => return None,
    };
    st.user(&key).map(|u| u.id.clone())
}

pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        if let (b'%', Some(Ok(b))) = (bytes[i], hex.map(|h| u8::from_str_radix(h, 16))) {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Admission at the mailbox: pauses, concurrency, budgets and injected
/// faults, in that order. `Err` is the throttling answer.
fn admit(
    sim: &Sim,
    st: &mut State,
    mailbox: &str,
    method: &Method,
    path: &str,
    body_len: u64,
) -> Result<(), Response> {
    let now = Instant::now();
    let cfg = &sim.config;
    if let Some(pause) = st.paused.get_mut(mailbox) {
        let until = pause.until;
        if until > now {
            // Requests already on their way when the answer went out are
            // not the client's fault; any beyond those are.
            match pause.grace.checked_sub(1) {
                Some(left) => pause.grace = left,
                None => st.stats.retry_after_violations += 1,
            }
            let wait = format!("{:.3}", (until - now).as_secs_f64());
            return Err(throttled(429, "ApplicationThrottled", &wait));
        }
        st.paused.remove(mailbox);
    }
    let in_flight = st.in_flight.entry(mailbox.to_owned()).or_default();
    *in_flight += 1;
    let n = *in_flight;
    let max = st
        .stats
        .max_in_flight
        .entry(mailbox.to_owned())
        .or_default();
    *max = (*max).max(n);
    if n > cfg.max_concurrency {
        st.stats.concurrency_violations += 1;
        *st.in_flight.get_mut(mailbox).expect("counted") -= 1;
        return Err(throttled(429, "MailboxConcurrency", "1"));
    }
    let horizon = cfg.request_window.max(cfg.upload_window);
    let window = st.windows.entry(mailbox.to_owned()).or_default();
    window.retain(|(at, _)| *at + horizon > now);
    let requests = window
        .iter()
        .filter(|(at, _)| *at + cfg.request_window > now)
        .count();
    let uploaded: u64 = window
        .iter()
        .filter(|(at, _)| *at + cfg.upload_window > now)
        .map(|(_, b)| b)
        .sum();
    let uploads = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    let body = if uploads { body_len } else { 0 };
    window.push((now, body));
    let over_requests = requests + 1 > cfg.requests_per_window;
    let over_bytes = uploaded > 0 && uploaded + body > cfg.upload_bytes_per_window;
    if over_requests || over_bytes {
        let oldest = window.first().map(|(at, _)| *at).unwrap_or(now);
        let span = if over_requests {
            cfg.request_window
        } else {
            cfg.upload_window
        };
        let wait = (oldest + span).saturating_duration_since(now);
        st.stats.budget_violations += 1;
        st.paused.insert(mailbox.to_owned(), pause(cfg, now + wait));
        *st.in_flight.get_mut(mailbox).expect("counted") -= 1;
        return Err(throttled(
            429,
            "ApplicationThrottled",
            &format!("{:.3}", wait.as_secs_f64()),
        ));
    }
    if let Some(resp) = take_fault(cfg, st, mailbox, method, path, false) {
        *st.in_flight.get_mut(mailbox).expect("counted") -= 1;
        return Err(resp);
    }
    Ok(())
}

fn pause(config: &SimConfig, until: Instant) -> Pause {
    Pause {
        until,
        grace: config.max_concurrency.saturating_sub(1),
    }
}

/// The answer of the first armed fault matching the request, if any.
fn take_fault(
    config: &SimConfig,
    st: &mut State,
    mailbox: &str,
    method: &Method,
    path: &str,
    after: bool,
) -> Option<Response> {
    let i = st.faults.iter().position(|f| {
        f.method == method.as_str()
            && path.contains(&f.path_contains)
            && f.times > 0
            && f.after_processing == after
    })?;
    let fault = st.faults[i].clone();
    st.faults[i].times -= 1;
    st.stats.injected += 1;
    let mut resp = error(fault.status, "InjectedFault", "injected fault");
    if let Some(ra) = &fault.retry_after {
        resp.headers_mut()
            .insert("Retry-After", ra.parse().expect("header value"));
        let wait = Duration::from_secs_f64(ra.parse::<f64>().unwrap_or(0.0));
        let now = Instant::now();
        st.paused
            .insert(mailbox.to_owned(), pause(config, now + wait));
    }
    Some(resp)
}

async fn dispatch(AxumState(sim): AxumState<Arc<Sim>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("").to_owned();
    let headers = parts.headers.clone();
    let declared_len: u64 = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mailbox = {
        let mut st = sim.state.lock().expect("sim state");
        let mailbox = mailbox_of(&st, &path);
        if let Some(mb) = &mailbox
            && let Err(resp) = admit(&sim, &mut st, mb, &method, &path, declared_len)
        {
            let status = resp.status().as_u16();
            log(&mut st, mailbox.clone(), &method, &path, status);
            return resp;
        }
        mailbox
    };
    let mut resp = serve(&sim, &method, &path, &query, &headers, body).await;
    let mut st = sim.state.lock().expect("sim state");
    if let Some(mb) = &mailbox {
        if let Some(n) = st.in_flight.get_mut(mb) {
            *n -= 1;
        }
        if let Some(fault) = take_fault(&sim.config, &mut st, mb, &method, &path, true) {
            resp = fault;
        }
    }
    log(&mut st, mailbox, &method, &path, resp.status().as_u16());
    resp
}

async fn serve(
    sim: &Sim,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let body = match axum::body::to_bytes(body, READ_LIMIT).await {
        Ok(b) => b,
        Err(_) => return error(413, "RequestEntityTooLarge", "body too large to read"),
    };
    if !sim.config.latency.is_zero() && mailbox_path(path) {
        tokio::time::sleep(sim.config.latency).await;
    }
    let mut st = sim.state.lock().expect("sim state");
    api::route(sim, &mut st, method, path, query, headers, &body)
}

fn mailbox_path(path: &str) -> bool {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    matches!(
        segs.as_slice(),
        ["v1.0", "users", _, _, ..] | ["upload", ..]
    )
}

fn log(st: &mut State, mailbox: Option<String>, method: &Method, path: &str, status: u16) {
    st.log.push(LogEntry {
        at: Instant::now(),
        mailbox,
        method: method.to_string(),
        path: path.to_owned(),
        status,
    });
}
