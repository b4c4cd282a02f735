//! Large items without holding them in memory. A spooled message is read
//! as a skeleton: each run of base64 lines too long to travel inside a
//! request (its attachments go through upload sessions anyway) is left in
//! the spool file and stands in the skeleton as one short line naming it.
//! The skeleton is composed as usual; the attachment that decodes to a
//! run's name is uploaded from the file, decoded a chunk at a time. An
//! 11 MB item composed whole held its raw bytes and its decoded attachment
//! at once: about 28 MB of the peak in `bench/graph`.
//!
//! Anything unusual (a run that is not clean base64, a name that turns
//! up anywhere but as one upload-session attachment) gives up on the
//! skeleton, and the item is composed whole as before.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use base64::Engine;
use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};

use super::compose::INLINE_LIMIT;

/// A run of base64 lines is left in the file once it holds more than
/// this many base64 characters: it decodes to more than [`INLINE_LIMIT`].
const ELIDE_OVER: usize = INLINE_LIMIT / 3 * 4;
/// The longest line read into memory while scanning.
const MAX_LINE: usize = 64 * 1024;
const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The message with its long base64 runs left out.
pub(crate) struct Skeleton {
    pub raw: Vec<u8>,
    pub runs: Vec<ElidedRun>,
}

/// Where an attachment's base64 lines are in the spool file, and what
/// they decode to.
#[derive(Debug, Clone)]
pub(crate) struct ElidedRun {
    path: PathBuf,
    pub offset: u64,
    len: u64,
    pub decoded_len: u64,
    pub sha256: String,
}

/// The bytes a run's attachment decodes to in the skeleton.
pub(crate) fn marker(index: usize) -> Vec<u8> {
    format!("\u{0}wechat-archiver elided run {index}\u{0}").into_bytes()
}

/// Reads a spooled message as a skeleton; `None` when it has no run worth
/// leaving out or one that is not clean base64.
pub(crate) fn skeleton(path: &Path) -> std::io::Result<Option<Skeleton>> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut scan = Scan::new(path);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        if !scan.line(&line) {
            return Ok(None);
        }
    }
    if !scan.end_run() || scan.runs.is_empty() {
        return Ok(None);
    }
    Ok(Some(Skeleton {
        raw: scan.raw,
        runs: scan.runs,
    }))
}

struct Scan<'a> {
    path: &'a Path,
    raw: Vec<u8>,
    runs: Vec<ElidedRun>,
    offset: u64,
    run: Option<Run>,
}

/// The base64 run being read: kept in memory until it is long enough to
/// leave out, decoded and hashed as it goes.
struct Run {
    start: u64,
    kept: Vec<u8>,
    chars: usize,
    pending: Vec<u8>,
    hasher: Sha256,
    decoded: u64,
    clean: bool,
}

impl Scan<'_> {
    fn new(path: &Path) -> Scan<'_> {
        Scan {
            path,
            raw: Vec::new(),
            runs: Vec::new(),
            offset: 0,
            run: None,
        }
    }

    /// Takes one line; false if the skeleton must be given up.
    fn line(&mut self, line: &[u8]) -> bool {
        let text = trim_eol(line);
        let is_base64 = !text.is_empty()
            && text
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
        let ok = if is_base64 {
            let run = self.run.get_or_insert_with(|| Run::new(self.offset));
            run.take(line, text);
            true
        } else {
            let ok = self.end_run();
            self.raw.extend_from_slice(line);
            ok
        };
        self.offset += line.len() as u64;
        ok
    }

    /// Ends the current run: kept in the skeleton if short, else left out.
    fn end_run(&mut self) -> bool {
        let Some(mut run) = self.run.take() else {
            return true;
        };
        if run.chars <= ELIDE_OVER {
            self.raw.append(&mut run.kept);
            return true;
        }
        if !run.finish() {
            return false;
        }
        let index = self.runs.len();
        self.raw
            .extend_from_slice(ENGINE.encode(marker(index)).as_bytes());
        self.raw.extend_from_slice(b"\r\n");
        self.runs.push(ElidedRun {
            path: self.path.to_owned(),
            offset: run.start,
            len: self.offset - run.start,
            decoded_len: run.decoded,
            sha256: hex::encode(run.hasher.finalize()),
        });
        true
    }
}

impl Run {
    fn new(start: u64) -> Run {
        Run {
            start,
            kept: Vec::new(),
            chars: 0,
            pending: Vec::new(),
            hasher: Sha256::new(),
            decoded: 0,
            clean: true,
        }
    }

    fn take(&mut self, line: &[u8], text: &[u8]) {
        self.chars += text.len();
        if self.chars <= ELIDE_OVER {
            self.kept.extend_from_slice(line);
        } else {
            self.kept = Vec::new();
        }
        self.pending.extend_from_slice(text);
        let whole = self.pending.len() / 4 * 4;
        // Only the run's last group may hold padding.
        let safe = match self.pending[..whole].iter().position(|b| *b == b'=') {
            Some(at) => at / 4 * 4,
            None => whole,
        };
        if safe > 0 {
            self.decode(safe);
        }
        if self.pending.len() > 8 {
            self.clean = false;
            self.pending.clear();
        }
    }

