//! Fault injection: each armed fault fires a counted number of times and
//! then stops, so a run under faults can still finish and a test can check
//! both that the fault happened and that the client recovered.
//!
//! Spec syntax (comma separated, also accepted by the `faults=` option):
//!
//! | spec | effect |
//! | --- | --- |
//! | `429xN[@SECS][/SCOPE]` | N answers `429` with `Retry-After: SECS` (default 1) |
//! | `500xN`, `502xN`, `503xN`, `504xN` `[/SCOPE]` | N answers with that status |
//! | `drop-body:N[@BYTES]` | N content bodies cut after BYTES (default 4096), connection dropped |
//! | `slow-body:N[@DURATION]` | N content bodies stall DURATION (default 5s) half-way |
//! | `corrupt:N` | N content bodies of the right length with wrong bytes |
//! | `expire-token:N` | N calls answer `401 token_expired` (at most once per token, and only once that token has served a call) |
//! | `expire-cursor:N` | N listings with a cursor answer `410 cursor_expired` |
//! | `duplicate-pages:N` | N listing pages end with a cursor that repeats their last two items |
//! | `out-of-order-pages:N` | N listing pages come with their items reversed |
//! | `bad-json:N` | N listing answers are `200` with a body that is not JSON |
//! | `purge:ITEM_ID` | the item's content answers `404 item_not_found` once it has been listed |
//! | `retry-after-date` | `429` answers give `Retry-After` as an HTTP date |
//! | `refuse:disabled` / `refuse:not-enabled` | the token endpoint answers `403` |
//!
//! `:N` and `xN` are interchangeable; a missing count means 1. SCOPE is
//! one of `token`, `account`, `users`, `list`, `content`, `any` (default:
//! every endpoint but `token`).

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use super::config::AuthRefusal;
use super::stats::StatsInner;

/// The endpoint a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Token,
    Account,
    Users,
    List,
    Content,
}

impl Endpoint {
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Token => "token",
            Endpoint::Account => "account",
            Endpoint::Users => "users",
            Endpoint::List => "list",
            Endpoint::Content => "content",
        }
    }
}

/// Which endpoints a status fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every endpoint except the token endpoint.
    Api,
    Only(Endpoint),
    All,
}

impl Scope {
    fn covers(self, e: Endpoint) -> bool {
        match self {
            Scope::Api => e != Endpoint::Token,
            Scope::Only(only) => only == e,
            Scope::All => true,
        }
    }
}

/// One fault as armed from a spec or by a test.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    TooManyRequests {
        count: u32,
        retry_after: Duration,
        scope: Scope,
    },
    ServerError {
        status: u16,
        count: u32,
        scope: Scope,
    },
    DropBody {
        count: u32,
        after: u64,
    },
    SlowBody {
        count: u32,
        stall: Duration,
    },
    Corrupt {
        count: u32,
    },
    ExpireToken {
        count: u32,
    },
    ExpireCursor {
        count: u32,
    },
    DuplicatePages {
        count: u32,
    },
    OutOfOrderPages {
        count: u32,
    },
    BadJson {
        count: u32,
    },
    Purge {
        id: String,
    },
    RetryAfterDate,
    Refuse(AuthRefusal),
}

/// Why a fault spec could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "fault spec {part:?}: {why} (see the simulator docs for the syntax, e.g. \"429x3,503x2,drop-body:2@4096\")"
)]
pub struct FaultSpecError {
    pub part: String,
    pub why: String,
}

impl Fault {
    /// Parses a comma-separated fault spec.
    pub fn parse_list(spec: &str) -> Result<Vec<Fault>, FaultSpecError> {
        spec.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(Fault::parse)
            .collect()
    }

    pub fn parse(part: &str) -> Result<Fault, FaultSpecError> {
        let err = |why: &str| FaultSpecError {
            part: part.to_owned(),
            why: why.to_owned(),
        };
        let (body, scope) = match part.rsplit_once('/') {
            Some((b, s)) => (b, parse_scope(s).ok_or_else(|| err("unknown scope"))?),
            None => (part, Scope::Api),
        };
        let (head, arg) = match body.split_once('@') {
            Some((h, a)) => (h, Some(a)),
            None => (body, None),
        };
        let (name, count) = split_count(head).ok_or_else(|| err("bad count"))?;
        let no_arg = |f: Fault| {
            if arg.is_some() {
                Err(err("takes no @ argument"))
            } else {
                Ok(f)
            }
        };
        match name {
            "429" => Ok(Fault::TooManyRequests {
                count,
                retry_after: match arg {
                    Some(a) => parse_duration(a).ok_or_else(|| err("bad Retry-After"))?,
                    None => Duration::from_secs(1),
                },
                scope,
            }),
            "500" | "502" | "503" | "504" => no_arg(Fault::ServerError {
                status: name.parse().expect("digits"),
                count,
                scope,
            }),
            "drop-body" => Ok(Fault::DropBody {
                count,
                after: match arg {
                    Some(a) => super::config::parse_size(a).ok_or_else(|| err("bad byte count"))?,
                    None => 4096,
                },
            }),
            "slow-body" => Ok(Fault::SlowBody {
                count,
                stall: match arg {
                    Some(a) => parse_duration(a).ok_or_else(|| err("bad duration"))?,
                    None => Duration::from_secs(5),
                },
            }),
            "corrupt" => no_arg(Fault::Corrupt { count }),
            "expire-token" => no_arg(Fault::ExpireToken { count }),
            "expire-cursor" => no_arg(Fault::ExpireCursor { count }),
            "duplicate-pages" => no_arg(Fault::DuplicatePages { count }),
            "out-of-order-pages" => no_arg(Fault::OutOfOrderPages { count }),
            "bad-json" => no_arg(Fault::BadJson { count }),
            "retry-after-date" => no_arg(Fault::RetryAfterDate),
            _ => parse_keyed(head).ok_or_else(|| err("unknown fault")),
        }
    }
}

