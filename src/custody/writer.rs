//! Writing a manifest: lines go to `SEQ.jsonl.partial` as the run records
//! them, are made durable before the ledger commits the rows they name
//! ([`ManifestWriter::sync`]), and the finished file is renamed into place
//! and named in `HEAD`. A partial file left by a killed run is sealed by
//! the next one, as crashed.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{SecondsFormat, Utc};

use super::format::{Begin, CopyLine, End, ItemLine, Line};
use super::{FORMAT, GENESIS, HEAD_FILE, Head, ManifestError, file_sha256, list, manifest_name};

/// The manifest of one run, open for appending. Cheap to call from many
/// tasks: each line is one short locked append to a buffer.
pub struct ManifestWriter {
    dir: PathBuf,
    seq: u64,
    inner: Mutex<Inner>,
}

struct Inner {
    file: Option<BufWriter<File>>,
    copies: u64,
    items: u64,
    /// The first write error: later calls fail with it.
    failed: Option<String>,
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> ManifestError + '_ {
    move |source| ManifestError::Write {
        path: path.display().to_string(),
        source,
    }
}

fn partial_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{}.partial", manifest_name(seq)))
}

fn encode(line: &Line) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(line).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

impl ManifestWriter {
    /// Starts the next manifest of the chain in `dir`, after sealing one a
    /// killed run left. `begin.seq`, `begin.prev` and `begin.format` are
    /// filled in here; `baseline_copies` is kept for the first manifest only.
    pub fn begin(dir: &Path, mut begin: Begin) -> Result<ManifestWriter, ManifestError> {
        fs::create_dir_all(dir).map_err(write_err(dir))?;
        seal_partials(dir)?;
        let (last, prev) = chain_end(dir)?;
        begin.format = FORMAT;
        begin.seq = last + 1;
        begin.prev = prev;
        if begin.seq != 1 {
            begin.baseline_copies = None;
        }
        let path = partial_path(dir, begin.seq);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(write_err(&path))?;
        let mut file = BufWriter::with_capacity(64 * 1024, file);
        file.write_all(&encode(&Line::Begin(begin.clone())))
            .and_then(|()| file.flush())
            .and_then(|()| file.get_ref().sync_data())
            .map_err(write_err(&path))?;
        Ok(ManifestWriter {
            dir: dir.to_path_buf(),
            seq: begin.seq,
            inner: Mutex::new(Inner {
                file: Some(file),
                copies: 0,
                items: 0,
                failed: None,
            }),
        })
    }

    /// The manifest's sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Notes a copy about to be recorded in the ledger.
    pub fn copy(&self, line: CopyLine) -> Result<(), ManifestError> {
        self.append(&Line::Copy(line), |i| i.copies += 1)
    }

    /// Notes an item state about to be recorded in the ledger.
    pub fn item(&self, item: &str, state: &str) -> Result<(), ManifestError> {
        let line = Line::Item(ItemLine {
            item: item.to_owned(),
            state: state.to_owned(),
        });
        self.append(&line, |i| i.items += 1)
    }

    fn append(&self, line: &Line, count: impl FnOnce(&mut Inner)) -> Result<(), ManifestError> {
        let bytes = encode(line);
        let mut inner = self.lock();
        if let Some(e) = &inner.failed {
            return Err(ManifestError::Broken(e.clone()));
        }
        let result = match inner.file.as_mut() {
            None => return Err(ManifestError::Broken("it was finished".into())),
            Some(file) => file.write_all(&bytes),
        };
        match result {
            Ok(()) => {
                count(&mut inner);
                Ok(())
            }
            Err(e) => Err(self.fail(&mut inner, e)),
        }
    }

    /// Makes every line so far durable. Run before the ledger commits the
    /// rows they name, so that no committed row lacks its line.
    pub fn sync(&self) -> Result<(), ManifestError> {
        let mut inner = self.lock();
        if let Some(e) = &inner.failed {
            return Err(ManifestError::Broken(e.clone()));
        }
        let Some(file) = inner.file.as_mut() else {
            return Ok(());
        };
        if let Err(e) = file.flush().and_then(|()| file.get_ref().sync_data()) {
            return Err(self.fail(&mut inner, e));
        }
        Ok(())
    }

