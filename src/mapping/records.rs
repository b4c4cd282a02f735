//! A streaming reader of delimited records as spreadsheets save them:
//! quoted fields (with `""` escapes, delimiters and line breaks inside),
//! CRLF or LF, and a line number for every record. Unlike a lenient CSV
//! library it says when a quote is never closed and when a line is not
//! UTF-8, because a mapping read wrongly sends mail to the wrong person.

use std::io::BufRead;
use std::ops::Range;

/// One record; its fields borrow from one buffer reused between records.
#[derive(Debug, Default)]
pub struct Record {
    /// The line the record starts on (1-based).
    pub line: u64,
    /// The line it ends on (differs when a quoted field spans lines).
    pub end_line: u64,
    text: String,
    fields: Vec<Range<usize>>,
}

impl Record {
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn field(&self, index: usize) -> Option<&str> {
        self.fields.get(index).map(|r| &self.text[r.clone()])
    }

    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|r| &self.text[r.clone()])
    }

    /// A line with nothing but delimiters and spaces (spreadsheets save
    /// such rows below the data).
    pub fn is_blank(&self) -> bool {
        self.fields().all(|f| f.trim().is_empty())
    }

    fn clear(&mut self) {
        self.text.clear();
        self.fields.clear();
    }
}

/// Why the reader stopped.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("line {line} is not UTF-8")]
    NotUtf8 { line: u64, bytes: Vec<u8> },
    #[error("a quote opened on line {line} is never closed")]
    UnclosedQuote { line: u64, start: String },
    /// A quoted value longer than [`MAX_RECORD_BYTES`]: almost surely a
    /// quote left open, and reading on would hold the file in memory.
    #[error("the record starting on line {line} is longer than {MAX_RECORD_BYTES} bytes")]
    TooLong { line: u64, start: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The longest record read; mapping rows are a few dozen bytes.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

pub struct Records<R> {
    reader: R,
    delimiter: u8,
    line: u64,
    bytes: u64,
    raw: Vec<u8>,
}

impl<R: BufRead> Records<R> {
    /// `lines_read` is how many lines the caller already consumed (the
    /// header), so line numbers match what an editor shows.
    pub fn new(reader: R, delimiter: u8, lines_read: u64) -> Self {
        Records {
            reader,
            delimiter,
            line: lines_read,
            bytes: 0,
            raw: Vec::with_capacity(256),
        }
    }

    /// Bytes consumed so far (after the lines the caller read).
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// Reads the next record into `record`; `Ok(false)` at the end.
    pub fn read(&mut self, record: &mut Record) -> Result<bool, RecordError> {
        record.clear();
        let mut state = FieldState::Start;
        loop {
            self.raw.clear();
            if self.reader.read_until(b'\n', &mut self.raw)? == 0 {
                return match state {
                    FieldState::Start if record.fields.is_empty() => Ok(false),
                    FieldState::Quoted(_) => Err(RecordError::UnclosedQuote {
                        line: record.line,
                        start: record.text.chars().take(120).collect(),
                    }),
                    _ => Ok(true),
                };
            }
            self.line += 1;
            self.bytes += self.raw.len() as u64;
            if record.fields.is_empty() && matches!(state, FieldState::Start) {
                record.line = self.line;
            }
            record.end_line = self.line;
            let line = strip_line_end(&self.raw);
            let line = std::str::from_utf8(line).map_err(|_| RecordError::NotUtf8 {
                line: self.line,
                bytes: self.raw.clone(),
            })?;
            state = split(line, self.delimiter, state, record);
            if !matches!(state, FieldState::Quoted(_)) {
                return Ok(true);
            }
            if record.text.len() > MAX_RECORD_BYTES {
                return Err(RecordError::TooLong {
                    line: record.line,
                    start: record.text.chars().take(120).collect(),
                });
            }
            record.text.push('\n');
        }
    }
}

fn strip_line_end(raw: &[u8]) -> &[u8] {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    raw.strip_suffix(b"\r").unwrap_or(raw)
}

/// Where the splitter is when a physical line ends.
#[derive(Debug, Clone, Copy)]
enum FieldState {
    /// At the start of a record.
    Start,
    /// Inside a quoted field whose text starts at this offset of the record.
    Quoted(usize),
    /// The record is complete.
    Done,
}

/// Splits one physical line into `record`, continuing a quoted field when
/// `state` says the previous line ended inside one.
fn split(line: &str, delimiter: u8, state: FieldState, record: &mut Record) -> FieldState {
    let bytes = line.as_bytes();
    if matches!(state, FieldState::Start) && !bytes.contains(&b'"') {
        split_unquoted(line, delimiter, record);
        return FieldState::Done;
    }
    let (mut field_start, mut quoted) = match state {
        FieldState::Quoted(start) => (start, true),
        _ => (record.text.len(), false),
    };
    let mut at_field_start = !quoted;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if quoted {
            let run = bytes[i..]
                .iter()
                .position(|&c| c == b'"')
                .unwrap_or(bytes.len() - i);
            record.text.push_str(&line[i..i + run]);
            i += run;
            if i < bytes.len() {
                if bytes.get(i + 1) == Some(&b'"') {
                    record.text.push('"');
                    i += 1;
                } else {
                    quoted = false;
                }
            }
        } else if b == delimiter {
            record.fields.push(field_start..record.text.len());
            field_start = record.text.len();
            at_field_start = true;
        } else if b == b'"' && at_field_start {
            quoted = true;
            at_field_start = false;
        } else {
            let run = bytes[i..]
                .iter()
                .position(|&c| c == delimiter || c == b'"')
                .unwrap_or(bytes.len() - i)
                .max(1);
            record.text.push_str(&line[i..i + run]);
            i += run - 1;
            at_field_start = false;
        }
        i += 1;
    }
    if quoted {
        FieldState::Quoted(field_start)
    } else {
        record.fields.push(field_start..record.text.len());
        FieldState::Done
    }
}