fn parse_keyed(head: &str) -> Option<Fault> {
    let (key, value) = head.split_once(':')?;
    match (key, value) {
        ("purge", id) if crate::types::ItemId::parse(id).is_ok() => {
            Some(Fault::Purge { id: id.into() })
        }
        ("refuse", "disabled") => Some(Fault::Refuse(AuthRefusal::AccountDisabled)),
        ("refuse", "not-enabled") => Some(Fault::Refuse(AuthRefusal::NotEnabled)),
        _ => None,
    }
}

/// `name`, `nameXN`, `name:N` → (name, N). Only digits follow `x`.
fn split_count(head: &str) -> Option<(&str, u32)> {
    if let Some((name, n)) = head.rsplit_once(':')
        && n.bytes().all(|b| b.is_ascii_digit())
        && !n.is_empty()
    {
        return Some((name, n.parse().ok()?));
    }
    if let Some((name, n)) = head.rsplit_once('x')
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_digit())
    {
        return Some((name, n.parse().ok()?));
    }
    Some((head, 1))
}

fn parse_scope(s: &str) -> Option<Scope> {
    Some(match s {
        "any" | "all" => Scope::All,
        "api" => Scope::Api,
        "token" => Scope::Only(Endpoint::Token),
        "account" => Scope::Only(Endpoint::Account),
        "users" => Scope::Only(Endpoint::Users),
        "list" | "items" => Scope::Only(Endpoint::List),
        "content" => Scope::Only(Endpoint::Content),
        _ => return None,
    })
}

fn parse_duration(s: &str) -> Option<Duration> {
    if let Ok(secs) = s.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    humantime::parse_duration(s).ok()
}

/// A fault the server decided to apply to one request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Status {
    TooMany(Duration),
    Error(u16),
}

/// What the content body must suffer.
#[derive(Debug, Clone, Default)]
pub(crate) struct BodyFaults {
    pub drop_after: Option<u64>,
    pub stall: Option<Duration>,
    pub corrupt: bool,
}

/// What a listing page must suffer.
#[derive(Debug, Clone, Default)]
pub(crate) struct PageFaults {
    pub duplicate: bool,
    pub reversed: bool,
}

#[derive(Debug, Default)]
struct Armed {
    faults: Vec<Fault>,
    purged: HashSet<String>,
    listed_purged: HashSet<String>,
    retry_after_date: bool,
    refusal: Option<AuthRefusal>,
}

/// The faults armed on a running simulator; arm more at any time.
#[derive(Debug)]
pub struct FaultControl {
    armed: Mutex<Armed>,
    stats: std::sync::Arc<StatsInner>,
}

impl FaultControl {
    pub(crate) fn new(stats: std::sync::Arc<StatsInner>, refusal: Option<AuthRefusal>) -> Self {
        FaultControl {
            armed: Mutex::new(Armed {
                refusal,
                ..Armed::default()
            }),
            stats,
        }
    }

    pub fn arm(&self, fault: Fault) {
        let mut armed = self.lock();
        match fault {
            Fault::Purge { id } => {
                armed.purged.insert(id);
            }
            Fault::RetryAfterDate => armed.retry_after_date = true,
            Fault::Refuse(r) => armed.refusal = Some(r),
            mut other => {
                if *count_of(&mut other) > 0 {
                    armed.faults.push(other);
                }
            }
        }
    }

    /// Arms every fault of a spec string (see the module docs).
    pub fn arm_spec(&self, spec: &str) -> Result<(), FaultSpecError> {
        for fault in Fault::parse_list(spec)? {
            self.arm(fault);
        }
        Ok(())
    }

    /// Disarms everything, including purges and refusals.
    pub fn clear(&self) {
        *self.lock() = Armed::default();
    }

    /// Makes the token endpoint refuse (`403`) or accept again.
    pub fn set_refusal(&self, refusal: Option<AuthRefusal>) {
        self.lock().refusal = refusal;
    }

    /// Counted faults that have not fired yet.
    pub fn pending(&self) -> Vec<Fault> {
        self.lock().faults.clone()
    }

