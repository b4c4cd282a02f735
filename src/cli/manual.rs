//! The man pages' sections beyond what clap knows (EXIT STATUS,
//! ENVIRONMENT, FILES, EXAMPLES, SEE ALSO), written once here and rendered
//! into `man/` with the clap-generated ones, so they go stale only with a
//! failing test. A test checks ENVIRONMENT against the variables the
//! code reads, both ways.

use std::fmt::Write as _;

use super::error::ExitStatus;

/// Variables the code reads that are not for admins: tests and scripts.
const UNDOCUMENTED_ENV: &[&str] = &[
    "WECHAT_ARCHIVER_CRASH_AT",
    "WECHAT_ARCHIVER_IN_KEYRING_SESSION",
];

/// A piece of a section.
enum Block {
    Para(String),
    /// A tagged paragraph: the tag in bold, the text indented under it.
    Item(String, String),
    /// Lines shown verbatim, after a sentence saying what they do.
    Example(String, Vec<String>),
}

struct Section {
    title: &'static str,
    blocks: Vec<Block>,
}

fn para(text: &str) -> Block {
    Block::Para(text.to_owned())
}

fn item(tag: impl Into<String>, text: &str) -> Block {
    Block::Item(tag.into(), text.to_owned())
}

fn example(text: &str, lines: &[&str]) -> Block {
    Block::Example(
        text.to_owned(),
        lines.iter().map(|l| (*l).to_owned()).collect(),
    )
}

fn exit_meaning(status: ExitStatus) -> &'static str {
    match status {
        ExitStatus::Ok => "The command did all its work.",
        ExitStatus::Failure => {
            "A failure stopped the command (TeleMessage or the target unreachable, a refused password, a bad configuration, a full disk). The message is followed by a Hint: line saying what to do. A stopped sync does not move its checkpoint, so the next run covers the same window."
        }
        ExitStatus::Usage => {
            "The command line is wrong: an unknown option, a missing or malformed value."
        }
        ExitStatus::Incomplete => {
            "sync finished but some items could not be written; they are in the ledger as failed, listed on standard error and in the log, and the next run retries them first. map validate: the mapping file has errors and sync would refuse it. ledger check: the target holds copies the ledger lacks, or the reverse (each is listed). ledger rebuild: some items could not be looked for on the target; run it again."
        }
        ExitStatus::Locked => {
            "Another sync of the same connector holds its lock; this one did nothing. The message names the holder. Harmless from cron (systemd: SuccessExitStatus=4)."
        }
        ExitStatus::DataErr => {
            "deliver only (sysexits.h EX_DATAERR): the message can never be accepted (larger than the limit); the MTA bounces it."
        }
        ExitStatus::TempFail => {
            "deliver only (sysexits.h EX_TEMPFAIL): the message could not be archived now (the target down, the connector busy or misconfigured); the MTA keeps it and tries again."
        }
    }
}

fn exit_status() -> Section {
    let all = [
        ExitStatus::Ok,
        ExitStatus::Failure,
        ExitStatus::Usage,
        ExitStatus::Incomplete,
        ExitStatus::Locked,
        ExitStatus::DataErr,
        ExitStatus::TempFail,
    ];
    Section {
        title: "EXIT STATUS",
        blocks: all
            .into_iter()
            .map(|s| item((s as u8).to_string(), exit_meaning(s)))
            .collect(),
    }
}

fn environment() -> Section {
    Section {
        title: "ENVIRONMENT",
        blocks: vec![
            item(
                "WECHAT_ARCHIVER_HOME",
                "The home directory (see FILES), unless --home is given. Default: the platform's data directory, ~/.local/share/wechat-archiver on Linux.",
            ),
            item(
                "WECHAT_ARCHIVER_PASSWORD_FILE",
                "Where no keyring can be reached (cron without a session bus, a systemd service, a container): a file holding the connector's secrets, one per line, in the order login asks for them (the TeleMessage password, then the IMAP password, or the client secret of a Graph or IMAP XOAUTH2 application). Refused if its group or others can read it (chmod 600).",
            ),
            item(
                "WECHAT_ARCHIVER_PASSWORD",
                "The TeleMessage password alone, tried after the keyring and the password file. Prefer the file: the environment of a process can be read by its user's other processes.",
            ),
            item(
                "WECHAT_ARCHIVER_MAX_RETRY_SECONDS",
                "The most time spent retrying one TeleMessage call, in seconds (default 300). Lower it for a quick verdict on a dead endpoint.",
            ),
            item(
                "WECHAT_ARCHIVER_READ_TIMEOUT_SECONDS",
                "The longest silence while reading a body from TeleMessage, in seconds (default 30); a stalled body is resumed with Range.",
            ),
            item(
                "WECHAT_ARCHIVER_PAGE_SIZE",
                "Items per listing page, 1 to 1000 (default 1000); smaller pages suit a slow gateway.",
            ),
            item(
                "WECHAT_ARCHIVER_IMAP_CA_FILE",
                "A PEM file of CA certificates the IMAP server's certificate may chain to, besides the public roots (an in-house CA).",
            ),
            item(
                "WECHAT_ARCHIVER_LOG",
                "What is logged on standard error, as a tracing filter (warn, info, debug, or per module: wechat_archiver::mailbox::imap=trace); overrides -v.",
            ),
        ],
    }
}

