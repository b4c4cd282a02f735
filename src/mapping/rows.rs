//! The rows after the header. The calling thread reads records and applies
//! the results in file order (findings, duplicate index, sink); checker
//! threads (one per core) check numbers and addresses, the costly part, a
//! few batches ahead. Findings come out in line order whatever the threads do.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead};
use std::ops::Range;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use rustc_hash::FxBuildHasher;

use super::header::Columns;
use super::phone::{self, DefaultRegion, PhoneError};
use super::records::{MAX_RECORD_BYTES, Record, RecordError, Records};
use super::report::{Code, Finding, Report};
use super::validate::{GoodRow, not_utf8};
use crate::types::{E164, Mailbox};

/// Rows per batch handed to the checking thread.
const BATCH_ROWS: usize = 4096;
/// Batches queued per checker thread.
const IN_FLIGHT: usize = 2;
/// Most checker threads, whatever the core count.
const MAX_CHECKERS: usize = 4;
/// Most rows the index is sized for up front (a wrong size hint must not
/// allocate absurdly; beyond it the index grows as needed).
const MAX_RESERVED_ROWS: usize = 50_000_000;

/// Checker threads: one per core (the reading thread does little).
fn checker_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, MAX_CHECKERS)
}

/// The checker threads, fed round-robin and read back in the same order,
/// which keeps the batches (and so the findings) in file order.
struct Pipeline {
    lanes: Vec<Lane>,
    /// The lane of each batch sent and not yet received, oldest first.
    pending: VecDeque<usize>,
    next: usize,
}

struct Lane {
    to: Option<SyncSender<Batch>>,
    from: Receiver<Batch>,
}

fn stopped() -> io::Error {
    io::Error::other("a row-checking thread stopped")
}

impl Pipeline {
    fn send(&mut self, batch: Batch) -> io::Result<()> {
        let lane = self.next;
        self.next = (lane + 1) % self.lanes.len();
        let to = self.lanes[lane].to.as_ref().ok_or_else(stopped)?;
        to.send(batch).map_err(|_| stopped())?;
        self.pending.push_back(lane);
        Ok(())
    }

    fn is_full(&self) -> bool {
        self.pending.len() >= self.lanes.len() * IN_FLIGHT
    }

    /// The oldest batch sent, once checked; `None` when none is pending.
    fn recv(&mut self) -> Option<io::Result<Batch>> {
        let lane = self.pending.pop_front()?;
        Some(self.lanes[lane].from.recv().map_err(|_| stopped()))
    }

    /// Lets the checkers finish once their queues are empty.
    fn close(&mut self) {
        for lane in &mut self.lanes {
            lane.to = None;
        }
    }
}

/// A batch of rows on its way through the checking thread. Everything the
/// checker allocates stays on its thread; only these buffers travel.
#[derive(Default)]
struct Batch {
    /// The number and mailbox fields of the rows, back to back.
    text: String,
    /// The lowercase keys of the valid mailboxes, written by the checker.
    keys: String,
    rows: Vec<Row>,
    /// One result per [`Row::Fields`], filled by the checking thread.
    checked: Vec<Checked>,
    /// Why reading stopped after these rows (an unclosed quote, a line
    /// that is not UTF-8).
    stop: Option<Finding>,
}

enum Row {
    Fields {
        line: u64,
        number: Range<usize>,
        mailbox: Range<usize>,
    },
    /// A row whose field count differs from the header's; not checked.
    FieldCount(Finding),
}

struct Checked {
    number: Result<NumberKey, NumberProblem>,
    mailbox: MailboxCheck,
}

/// An E.164 number as an integer: at most 15 digits and no leading zero,
/// so the digits identify the number (and give it back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct NumberKey(u64);

impl NumberKey {
    fn of(number: &E164) -> Self {
        NumberKey(
            number.as_str()[1..]
                .bytes()
                .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')),
        )
    }

    fn e164(self) -> String {
        format!("+{}", self.0)
    }
}

enum NumberProblem {
    Empty,
    Bad(PhoneError),
}

enum MailboxCheck {
    Invalid,
    /// The lowercase key is at this range of [`Batch::keys`].
    Valid {
        key: Range<usize>,
        qualified: bool,
    },
}

fn check(
    number: &str,
    mailbox: &str,
    region: Option<DefaultRegion>,
    implied_plus: bool,
    keys: &mut String,
) -> Checked {
    let trimmed = number.trim();
    let with_plus;
    let number =
        if implied_plus && !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            with_plus = format!("+{trimmed}");
            &with_plus
        } else {
            number
        };
    let number = if number.trim().is_empty() {
        Err(NumberProblem::Empty)
    } else {
        phone::normalise(number, region)
            .map(|n| NumberKey::of(&n))
            .map_err(NumberProblem::Bad)
    };
    let mailbox = match Mailbox::parse(mailbox) {
        Ok(m) => {
            let start = keys.len();
            keys.push_str(m.key());
            MailboxCheck::Valid {
                key: start..keys.len(),
                qualified: domain_is_qualified(&m),
            }
        }
        Err(_) => MailboxCheck::Invalid,
    };
    Checked { number, mailbox }
}