    pub(crate) fn refusal(&self) -> Option<AuthRefusal> {
        self.lock().refusal
    }

    pub(crate) fn retry_after_date(&self) -> bool {
        self.lock().retry_after_date
    }

    /// Purged items vanish only after a listing showed them, so the client
    /// sees the item and then a `404` for its content.
    pub(crate) fn is_purged(&self, id: &str) -> bool {
        let armed = self.lock();
        armed.purged.contains(id) && armed.listed_purged.contains(id)
    }

    pub(crate) fn mark_listed(&self, id: &str) {
        let mut armed = self.lock();
        if armed.purged.contains(id) {
            armed.listed_purged.insert(id.to_owned());
        }
    }

    pub(crate) fn status_for(&self, endpoint: Endpoint) -> Option<Status> {
        let fault = self.take(|f| match f {
            Fault::TooManyRequests { scope, .. } | Fault::ServerError { scope, .. } => {
                scope.covers(endpoint)
            }
            _ => false,
        })?;
        match fault {
            Fault::TooManyRequests { retry_after, .. } => Some(Status::TooMany(retry_after)),
            Fault::ServerError { status, .. } => Some(Status::Error(status)),
            _ => None,
        }
    }

    pub(crate) fn take_expire_token(&self) -> bool {
        self.take(|f| matches!(f, Fault::ExpireToken { .. }))
            .is_some()
    }

    pub(crate) fn take_expire_cursor(&self) -> bool {
        self.take(|f| matches!(f, Fault::ExpireCursor { .. }))
            .is_some()
    }

    pub(crate) fn take_bad_json(&self) -> bool {
        self.take(|f| matches!(f, Fault::BadJson { .. })).is_some()
    }

    pub(crate) fn take_page_faults(&self) -> PageFaults {
        PageFaults {
            duplicate: self
                .take(|f| matches!(f, Fault::DuplicatePages { .. }))
                .is_some(),
            reversed: self
                .take(|f| matches!(f, Fault::OutOfOrderPages { .. }))
                .is_some(),
        }
    }

    pub(crate) fn take_body_faults(&self) -> BodyFaults {
        let drop_after = match self.take(|f| matches!(f, Fault::DropBody { .. })) {
            Some(Fault::DropBody { after, .. }) => Some(after),
            _ => None,
        };
        let stall = match self.take(|f| matches!(f, Fault::SlowBody { .. })) {
            Some(Fault::SlowBody { stall, .. }) => Some(stall),
            _ => None,
        };
        let corrupt = self.take(|f| matches!(f, Fault::Corrupt { .. })).is_some();
        BodyFaults {
            drop_after,
            stall,
            corrupt,
        }
    }

    pub(crate) fn fired(&self, name: &str) {
        self.stats.fault_fired(name);
    }

    /// Takes one firing of the first armed fault matching `pred`, counts it,
    /// and disarms the fault when its count is spent.
    fn take(&self, pred: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let mut armed = self.lock();
        let at = armed.faults.iter().position(pred)?;
        let fault = armed.faults[at].clone();
        let count = count_of(&mut armed.faults[at]);
        *count -= 1;
        if *count == 0 {
            armed.faults.remove(at);
        }
        drop(armed);
        self.stats.fault_fired(&fault_name(&fault));
        Some(fault)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Armed> {
        self.armed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn count_of(f: &mut Fault) -> &mut u32 {
    match f {
        Fault::TooManyRequests { count, .. }
        | Fault::ServerError { count, .. }
        | Fault::DropBody { count, .. }
        | Fault::SlowBody { count, .. }
        | Fault::Corrupt { count }
        | Fault::ExpireToken { count }
        | Fault::ExpireCursor { count }
        | Fault::DuplicatePages { count }
        | Fault::OutOfOrderPages { count }
        | Fault::BadJson { count } => count,
        Fault::Purge { .. } | Fault::RetryAfterDate | Fault::Refuse(_) => {
            unreachable!("uncounted faults are never in the armed list")
        }
    }
}

/// The name a fault is counted under in [`super::Stats::faults_fired`].
pub fn fault_name(f: &Fault) -> String {
    match f {
        Fault::TooManyRequests { .. } => "429".into(),
        Fault::ServerError { status, .. } => status.to_string(),
        Fault::DropBody { .. } => "drop-body".into(),
        Fault::SlowBody { .. } => "slow-body".into(),
        Fault::Corrupt { .. } => "corrupt".into(),
        Fault::ExpireToken { .. } => "expire-token".into(),
        Fault::ExpireCursor { .. } => "expire-cursor".into(),
        Fault::DuplicatePages { .. } => "duplicate-pages".into(),
        Fault::OutOfOrderPages { .. } => "out-of-order-pages".into(),
        Fault::BadJson { .. } => "bad-json".into(),
        Fault::Purge { .. } => "purge".into(),
        Fault::RetryAfterDate => "retry-after-date".into(),
        Fault::Refuse(_) => "refuse".into(),
    }
}