    fn decode(&mut self, len: usize) {
        match ENGINE.decode(&self.pending[..len]) {
            Ok(bytes) => {
                self.hasher.update(&bytes);
                self.decoded += bytes.len() as u64;
            }
            Err(_) => self.clean = false,
        }
        self.pending.drain(..len);
    }

    /// Decodes what is left (the padded end); false unless all of it was
    /// clean base64.
    fn finish(&mut self) -> bool {
        if !self.pending.len().is_multiple_of(4) {
            return false;
        }
        if !self.pending.is_empty() {
            self.decode(self.pending.len());
        }
        self.clean
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

impl ElidedRun {
    /// Opens the run for reading its decoded bytes in order.
    pub fn open(&self) -> std::io::Result<RunReader> {
        let mut file = File::open(&self.path)?;
        file.seek(SeekFrom::Start(self.offset))?;
        Ok(RunReader {
            lines: BufReader::new(file.take(self.len)),
            pending: Vec::new(),
            decoded: BytesMut::new(),
        })
    }
}

/// The decoded bytes of a run, a chunk at a time.
pub(crate) struct RunReader {
    lines: BufReader<std::io::Take<File>>,
    pending: Vec<u8>,
    decoded: BytesMut,
}

impl RunReader {
    /// The next `max` decoded bytes (fewer only at the end; none after it).
    pub fn next_chunk(&mut self, max: usize) -> std::io::Result<Bytes> {
        let mut line = Vec::new();
        while self.decoded.len() < max {
            line.clear();
            let n = self.lines.read_until(b'\n', &mut line)?;
            if n == 0 {
                let rest = std::mem::take(&mut self.pending);
                self.decode(&rest)?;
                break;
            }
            self.pending.extend_from_slice(trim_eol(&line));
            let whole = self.pending.len() / 4 * 4;
            let groups: Vec<u8> = self.pending.drain(..whole).collect();
            self.decode(&groups)?;
        }
        let len = max.min(self.decoded.len());
        Ok(self.decoded.split_to(len).freeze())
    }

    fn decode(&mut self, chars: &[u8]) -> std::io::Result<()> {
        if chars.is_empty() {
            return Ok(());
        }
        let bytes = ENGINE
            .decode(chars)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        self.decoded.extend_from_slice(&bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn message(attachment: &[u8]) -> Vec<u8> {
        let mut m = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: big\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n\
--b\r\nContent-Type: application/pdf; name=\"big.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n"
            .to_vec();
        for line in ENGINE.encode(attachment).as_bytes().chunks(76) {
            m.extend_from_slice(line);
            m.extend_from_slice(b"\r\n");
        }
        m.extend_from_slice(b"--b--\r\n");
        m
    }

    fn spooled(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    #[test]
    fn a_long_attachment_is_left_in_the_file_and_read_back_whole_in_chunks() {
        let attachment: Vec<u8> = (0..4_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let file = spooled(&message(&attachment));
        let skeleton = skeleton(file.path()).unwrap().expect("a run is left out");
        assert!(skeleton.raw.len() < 1_000, "the skeleton is small");
        assert_eq!(skeleton.runs.len(), 1);
        let run = &skeleton.runs[0];
        assert_eq!(run.decoded_len, attachment.len() as u64);
        assert_eq!(run.sha256, hex::encode(Sha256::digest(&attachment)));
        let parsed = mail_parser::MessageParser::default()
            .parse(&skeleton.raw)
            .unwrap();
        let part = parsed.attachment(0).unwrap();
        assert_eq!(part.contents(), marker(0).as_slice());
        let mut reader = run.open().unwrap();
        let mut back = Vec::new();
        loop {
            let chunk = reader.next_chunk(1_000_000).unwrap();
            if chunk.is_empty() {
                break;
            }
            assert!(
                chunk.len() == 1_000_000 || back.len() + chunk.len() == attachment.len(),
                "every chunk but the last is whole"
            );
            back.extend_from_slice(&chunk);
        }
        assert!(back == attachment, "the same bytes come back");
    }

    #[test]
    fn short_runs_and_broken_base64_keep_the_message_whole() {
        let small = spooled(&message(b"small attachment"));
        assert!(skeleton(small.path()).unwrap().is_none());
        let mut broken = message(&vec![9u8; 4_000_000]);
        let at = (broken.len() / 2..)
            .find(|&i| broken[i].is_ascii_alphanumeric())
            .unwrap();
        broken[at] = b'=';
        let broken = spooled(&broken);
        assert!(skeleton(broken.path()).unwrap().is_none());
    }
}
