//! Deterministic crash points for the crash-safety tests. In debug builds,
//! `WECHAT_ARCHIVER_CRASH_AT=POINT:N` aborts the process the N-th time it
//! passes `POINT` (as a SIGKILL would: no destructor, no flush). Release
//! builds compile this to nothing.

/// Points the tests can arm.
pub const AFTER_DOWNLOAD: &str = "after-download";
/// Halfway through writing a spooled (over 1 MiB) body into `tmp/`.
pub const MID_TMP_WRITE: &str = "mid-tmp-write";
pub const AFTER_TMP_WRITE: &str = "after-tmp-write";
pub const AFTER_RENAME: &str = "after-rename";
pub const BEFORE_LEDGER_COMMIT: &str = "before-ledger-commit";

/// The environment variable that arms a crash point.
pub const CRASH_AT_ENV: &str = "WECHAT_ARCHIVER_CRASH_AT";

#[cfg(debug_assertions)]
pub fn hit(point: &str) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static PASSES: AtomicU64 = AtomicU64::new(0);
    let armed = ARMED.get_or_init(|| {
        let value = std::env::var(CRASH_AT_ENV).ok()?;
        let (name, n) = value.split_once(':')?;
        Some((name.to_owned(), n.parse().ok()?))
    });
    if let Some((name, n)) = armed
        && name == point
        && PASSES.fetch_add(1, Ordering::SeqCst) + 1 == *n
    {
        eprintln!("crash point {point} reached; aborting");
        std::process::abort();
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn hit(_point: &str) {}