fn check_batch(batch: &mut Batch, region: Option<DefaultRegion>, implied_plus: bool) {
    let Batch {
        text,
        keys,
        rows,
        checked,
        ..
    } = batch;
    *checked = rows
        .iter()
        .filter_map(|row| match row {
            Row::Fields {
                number, mailbox, ..
            } => Some(check(
                &text[number.clone()],
                &text[mailbox.clone()],
                region,
                implied_plus,
                keys,
            )),
            Row::FieldCount(_) => None,
        })
        .collect();
}

pub(super) struct RowChecker<'r> {
    pub columns: Columns,
    /// The two columns' names, ready for findings.
    pub number_column: String,
    pub mailbox_column: String,
    pub region: Option<DefaultRegion>,
    pub size_hint: Option<u64>,
    pub index: Index,
    pub report: &'r mut Report,
}

impl RowChecker<'_> {
    pub fn run(
        &mut self,
        records: Records<impl BufRead>,
        mut sink: Option<&mut dyn FnMut(GoodRow)>,
    ) -> io::Result<()> {
        let region = self.region;
        let implied_plus = self.columns.implied_plus;
        std::thread::scope(|scope| {
            let lanes = (0..checker_count())
                .map(|_| {
                    let (to_checker, checker_in) = sync_channel::<Batch>(IN_FLIGHT);
                    let (checker_out, from_checker) = sync_channel::<Batch>(IN_FLIGHT);
                    scope.spawn(move || {
                        for mut batch in checker_in {
                            check_batch(&mut batch, region, implied_plus);
                            if checker_out.send(batch).is_err() {
                                break;
                            }
                        }
                    });
                    Lane {
                        to: Some(to_checker),
                        from: from_checker,
                    }
                })
                .collect();
            let mut pipeline = Pipeline {
                lanes,
                pending: VecDeque::new(),
                next: 0,
            };
            let fed = self.feed(records, &mut pipeline, &mut sink);
            pipeline.close();
            while let Some(Ok(batch)) = pipeline.recv() {
                self.apply(batch, &mut sink);
            }
            fed
        })
    }

    /// Reads batches and hands them on, applying the checked ones in order
    /// as they come back, so only a few batches are held at a time.
    fn feed(
        &mut self,
        mut records: Records<impl BufRead>,
        pipeline: &mut Pipeline,
        sink: &mut Option<&mut dyn FnMut(GoodRow)>,
    ) -> io::Result<()> {
        let mut record = Record::default();
        let mut first = true;
        loop {
            let (batch, last) = self.read_batch(&mut records, &mut record)?;
            if first && !last {
                self.size_index(&batch, records.bytes_read());
                first = false;
            }
            pipeline.send(batch)?;
            if last {
                return Ok(());
            }
            if pipeline.is_full()
                && let Some(checked) = pipeline.recv()
            {
                self.apply(checked?, sink);
            }
        }
    }

    /// Sizes the index for the whole file from the first batch's bytes per
    /// row, when the file's size is known.
    fn size_index(&mut self, batch: &Batch, bytes_read: u64) {
        let Some(size) = self.size_hint else { return };
        if bytes_read == 0 || batch.rows.is_empty() {
            return;
        }
        let rows = batch.rows.len() as u64;
        let expected = size.saturating_mul(rows) / bytes_read;
        let mailbox_bytes: usize = batch
            .rows
            .iter()
            .map(|r| match r {
                Row::Fields { mailbox, .. } => mailbox.len() + 1,
                Row::FieldCount(_) => 0,
            })
            .sum();
        let per_row = mailbox_bytes as u64 / rows;
        self.index.reserve(expected + expected / 32, per_row);
    }

    /// Up to [`BATCH_ROWS`] rows; `true` when the file ends (or cannot be
    /// read further) with them.
    fn read_batch(
        &self,
        records: &mut Records<impl BufRead>,
        record: &mut Record,
    ) -> io::Result<(Batch, bool)> {
        let mut batch = Batch::default();
        while batch.rows.len() < BATCH_ROWS {
            match records.read(record) {
                Ok(true) => self.take(record, &mut batch),
                Ok(false) => return Ok((batch, true)),
                Err(e) => {
                    batch.stop = Some(record_error(e)?);
                    return Ok((batch, true));
                }
            }
        }
        Ok((batch, false))
    }

    fn take(&self, record: &Record, batch: &mut Batch) {
        if record.is_blank() {
            return;
        }
        let expected = self.columns.names.len();
        if record.len() != expected {
            batch
                .rows
                .push(Row::FieldCount(field_count(record, expected)));
            return;
        }
        let mut copy = |index| {
            let start = batch.text.len();
            batch.text.push_str(record.field(index).unwrap_or(""));
            start..batch.text.len()
        };
        let number = copy(self.columns.number);
        let mailbox = copy(self.columns.mailbox);
        batch.rows.push(Row::Fields {
            line: record.line,
            number,
            mailbox,
        });
    }

    fn apply(&mut self, batch: Batch, sink: &mut Option<&mut dyn FnMut(GoodRow)>) {
        let Batch {
            text,
            keys,
            rows,
            checked,
            stop,
        } = batch;
        let mut checked = checked.into_iter();
        for row in rows {
            match row {
                Row::FieldCount(finding) => {
                    self.report.push(finding);
                    self.report.count_row(false);
                }
                Row::Fields {
                    line,
                    number,
                    mailbox,
                } => {
                    if let Some(c) = checked.next() {
                        let row = Fields {
                            line,
                            number: &text[number],
                            mailbox: &text[mailbox],
                        };
                        self.apply_row(&row, c, &keys, sink);
                    }
                }
            }
        }
        if let Some(finding) = stop {
            self.report.push(finding);
        }
    }

    fn apply_row(
        &mut self,
        row: &Fields,
        checked: Checked,
        keys: &str,
        sink: &mut Option<&mut dyn FnMut(GoodRow)>,
    ) {
        let errors_before = self.report.errors().len();
        let number = match checked.number {
            Ok(n) => Some(n),
            Err(problem) => {
                let finding = number_finding(problem, row.line, row.number);
                self.report.push(finding.in_column(&self.number_column));
                None
            }
        };
        let mailbox_key = self.mailbox(row, checked.mailbox, keys);
        if let (Some(number), Some(key)) = (number, mailbox_key) {
            self.dedupe(row, number, key, sink);
        }
        let valid = self.report.errors().len() == errors_before;
        self.report.count_row(valid);
    }

    /// The mailbox's key if it is valid, after any finding about it.
    fn mailbox<'k>(&mut self, row: &Fields, check: MailboxCheck, keys: &'k str) -> Option<&'k str> {
        let (line, raw) = (row.line, row.mailbox);
        let (finding, key) = match check {
            _ if raw.trim().is_empty() => (
                Finding::new(Code::EmptyMailbox, Some(line), raw, "the mailbox is empty"),
                None,
            ),
            MailboxCheck::Invalid => (
                Finding::new(Code::InvalidMailbox, Some(line), raw, mailbox_message(raw)),
                None,
            ),
            MailboxCheck::Valid { key, qualified } if !qualified => (
                Finding::new(
                    Code::UnqualifiedDomain,
                    Some(line),
                    raw,
                    "the mailbox's domain has no dot (a typo for a domain like contoso.com?); only a Maildir target accepts it",
                ),
                Some(&keys[key]),
            ),
            MailboxCheck::Valid { key, .. } => return Some(&keys[key]),
        };
        self.report.push(finding.in_column(&self.mailbox_column));
        key
    }

    fn dedupe(
        &mut self,
        row: &Fields,
        number: NumberKey,
        mailbox_key: &str,
        sink: &mut Option<&mut dyn FnMut(GoodRow)>,
    ) {
        let (line, raw) = (row.line, row.number);
        let mailbox = row.mailbox.trim();
        let finding = match self.index.insert(number, mailbox_key, line) {
            Outcome::New => {
                if let Some(sink) = sink
                    && let Some(good) = good_row(row, number)
                {
                    sink(good);
                }
                return;
            }
            Outcome::Repeat { first_line } => Finding::new(
                Code::DuplicateRow,
                Some(line),
                raw,
                format!(
                    "repeats line {first_line} ({} to {mailbox}); the repeat is ignored",
                    number.e164()
                ),
            )
            .with_other_line(first_line),
            Outcome::Conflict {
                first_line,
                first_mailbox,
            } => Finding::new(
                Code::ConflictingNumber,
                Some(line),
                raw,
                format!(
                    "{} is mapped to {first_mailbox} on line {first_line} and to {mailbox} on line {line}: a number belongs to one mailbox; remove or correct one of the two rows",
                    number.e164()
                ),
            )
            .with_other_line(first_line),
        };
        self.report.push(finding.in_column(&self.number_column));
    }
}

