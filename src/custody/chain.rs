//! Checking a chain end to end: every manifest present and in sequence,
//! each naming the hash of the one before, the newest matching `HEAD`
//! (and, when given, a head the admin kept elsewhere). The lines are
//! handed to the caller as they are read, so memory does not grow with
//! the chain.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::format::Line;
use super::{GENESIS, Head, ManifestError, list, manifest_name, read_head};

/// A manifest line longer than this is not one this tool wrote.
const MAX_LINE: u64 = 1024 * 1024;

/// What is wrong with the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainProblemKind {
    /// A manifest in the sequence (or the one `HEAD` names) is gone.
    ManifestMissing,
    /// A manifest's bytes are not those the chain recorded.
    ManifestAltered,
    /// There are manifests but no `HEAD`.
    HeadMissing,
    /// The head the admin kept is not in the chain.
    HeadUnknown,
}

/// One finding about the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainProblem {
    pub kind: ChainProblemKind,
    /// The manifest concerned (`000042.jsonl`), when one is.
    pub manifest: Option<String>,
    pub detail: String,
}

/// The chain as checked.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChainReport {
    pub manifests: u64,
    /// The newest manifest and its hash, as found on disk.
    pub head: Option<Head>,
    pub problems: Vec<ChainProblem>,
}

impl ChainReport {
    fn problem(&mut self, kind: ChainProblemKind, seq: Option<u64>, detail: String) {
        self.problems.push(ChainProblem {
            kind,
            manifest: seq.map(manifest_name),
            detail,
        });
    }
}

/// Checks the chain of `connector` in `dir`, handing each well-formed line
/// to `visit` with its manifest's number. `expect_head` is a hash the admin
/// kept from an earlier `HEAD`; it must be one of the chain's manifests.
pub fn check(
    dir: &Path,
    connector: &str,
    expect_head: Option<&str>,
    mut visit: impl FnMut(u64, Line),
) -> Result<ChainReport, ManifestError> {
    let mut report = ChainReport::default();
    let mut hashes = Vec::new();
    let mut prev: Option<(u64, String)> = None;
    for seq in list(dir)? {
        let expected_seq = prev.as_ref().map_or(1, |(s, _)| s + 1);
        if seq != expected_seq {
            let detail = if expected_seq + 1 == seq {
                format!("{} is gone", manifest_name(expected_seq))
            } else {
                format!(
                    "{} to {} are gone",
                    manifest_name(expected_seq),
                    manifest_name(seq - 1)
                )
            };
            report.problem(
                ChainProblemKind::ManifestMissing,
                Some(expected_seq),
                detail,
            );
        }
        let prev_hash = match &prev {
            Some((s, h)) if *s + 1 == seq => Some(h.as_str()),
            None if seq == 1 => Some(GENESIS),
            _ => None,
        };
        let hash = check_one(dir, connector, seq, prev_hash, &mut report, &mut visit)?;
        hashes.push(hash.clone());
        report.manifests += 1;
        prev = Some((seq, hash));
    }
    report.head = prev.map(|(seq, sha256)| Head { seq, sha256 });
    check_head(dir, &mut report);
    if let Some(kept) = expect_head {
        let kept = kept.trim().to_ascii_lowercase();
        if !hashes.contains(&kept) {
            let detail = format!(
                "no manifest has the hash {kept}: the manifests that had it were edited, replaced or deleted"
            );
            report.problem(ChainProblemKind::HeadUnknown, None, detail);
        }
    }
    Ok(report)
}

/// Compares the newest manifest with what `HEAD` recorded.
fn check_head(dir: &Path, report: &mut ChainReport) {
    let recorded = read_head(dir);
    let found = report.head.clone();
    match (recorded, found) {
        (None, None) => {}
        (None, Some(found)) => report.problem(
            ChainProblemKind::HeadMissing,
            Some(found.seq),
            "there are manifests but HEAD, which names the newest, is gone or unreadable".into(),
        ),
        (Some(head), found) if found.as_ref().is_none_or(|f| f.seq < head.seq) => report.problem(
            ChainProblemKind::ManifestMissing,
            Some(head.seq),
            format!(
                "HEAD names {}, which is gone (the newest present is {})",
                manifest_name(head.seq),
                found.map_or("none".into(), |f| manifest_name(f.seq))
            ),
        ),
        (Some(head), Some(found)) if found.seq > head.seq => report.problem(
            ChainProblemKind::HeadMissing,
            Some(found.seq),
            format!(
                "HEAD names {} but {} follows it: HEAD was replaced by an older one",
                manifest_name(head.seq),
                manifest_name(found.seq)
            ),
        ),
        (Some(head), Some(found)) if found.sha256 != head.sha256 => report.problem(
            ChainProblemKind::ManifestAltered,
            Some(found.seq),
            format!(
                "its SHA-256 is {}, not {} as HEAD recorded: it was edited",
                found.sha256, head.sha256
            ),
        ),
        _ => {}
    }
}