fn split_unquoted(line: &str, delimiter: u8, record: &mut Record) {
    let base = record.text.len();
    record.text.push_str(line);
    let mut start = base;
    for i in memchr::memchr_iter(delimiter, line.as_bytes()) {
        record.fields.push(start..base + i);
        start = base + i + 1;
    }
    record.fields.push(start..record.text.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str, delimiter: u8) -> Result<Vec<(u64, Vec<String>)>, RecordError> {
        let mut records = Records::new(text.as_bytes(), delimiter, 0);
        let mut record = Record::default();
        let mut out = Vec::new();
        while records.read(&mut record)? {
            out.push((record.line, record.fields().map(str::to_owned).collect()));
        }
        Ok(out)
    }

    #[test]
    fn quoted_fields_keep_delimiters_quotes_and_line_breaks() {
        let text = "a,\"b,c\",\"say \"\"hi\"\"\"\r\n\"multi\nline\",x,\"\"\nlast,,\n";
        let rows = read_all(text, b',').unwrap();
        assert_eq!(
            rows[0],
            (1, vec!["a".into(), "b,c".into(), "say \"hi\"".into()])
        );
        assert_eq!(
            rows[1],
            (2, vec!["multi\nline".into(), "x".into(), "".into()])
        );
        assert_eq!(rows[2], (4, vec!["last".into(), "".into(), "".into()]));
        assert_eq!(rows.len(), 3);
    }

    #[test]
    fn semicolons_and_tabs_split_only_on_their_delimiter() {
        let rows = read_all("a;b,c\tc\n", b';').unwrap();
        assert_eq!(rows[0].1, vec!["a", "b,c\tc"]);
        let rows = read_all("a;b\tc\n", b'\t').unwrap();
        assert_eq!(rows[0].1, vec!["a;b", "c"]);
    }

    #[test]
    fn an_unclosed_quote_is_an_error_naming_its_line() {
        let err = read_all("a,b\nc,\"d\ne,f\n", b',').unwrap_err();
        assert!(
            matches!(err, RecordError::UnclosedQuote { line: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_non_utf8_line_is_an_error_naming_its_line() {
        let mut bytes = b"a,b\n".to_vec();
        bytes.extend_from_slice(&[0xc0, 0xee, 0xce, 0xb0, b',', b'x', b'\n']);
        let mut records = Records::new(&bytes[..], b',', 0);
        let mut record = Record::default();
        assert!(records.read(&mut record).unwrap());
        let err = records.read(&mut record).unwrap_err();
        assert!(matches!(err, RecordError::NotUtf8 { line: 2, .. }));
    }

    #[test]
    fn a_quote_left_open_in_a_big_file_stops_at_the_record_limit() {
        let mut text = String::from("a,\"b\n");
        for _ in 0..(MAX_RECORD_BYTES / 10 + 10) {
            text.push_str("123456789\n");
        }
        let err = read_all(&text, b',').unwrap_err();
        assert!(
            matches!(err, RecordError::TooLong { line: 1, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn stray_quotes_inside_a_field_are_kept_as_written() {
        let rows = read_all("ab\"c,\"d\"e\n", b',').unwrap();
        assert_eq!(rows[0].1, vec!["ab\"c", "de"]);
    }
}