/// A row's two fields as read.
struct Fields<'t> {
    line: u64,
    number: &'t str,
    mailbox: &'t str,
}

/// The row as values, for a sink; both were checked already.
fn good_row(row: &Fields, number: NumberKey) -> Option<GoodRow> {
    Some(GoodRow {
        number: E164::parse_canonical(&number.e164()).ok()?,
        mailbox: Mailbox::parse(row.mailbox).ok()?,
        line: row.line,
    })
}

fn number_finding(problem: NumberProblem, line: u64, raw: &str) -> Finding {
    match problem {
        NumberProblem::Empty => {
            Finding::new(Code::EmptyNumber, Some(line), raw, "the number is empty")
        }
        NumberProblem::Bad(e) => {
            let code = match e {
                PhoneError::Impossible(_) => Code::ImpossibleNumber,
                PhoneError::Unparseable(_) => Code::InvalidNumber,
            };
            Finding::new(code, Some(line), raw, format!("the number {e}"))
        }
    }
}

/// The duplicate-detection index: for each distinct number, the line that
/// first mapped it and where that mailbox's key starts in one arena string
/// (each key ends with a newline, which no address contains).
#[derive(Default)]
pub(super) struct Index {
    seen: HashMap<NumberKey, Seen, FxBuildHasher>,
    arena: String,
}

