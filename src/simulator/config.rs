//! What a simulated account looks like: how many items, how large, how
//! many of each awkward kind. The same config always yields the same data.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Timelike, Utc};

use super::faults::{Fault, FaultSpecError};

/// Why the token endpoint refuses a correct password (`403`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRefusal {
    AccountDisabled,
    NotEnabled,
}

impl AuthRefusal {
    pub fn code(self) -> &'static str {
        match self {
            AuthRefusal::AccountDisabled => "account_disabled",
            AuthRefusal::NotEnabled => "wechat_archiver_not_enabled",
        }
    }
}

/// The recipe for one simulated TeleMessage account.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    /// Number of archived items.
    pub items: usize,
    /// `archived_at` of every item lies in `[window_start, window_end)`.
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    /// Registered users (`/v1/account/users`).
    pub users: usize,
    pub username: String,
    pub password: String,
    pub account_id: String,
    pub account_name: String,
    /// When set, the right password still gets `403` with this error.
    pub refusal: Option<AuthRefusal>,
    /// `expires_in` of issued tokens; the server enforces it.
    pub token_lifetime: Duration,
    /// Median content size of ordinary items, in bytes.
    pub median_size: u64,
    /// Fraction of items whose content is in `large_size` (over 10 MB by default).
    pub large_fraction: f64,
    /// Inclusive byte range of large items' content sizes.
    pub large_size: (u64, u64),
    pub recalled_fraction: f64,
    /// Fraction of items whose only parties are external users (no e-mail,
    /// mobile not registered): nobody to deliver them to.
    pub unmapped_fraction: f64,
    /// Fraction of items whose `sent_at` is one to five days before `archived_at`.
    pub late_fraction: f64,
    /// Mean number of distinct registered users with an e-mail among the
    /// parties of an item that has any (at least 1.0).
    pub mapped_per_item: f64,
    /// Faults armed when the server starts.
    pub faults: Vec<Fault>,
    /// Items served byte for byte as given, besides the generated ones.
    pub hand_made: Vec<HandMade>,
}

/// An item whose content a test writes by hand: a message that is not
/// RFC 5322, NUL bytes in headers, hostile attachment names, odd ids.
/// Its only participant is the first registered user with an e-mail, so
/// it maps to that user's mailbox; `sender_name` replaces the user's name.
/// With `sender_unmapped` the sender has no e-mail and an unregistered
/// mobile instead, so the item maps to nobody.
#[derive(Debug, Clone)]
pub struct HandMade {
    pub id: String,
    pub archived_at: DateTime<Utc>,
    pub kind: crate::telemessage::model::ItemType,
    pub content: Vec<u8>,
    pub attachments: Vec<crate::telemessage::model::AttachmentInfo>,
    pub conversation_title: String,
    pub sender_name: Option<String>,
    pub sender_unmapped: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        let end = Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap();
        SimConfig {
            seed: 42,
            items: 200,
            window_start: end - chrono::Duration::hours(48),
            window_end: end,
            users: 40,
            username: "admin@contoso.com".into(),
            password: "simulator-password".into(),
            account_id: "acc-123".into(),
            account_name: "Contoso".into(),
            refusal: None,
            token_lifetime: Duration::from_secs(3600),
            median_size: 20 * 1024,
            large_fraction: 0.01,
            large_size: (10_500_000, 12_000_000),
            recalled_fraction: 0.02,
            unmapped_fraction: 0.01,
            late_fraction: 0.03,
            mapped_per_item: 1.8,
            faults: Vec::new(),
            hand_made: Vec::new(),
        }
    }
}

/// Why a `key=value` override could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("simulator option {0:?} is not key=value")]
    NotKeyValue(String),
    #[error(
        "unknown simulator option {0:?}; known: seed, items, users, window-start, window-end, window-hours, password, median-size, large, large-size, recalled, unmapped, late, mapped-per-item, refuse, faults"
    )]
    UnknownKey(String),
    #[error("simulator option {key}: {value:?} is not valid ({why})")]
    BadValue {
        key: String,
        value: String,
        why: String,
    },
    #[error(transparent)]
    Fault(#[from] FaultSpecError),
}