fn files() -> Section {
    Section {
        title: "FILES",
        blocks: vec![
            para(
                "Everything lives under the home (--home, else $WECHAT_ARCHIVER_HOME); it is created owner-only. Secrets are never stored in it.",
            ),
            item(
                "HOME/config.toml",
                "The connectors: endpoint, user name, target, mapping file, folder and mapping rules.",
            ),
            item(
                "HOME/ledger.sqlite",
                "Every copy written (item, mailbox, where), unmapped and failed items, every run's figures, each connector's checkpoint. Back it up with the archive. A run whose ledger lost track of copies (deleted, restored from an older backup, a new home) finds them in the archive folders and records them instead of writing them again; ledger rebuild does so for a whole window and ledger check compares the two. Read by status.",
            ),
            item(
                "HOME/logs/sync.log",
                "One line per run and per failed item; rotated at 5 MB, five old files kept (sync.log.1 to sync.log.5).",
            ),
            item(
                "HOME/spool/CONNECTOR/",
                "Bodies over 1 MiB while they are being written; emptied as the run goes.",
            ),
            item(
                "HOME/locks/CONNECTOR.lock",
                "The lock that keeps two syncs of a connector apart; released by the kernel when its holder exits or dies.",
            ),
        ],
    }
}

fn examples_first_setup() -> Block {
    example(
        "Set up a connector writing into a Maildir tree, store its passwords in the keyring, check the mapping file, and run the first sync (the last 24 hours):",
        &[
            "wechat-archiver create contoso --endpoint https://api.telemessage.example \\",
            "    --username archiver-admin --target maildir:/srv/archive \\",
            "    --mapping /etc/wechat-archiver/mapping.csv --default-region CN",
            "wechat-archiver login --connector contoso",
            "wechat-archiver map validate /etc/wechat-archiver/mapping.csv --connector contoso --check-target",
            "wechat-archiver sync --connector contoso",
            "wechat-archiver status --connector contoso",
        ],
    )
}

fn examples_cron() -> Block {
    example(
        "An hourly crontab line; cron mails only what goes to standard error (failures and failed items):",
        &[
            "15 * * * * WECHAT_ARCHIVER_PASSWORD_FILE=$HOME/.config/wechat-archiver/secrets wechat-archiver sync --connector contoso >/dev/null",
        ],
    )
}

fn examples_validate() -> Block {
    example(
        "Check a mapping file in a script, and list its errors with their line numbers (exit 3 when the file is not usable):",
        &[
            "wechat-archiver map validate mapping.csv --default-region CN --json | jq '.errors[] | [.line, .code, .message]'",
        ],
    )
}

fn examples_sync() -> Block {
    example(
        "Catch up a week after an outage, see what would be written first, and keep every mailbox's figures as JSON:",
        &[
            "wechat-archiver sync --connector contoso --since 7d --dry-run",
            "wechat-archiver sync --connector contoso --since 7d --json > run.json",
        ],
    )
}

fn examples_ledger() -> Block {
    example(
        "On a new host with the old home's config.toml and secrets but no ledger: record the copies the archive already holds for the last 90 days, then check the ledger and the archive agree (exit 3 when they differ):",
        &[
            "wechat-archiver ledger rebuild --connector contoso --since 90d",
            "wechat-archiver ledger check --connector contoso --json | jq '.target_only, .ledger_only'",
        ],
    )
}

