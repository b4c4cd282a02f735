//! `import`: TeleMessage's SFTP export batches (ZIP files of EML messages
//! with a `.mf` manifest), loose `.eml` files and directories of both. A
//! batch is checked whole against its manifest (and read through once, so
//! a corrupt entry is found) before any of its messages is archived; a
//! batch that fails is refused whole, each discrepancy named.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::Serialize;

use super::manifest::{self, Entry, escape};
use super::{Accepted, EmailError, Intake, MAX_MESSAGE_BYTES};

/// Most entries a batch may have.
const MAX_ENTRIES: usize = 200_000;
/// Largest manifest read.
const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;
/// Highest compression ratio accepted for an entry over 1 MiB (a zip bomb
/// has thousands).
const MAX_RATIO: u64 = 200;

/// One batch's verdict, as `import --json` prints it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BatchReport {
    pub name: String,
    pub valid: bool,
    pub problems: Vec<String>,
    /// Manifest lines that were neither `Count:` nor a file name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_understood: Vec<String>,
}

/// What an import did besides the sync figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportFigures {
    pub batches: Vec<BatchReport>,
    /// Messages read (from batches and files).
    pub messages: u64,
    pub quarantined: u64,
    /// Messages whose id was taken by a different message (kept apart).
    pub collisions: u64,
    /// Messages not archived (a copy failed, or the file could not be read).
    pub not_archived: Vec<String>,
}

impl ImportFigures {
    /// Whether everything was imported or already there.
    pub fn complete(&self) -> bool {
        self.not_archived.is_empty() && self.batches.iter().all(|b| b.valid)
    }
}

/// Imports every path; a directory is searched (not following links) for
/// `.zip` and `.eml` files, in name order. Stops only when the session
/// itself fails (the ledger).
pub async fn import_paths(
    intake: &Intake<'_>,
    paths: &[PathBuf],
    figures: &mut ImportFigures,
) -> Result<(), EmailError> {
    let mut files = Vec::new();
    for path in paths {
        collect(path, &mut files, figures);
    }
    for file in files {
        let is_zip = file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
        if is_zip {
            import_batch(intake, &file, figures).await?;
        } else {
            let name = file.display().to_string();
            match read_bounded(File::open(&file), MAX_MESSAGE_BYTES as u64) {
                Ok(bytes) => accept(intake, &name, Bytes::from(bytes), figures).await?,
                Err(e) => figures.not_archived.push(format!("{}: {e}", escape(&name))),
            }
        }
    }
    Ok(())
}

fn collect(path: &Path, files: &mut Vec<PathBuf>, figures: &mut ImportFigures) {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) => {
            figures
                .not_archived
                .push(format!("{}: {e}", escape(&path.display().to_string())));
            return;
        }
    };
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(rd) => rd.flatten().map(|e| e.path()).collect(),
            Err(e) => {
                figures
                    .not_archived
                    .push(format!("{}: {e}", escape(&path.display().to_string())));
                return;
            }
        };
        entries.sort();
        for entry in entries {
            let wanted = entry.is_dir()
                || entry.extension().is_some_and(|e| {
                    e.eq_ignore_ascii_case("zip") || e.eq_ignore_ascii_case("eml")
                });
            if wanted {
                collect(&entry, files, figures);
            }
        }
    } else {
        files.push(path.to_path_buf());
    }
}

async fn accept(
    intake: &Intake<'_>,
    name: &str,
    bytes: Bytes,
    figures: &mut ImportFigures,
) -> Result<(), EmailError> {
    figures.messages += 1;
    match intake.accept(bytes, &[]).await? {
        Accepted::Archived { collision, .. } => figures.collisions += u64::from(collision),
        Accepted::Unmapped { .. } => {}
        Accepted::Quarantined { .. } => figures.quarantined += 1,
        Accepted::Failed { reason, .. } => figures
            .not_archived
            .push(format!("{}: {reason}", escape(name))),
    }
    Ok(())
}

/// Checks a batch, then imports it if it is valid.
async fn import_batch(
    intake: &Intake<'_>,
    path: &Path,
    figures: &mut ImportFigures,
) -> Result<(), EmailError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let checked = check_batch(path);
    let (mut archive, eml) = match checked {
        Ok(ok) => ok,
        Err(report) => {
            tracing::warn!(
                "batch {} refused: {}",
                escape(&name),
                report.problems.join("; ")
            );
            figures.batches.push(BatchReport {
                name: escape(&name),
                ..report
            });
            return Ok(());
        }
    };
    figures.batches.push(BatchReport {
        name: escape(&name),
        valid: true,
        problems: Vec::new(),
        not_understood: eml.not_understood.clone(),
    });
    for (index, entry) in eml.indices.iter().zip(&eml.entries) {
        let label = format!("{name}:{}", entry.name);
        match read_entry(&mut archive, *index) {
            Ok(bytes) => accept(intake, &label, Bytes::from(bytes), figures).await?,
            Err(e) => figures
                .not_archived
                .push(format!("{}: {e}", escape(&label))),
        }
    }
    Ok(())
}