struct Seen {
    line: u64,
    start: usize,
}

enum Outcome {
    New,
    Repeat {
        first_line: u64,
    },
    Conflict {
        first_line: u64,
        first_mailbox: String,
    },
}

impl Index {
    /// Distinct numbers seen.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    fn reserve(&mut self, rows: u64, key_bytes_per_row: u64) {
        let rows = usize::try_from(rows)
            .unwrap_or(usize::MAX)
            .min(MAX_RESERVED_ROWS);
        let bytes = usize::try_from(key_bytes_per_row)
            .unwrap_or(0)
            .saturating_mul(rows);
        self.seen.reserve(rows);
        self.arena.reserve(bytes);
    }

    fn insert(&mut self, number: NumberKey, mailbox_key: &str, line: u64) -> Outcome {
        match self.seen.entry(number) {
            Entry::Occupied(seen) => {
                let seen = seen.get();
                let rest = &self.arena[seen.start..];
                let first = rest.split('\n').next().unwrap_or(rest);
                if first == mailbox_key {
                    Outcome::Repeat {
                        first_line: seen.line,
                    }
                } else {
                    Outcome::Conflict {
                        first_line: seen.line,
                        first_mailbox: first.to_owned(),
                    }
                }
            }
            Entry::Vacant(slot) => {
                let start = self.arena.len();
                self.arena.push_str(mailbox_key);
                self.arena.push('\n');
                slot.insert(Seen { line, start });
                Outcome::New
            }
        }
    }
}

fn domain_is_qualified(mailbox: &Mailbox) -> bool {
    let domain = mailbox.as_str().rsplit('@').next().unwrap_or("");
    domain.contains('.') || domain.starts_with('[')
}

fn mailbox_message(raw: &str) -> String {
    let hint = if !raw.contains('@') {
        " (it has no @)"
    } else if raw.contains([',', ';']) {
        " (one mailbox per row: give each number a single address)"
    } else if raw.trim().contains(char::is_whitespace) {
        " (it contains a space)"
    } else {
        ""
    };
    format!("the mailbox is not a valid e-mail address{hint}")
}

fn field_count(record: &Record, expected: usize) -> Finding {
    let found = record.len();
    let value = record.fields().collect::<Vec<_>>().join(" | ");
    let spans = if record.end_line > record.line {
        format!(
            " (the row runs from line {} to line {}: check for a quote left open)",
            record.line, record.end_line
        )
    } else {
        String::new()
    };
    Finding::new(
        Code::FieldCount,
        Some(record.line),
        &value,
        format!(
            "the row has {found} field(s) but the header has {expected}{spans}: a value that contains the delimiter must be in double quotes"
        ),
    )
}

/// The finding for a record the reader could not split; read errors are
/// not findings but failures.
fn record_error(e: RecordError) -> io::Result<Finding> {
    Ok(match e {
        RecordError::NotUtf8 { line, bytes } => not_utf8(line, &bytes),
        RecordError::UnclosedQuote { line, start } => Finding::new(
            Code::UnclosedQuote,
            Some(line),
            &start,
            format!(
                "a double quote opened on line {line} is never closed, so everything from there to the end of the file was read as one value: close the quote or remove it"
            ),
        ),
        RecordError::TooLong { line, start } => Finding::new(
            Code::UnclosedQuote,
            Some(line),
            &start,
            format!(
                "a double quote opened on line {line} is not closed within {} MiB, so the rest of the file cannot be read reliably: close the quote or remove it",
                MAX_RECORD_BYTES >> 20
            ),
        ),
        RecordError::Io(e) => return Err(e),
    })
}