/// The extra sections of the page for `page` (`wechat-archiver`,
/// `wechat-archiver-sync`, ...), and the names of the other pages.
fn sections(page: &str, all_pages: &[String]) -> Vec<Section> {
    let examples = match page {
        "wechat-archiver" => vec![examples_first_setup(), examples_cron(), examples_validate()],
        "wechat-archiver-create" | "wechat-archiver-login" => vec![examples_first_setup()],
        "wechat-archiver-sync" => vec![examples_sync(), examples_cron()],
        "wechat-archiver-map" | "wechat-archiver-map-validate" => vec![examples_validate()],
        "wechat-archiver-ledger"
        | "wechat-archiver-ledger-rebuild"
        | "wechat-archiver-ledger-check" => vec![examples_ledger()],
        _ => Vec::new(),
    };
    let mut out = vec![exit_status()];
    if page == "wechat-archiver" {
        out.push(environment());
        out.push(files());
    }
    if !examples.is_empty() {
        out.push(Section {
            title: "EXAMPLES",
            blocks: examples,
        });
    }
    out.push(see_also(page, all_pages));
    out
}

fn see_also(page: &str, all_pages: &[String]) -> Section {
    let mut refs: Vec<String> = all_pages
        .iter()
        .filter(|p| p.as_str() != page)
        .map(|p| format!("{p}(1)"))
        .collect();
    refs.extend(["cron(8)".to_owned(), "systemd.timer(5)".to_owned()]);
    Section {
        title: "SEE ALSO",
        blocks: vec![
            para(&format!("{}.", refs.join(", "))),
            para(
                "The README (/usr/share/doc/wechat-archiver/README.md when installed from the package) covers each target's set-up, secrets and what happens on failure.",
            ),
        ],
    }
}

/// The roff text of the extra sections for `page`.
pub fn render(page: &str, all_pages: &[String]) -> String {
    let mut out = String::new();
    for section in sections(page, all_pages) {
        let _ = writeln!(out, ".SH \"{}\"", section.title);
        for block in section.blocks {
            render_block(&mut out, &block);
        }
    }
    out
}

fn render_block(out: &mut String, block: &Block) {
    match block {
        Block::Para(text) => {
            let _ = writeln!(out, ".PP\n{}", escape(text));
        }
        Block::Item(tag, text) => {
            let _ = writeln!(out, ".TP\n.B {}\n{}", escape(tag), escape(text));
        }
        Block::Example(text, lines) => {
            let _ = writeln!(out, ".PP\n{}\n.PP\n.RS 4\n.nf", escape(text));
            for line in lines {
                let _ = writeln!(out, "{}", escape(line));
            }
            let _ = writeln!(out, ".fi\n.RE");
        }
    }
}

/// Text safe on a roff line: backslashes and hyphens escaped, and a
/// leading `.` or `'` (a request) neutralised.
fn escape(text: &str) -> String {
    let body = text.replace('\\', "\\e").replace('-', "\\-");
    if body.starts_with('.') || body.starts_with('\'') {
        format!("\\&{body}")
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `WECHAT_ARCHIVER_*` variable the code reads is in ENVIRONMENT
    /// (or on the short list of variables for tests and scripts), and
    /// every variable ENVIRONMENT names is still read.
    #[test]
    fn every_environment_variable_is_documented() {
        let documented: Vec<String> = environment()
            .blocks
            .iter()
            .filter_map(|b| match b {
                Block::Item(tag, _) => Some(tag.clone()),
                _ => None,
            })
            .collect();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let read = env_names_in(&root);
        let missing: Vec<_> = read
            .iter()
            .filter(|n| !documented.contains(n) && !UNDOCUMENTED_ENV.contains(&n.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "environment variables read by the code but not in the man page's ENVIRONMENT (src/cli/manual.rs): {missing:?}"
        );
        let gone: Vec<_> = documented.iter().filter(|n| !read.contains(*n)).collect();
        assert!(
            gone.is_empty(),
            "ENVIRONMENT (src/cli/manual.rs) documents variables the code no longer reads: {gone:?}"
        );
    }

    fn env_names_in(dir: &std::path::Path) -> std::collections::BTreeSet<String> {
        let mut names = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                names.extend(env_names_in(&path));
            } else if path.extension().is_some_and(|e| e == "rs")
                && !path.ends_with("cli/manual.rs")
            {
                let text = std::fs::read_to_string(&path).unwrap();
                for (at, _) in text.match_indices("\"WECHAT_ARCHIVER_") {
                    let rest = &text[at + 1..];
                    let end = rest
                        .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                        .unwrap_or(rest.len());
                    if rest[end..].starts_with('"') {
                        names.insert(rest[..end].to_owned());
                    }
                }
            }
        }
        names
    }

    #[test]
    fn roff_requests_and_escapes_cannot_leak_from_text() {
        assert_eq!(escape(".SH x"), "\\&.SH x");
        assert_eq!(escape("a-b\\c"), "a\\-b\\ec");
    }
}