/// Reads one manifest, hashing its bytes, checking its form and handing
/// its lines on. Returns the file's SHA-256.
fn check_one(
    dir: &Path,
    connector: &str,
    seq: u64,
    prev_hash: Option<&str>,
    report: &mut ChainReport,
    visit: &mut impl FnMut(u64, Line),
) -> Result<String, ManifestError> {
    let path = dir.join(manifest_name(seq));
    let read_err = |source| ManifestError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut reader = BufReader::with_capacity(256 * 1024, File::open(&path).map_err(read_err)?);
    let mut hash = Sha256::new();
    let mut form = Form::default();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut buf)
            .map_err(read_err)?;
        if n == 0 {
            break;
        }
        hash.update(&buf);
        if buf.last() != Some(&b'\n') {
            form.bad(format!("line {} is cut short or too long", form.lines + 1));
            let mut rest = HashWriter(&mut hash);
            std::io::copy(&mut reader, &mut rest).map_err(read_err)?;
            break;
        }
        form.lines += 1;
        match serde_json::from_slice::<Line>(&buf) {
            Ok(line) => {
                form.note(&line, seq, connector, prev_hash);
                visit(seq, line);
            }
            Err(e) => form.bad(format!("line {} is not a manifest line: {e}", form.lines)),
        }
    }
    form.finish();
    if let Some(why) = form.prev_altered {
        report.problem(ChainProblemKind::ManifestAltered, Some(seq - 1), why);
    }
    for why in form.problems {
        report.problem(ChainProblemKind::ManifestAltered, Some(seq), why);
    }
    Ok(hex::encode(hash.finalize()))
}

struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What one manifest's lines looked like, against its expected form:
/// `begin`, copy and item lines, `end` with their counts.
#[derive(Default)]
struct Form {
    lines: u64,
    copies: u64,
    items: u64,
    begun: bool,
    ended: bool,
    problems: Vec<String>,
    /// Why the manifest before this one is not the one this one follows.
    prev_altered: Option<String>,
}

impl Form {
    fn bad(&mut self, why: String) {
        if self.problems.len() < 5 {
            self.problems.push(why);
        }
    }

    fn note(&mut self, line: &Line, seq: u64, connector: &str, prev_hash: Option<&str>) {
        if self.ended {
            self.bad(format!("line {} follows its end line", self.lines));
        }
        match line {
            Line::Begin(b) if self.lines == 1 => {
                self.begun = true;
                if b.seq != seq || b.connector != connector {
                    self.bad(format!(
                        "it says it is manifest {} of connector {:?}",
                        b.seq, b.connector
                    ));
                }
                if let Some(prev) = prev_hash.filter(|p| *p != b.prev) {
                    self.prev_altered = Some(format!(
                        "its SHA-256 is {prev}, but {} recorded {}: it was edited or replaced",
                        manifest_name(seq),
                        b.prev
                    ));
                }
            }
            Line::Begin(_) => self.bad(format!("line {} begins a second manifest", self.lines)),
            Line::Copy(_) => self.copies += 1,
            Line::Item(_) => self.items += 1,
            Line::End(e) => {
                self.ended = true;
                if (e.copies, e.items) != (self.copies, self.items) {
                    self.bad(format!(
                        "it holds {} copy and {} item lines, but its end line counts {} and {}: lines were added or removed",
                        self.copies, self.items, e.copies, e.items
                    ));
                }
            }
        }
    }

    fn finish(&mut self) {
        if !self.begun {
            self.bad("it does not begin with a begin line".into());
        }
        if !self.ended {
            self.bad("it has no end line: it was cut short".into());
        }
    }
}