    /// Writes the last line, renames the manifest into place and makes it
    /// the chain's head.
    pub fn finish(
        &self,
        outcome: &str,
        counts: &impl serde::Serialize,
    ) -> Result<Head, ManifestError> {
        let mut inner = self.lock();
        if let Some(e) = &inner.failed {
            return Err(ManifestError::Broken(e.clone()));
        }
        let Some(mut file) = inner.file.take() else {
            return Err(ManifestError::Broken("it was finished".into()));
        };
        let end = Line::End(End {
            finished_at: now(),
            outcome: outcome.to_owned(),
            copies: inner.copies,
            items: inner.items,
            counts: serde_json::to_value(counts).unwrap_or_default(),
        });
        let partial = partial_path(&self.dir, self.seq);
        file.write_all(&encode(&end))
            .and_then(|()| file.flush())
            .and_then(|()| file.get_ref().sync_all())
            .map_err(write_err(&partial))?;
        drop(file);
        install(&self.dir, self.seq)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fail(&self, inner: &mut Inner, e: std::io::Error) -> ManifestError {
        let path = partial_path(&self.dir, self.seq);
        inner.failed = Some(format!("{}: {e}", path.display()));
        ManifestError::Write {
            path: path.display().to_string(),
            source: e,
        }
    }
}

/// Renames a finished partial manifest into place and records it as head.
fn install(dir: &Path, seq: u64) -> Result<Head, ManifestError> {
    let partial = partial_path(dir, seq);
    let path = dir.join(manifest_name(seq));
    fs::rename(&partial, &path).map_err(write_err(&path))?;
    let sha256 = file_sha256(&path).map_err(write_err(&path))?;
    let head = Head { seq, sha256 };
    let tmp = dir.join(format!("{HEAD_FILE}.tmp"));
    let written = (|| {
        let mut f = File::create(&tmp)?;
        writeln!(f, "{} {}", head.seq, head.sha256)?;
        f.sync_all()?;
        fs::rename(&tmp, dir.join(HEAD_FILE))?;
        File::open(dir)?.sync_all()
    })();
    written.map_err(write_err(&dir.join(HEAD_FILE)))?;
    Ok(head)
}

/// The newest manifest's number and the hash the next one must name: the
/// one `HEAD` recorded when it names that manifest (so a manifest edited
/// since does not become part of the chain), else the file's own.
fn chain_end(dir: &Path) -> Result<(u64, String), ManifestError> {
    let Some(&last) = list(dir)?.last() else {
        return Ok((0, GENESIS.to_owned()));
    };
    let path = dir.join(manifest_name(last));
    let actual = file_sha256(&path).map_err(|source| ManifestError::Read {
        path: path.display().to_string(),
        source,
    })?;
    match super::read_head(dir) {
        Some(head) if head.seq == last => {
            if head.sha256 != actual {
                tracing::warn!(
                    "manifest {} no longer has the hash HEAD recorded; `verify` reports it",
                    path.display()
                );
            }
            Ok((last, head.sha256))
        }
        _ => Ok((last, actual)),
    }
}

/// Seals manifests a killed run left unfinished: a torn last line is cut
/// off and an `end` line with outcome `crashed` appended.
fn seal_partials(dir: &Path) -> Result<(), ManifestError> {
    let entries = fs::read_dir(dir).map_err(|source| ManifestError::Read {
        path: dir.display().to_string(),
        source,
    })?;
    let mut partials: Vec<u64> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            super::parse_name(name.strip_suffix(".partial")?)
        })
        .collect();
    partials.sort_unstable();
    for seq in partials {
        seal(dir, seq)?;
        tracing::warn!(
            "sealed manifest {} of a run that stopped before finishing it",
            manifest_name(seq)
        );
    }
    Ok(())
}

fn seal(dir: &Path, seq: u64) -> Result<(), ManifestError> {
    let path = partial_path(dir, seq);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(write_err(&path))?;
    let mut text = Vec::new();
    file.read_to_end(&mut text).map_err(write_err(&path))?;
    let whole = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let first = text[..whole]
        .split(|b| *b == b'\n')
        .next()
        .unwrap_or_default();
    if !matches!(serde_json::from_slice::<Line>(first), Ok(Line::Begin(_))) {
        // Killed before its first line was durable: it recorded nothing.
        return fs::remove_file(&path).map_err(write_err(&path));
    }
    let (mut copies, mut items) = (0, 0);
    for line in text[..whole].split(|b| *b == b'\n') {
        match serde_json::from_slice::<Line>(line) {
            Ok(Line::Copy(_)) => copies += 1,
            Ok(Line::Item(_)) => items += 1,
            _ => {}
        }
    }
    let end = Line::End(End {
        finished_at: now(),
        outcome: "crashed".into(),
        copies,
        items,
        counts: serde_json::Value::Null,
    });
    file.set_len(whole as u64)
        .and_then(|()| file.seek(SeekFrom::End(0)).map(drop))
        .and_then(|()| file.write_all(&encode(&end)))
        .and_then(|()| file.sync_all())
        .map_err(write_err(&path))?;
    install(dir, seq).map(drop)
}