impl SimConfig {
    /// Moves the window so it ends at the top of the current hour, keeping
    /// its length: what the demo wants, since `sync` looks at the last 24 h.
    pub fn ending_now(mut self) -> Self {
        let now = Utc::now();
        let end = now
            .with_minute(0)
            .and_then(|t| t.with_second(0))
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(now);
        let span = self.window_end - self.window_start;
        self.window_end = end;
        self.window_start = end - span;
        self
    }

    /// Applies `key=value,key=value` overrides, for the command line.
    /// Fractions accept `0.05` or `5%`; sizes accept `20KB`, `150MB`;
    /// `faults=` takes the rest of the string as a fault spec.
    pub fn apply_overrides(&mut self, spec: &str) -> Result<(), ConfigError> {
        let spec = spec.trim();
        let (plain, faults) = match spec.find("faults=") {
            Some(at) => (&spec[..at], Some(&spec[at + "faults=".len()..])),
            None => (spec, None),
        };
        for pair in plain.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| ConfigError::NotKeyValue(pair.into()))?;
            self.apply(key.trim(), value.trim())?;
        }
        if let Some(faults) = faults {
            self.faults.extend(Fault::parse_list(faults)?);
        }
        Ok(())
    }

    fn apply(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let bad = |why: &str| ConfigError::BadValue {
            key: key.into(),
            value: value.into(),
            why: why.into(),
        };
        match key {
            "seed" => self.seed = value.parse().map_err(|_| bad("an integer"))?,
            "items" => self.items = value.parse().map_err(|_| bad("an integer"))?,
            "users" => self.users = value.parse().map_err(|_| bad("an integer"))?,
            "password" => self.password = value.into(),
            "window-start" => {
                self.window_start = parse_time(value).ok_or_else(|| bad("RFC 3339"))?
            }
            "window-end" => self.window_end = parse_time(value).ok_or_else(|| bad("RFC 3339"))?,
            "window-hours" => {
                let hours: i64 = value.parse().map_err(|_| bad("an integer"))?;
                self.window_start = self.window_end - chrono::Duration::hours(hours);
            }
            "median-size" => self.median_size = parse_size(value).ok_or_else(|| bad("a size"))?,
            "large" => {
                self.large_fraction = parse_fraction(value).ok_or_else(|| bad("0..1 or N%"))?
            }
            "large-size" => {
                let (lo, hi) = value.split_once("..").unwrap_or((value, value));
                let lo = parse_size(lo).ok_or_else(|| bad("SIZE or SIZE..SIZE"))?;
                let hi = parse_size(hi).ok_or_else(|| bad("SIZE or SIZE..SIZE"))?;
                self.large_size = (lo.min(hi), lo.max(hi));
            }
            "recalled" => {
                self.recalled_fraction = parse_fraction(value).ok_or_else(|| bad("0..1 or N%"))?
            }
            "unmapped" => {
                self.unmapped_fraction = parse_fraction(value).ok_or_else(|| bad("0..1 or N%"))?
            }
            "late" => {
                self.late_fraction = parse_fraction(value).ok_or_else(|| bad("0..1 or N%"))?
            }
            "mapped-per-item" => {
                self.mapped_per_item = value.parse().map_err(|_| bad("a number >= 1"))?
            }
            "refuse" => {
                self.refusal = match value {
                    "disabled" | "account_disabled" => Some(AuthRefusal::AccountDisabled),
                    "not-enabled" | "wechat_archiver_not_enabled" => Some(AuthRefusal::NotEnabled),
                    "none" => None,
                    _ => return Err(bad("disabled, not-enabled or none")),
                }
            }
            _ => return Err(ConfigError::UnknownKey(key.into())),
        }
        Ok(())
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn parse_fraction(s: &str) -> Option<f64> {
    let f = match s.strip_suffix('%') {
        Some(pct) => pct.trim().parse::<f64>().ok()? / 100.0,
        None => s.parse::<f64>().ok()?,
    };
    (0.0..=1.0).contains(&f).then_some(f)
}

/// `1234`, `20KB`, `150MB`, `1GB` (decimal K/M/G; `KiB`/`MiB` binary).
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((num * mult) as u64)
}