struct Checked {
    indices: Vec<usize>,
    entries: Vec<Entry>,
    not_understood: Vec<String>,
}

fn refused(problems: Vec<String>) -> BatchReport {
    BatchReport {
        name: String::new(),
        valid: false,
        problems,
        not_understood: Vec::new(),
    }
}

/// Opens a batch, reads its manifest and every entry once, and compares.
fn check_batch(path: &Path) -> Result<(zip::ZipArchive<File>, Checked), BatchReport> {
    let file = File::open(path).map_err(|e| refused(vec![format!("cannot open: {e}")]))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| refused(vec![format!("not a readable ZIP file: {e}")]))?;
    if archive.len() > MAX_ENTRIES {
        return Err(refused(vec![format!(
            "holds {} entries, more than the {MAX_ENTRIES} accepted",
            archive.len()
        )]));
    }
    let mut problems = Vec::new();
    let mut manifests = Vec::new();
    let mut checked = Checked {
        indices: Vec::new(),
        entries: Vec::new(),
        not_understood: Vec::new(),
    };
    for index in 0..archive.len() {
        let (name, size, is_dir) = match archive.by_index(index) {
            Ok(f) => (
                String::from_utf8_lossy(f.name_raw()).into_owned(),
                f.size(),
                f.is_dir(),
            ),
            Err(e) => {
                problems.push(format!("entry {index} cannot be read: {e}"));
                continue;
            }
        };
        if is_dir {
            problems.push(format!("{} is a directory; a batch is flat", escape(&name)));
            continue;
        }
        if name.contains(['/', '\\']) || name.contains("..") || name.contains('\0') {
            problems.push(format!(
                "{} is not a plain file name (a path, or '..')",
                escape(&name)
            ));
            continue;
        }
        let lower = name.to_ascii_lowercase();
        let limit = if lower.ends_with(".mf") {
            MAX_MANIFEST_BYTES
        } else {
            MAX_MESSAGE_BYTES as u64
        };
        let actual = match read_entry_limited(&mut archive, index, limit) {
            Ok(bytes) => bytes,
            Err(e) => {
                problems.push(format!("{}: {e}", escape(&name)));
                continue;
            }
        };
        if actual.len() as u64 != size {
            problems.push(format!(
                "{}: {} bytes read, {size} declared",
                escape(&name),
                actual.len()
            ));
        }
        if lower.ends_with(".mf") {
            manifests.push((name, actual));
        } else if lower.ends_with(".eml") {
            checked.indices.push(index);
            checked.entries.push(Entry {
                name,
                size: actual.len() as u64,
            });
        } else {
            problems.push(format!(
                "{} is neither an EML file nor the manifest",
                escape(&name)
            ));
        }
    }
    match manifests.as_slice() {
        [(_, text)] => {
            let manifest = manifest::read(&String::from_utf8_lossy(text));
            problems.extend(manifest::validate(&manifest, &checked.entries));
            checked.not_understood = manifest
                .not_understood
                .iter()
                .map(|(line, text)| format!("line {line}: {text}"))
                .collect();
        }
        [] => problems.push("the batch has no .mf manifest".to_owned()),
        _ => problems.push(format!(
            "the batch has {} .mf manifests; one is expected",
            manifests.len()
        )),
    }
    if problems.is_empty() {
        Ok((archive, checked))
    } else {
        Err(refused(problems))
    }
}

fn read_entry(archive: &mut zip::ZipArchive<File>, index: usize) -> io::Result<Vec<u8>> {
    read_entry_limited(archive, index, MAX_MESSAGE_BYTES as u64)
}

/// An entry's content, refusing more than `limit` bytes or a compression
/// ratio only a zip bomb has; the CRC is checked at the end.
fn read_entry_limited(
    archive: &mut zip::ZipArchive<File>,
    index: usize,
    limit: u64,
) -> io::Result<Vec<u8>> {
    let entry = archive.by_index(index).map_err(io::Error::other)?;
    let (size, compressed) = (entry.size(), entry.compressed_size().max(1));
    if size > limit {
        return Err(io::Error::other(format!(
            "declares {size} bytes, more than the {limit} accepted"
        )));
    }
    if size > 1024 * 1024 && size / compressed > MAX_RATIO {
        return Err(io::Error::other(format!(
            "compressed {}:1, which only a zip bomb is",
            size / compressed
        )));
    }
    read_bounded(Ok(entry), limit)
}

/// Reads at most `limit` bytes; more is an error.
fn read_bounded(source: io::Result<impl Read>, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    source?.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::other(format!(
            "larger than the {limit} bytes accepted"
        )));
    }
    Ok(bytes)
}
