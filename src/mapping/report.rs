//! What `map validate` finds: each finding with where it is, what is
//! wrong, and whether it makes the file unusable.

use serde::Serialize;

/// Whether a finding makes the file unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Error,
    Warning,
}

/// The kinds of findings of `user-mapping.md`, as stable machine-readable
/// codes (scripts match on them; do not rename).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// The file is not UTF-8 (GB18030, UTF-16, Windows-1252...).
    NotUtf8,
    /// Line breaks a CSV reader cannot split (a lone CR, old Mac files).
    LineEndings,
    /// No header, or a header without a number or a mailbox column.
    MissingColumn,
    /// Two columns both look like the number (or the mailbox) column.
    AmbiguousColumn,
    /// A row with more or fewer fields than the header.
    FieldCount,
    /// A quote that is never closed.
    UnclosedQuote,
    EmptyNumber,
    EmptyMailbox,
    /// Not a phone number at all.
    InvalidNumber,
    /// A phone number that cannot exist in its region.
    ImpossibleNumber,
    InvalidMailbox,
    /// A valid address whose domain has no dot (`li.wei@contoso`): usually
    /// a typo, accepted by a Maildir target but by no mail service.
    UnqualifiedDomain,
    /// The same number mapped to two different mailboxes.
    ConflictingNumber,
    /// The same number and mailbox repeated.
    DuplicateRow,
    /// A number the TeleMessage account does not have registered.
    NotInTelemessage,
    /// A registered TeleMessage user with no row in the file.
    UnmappedRegisteredUser,
    /// A mailbox the target says is not one of its users.
    NotATargetUser,
}

impl Code {
    pub fn level(self) -> Level {
        match self {
            Code::DuplicateRow
            | Code::UnqualifiedDomain
            | Code::NotInTelemessage
            | Code::UnmappedRegisteredUser => Level::Warning,
            _ => Level::Error,
        }
    }

    /// A short heading for the human report's groups.
    pub fn title(self) -> &'static str {
        match self {
            Code::NotUtf8 => "file is not UTF-8",
            Code::LineEndings => "unsupported line endings",
            Code::MissingColumn => "missing or unrecognised header",
            Code::AmbiguousColumn => "ambiguous header",
            Code::FieldCount => "wrong number of fields",
            Code::UnclosedQuote => "unclosed quote",
            Code::EmptyNumber => "empty number",
            Code::EmptyMailbox => "empty mailbox",
            Code::InvalidNumber => "not a phone number",
            Code::ImpossibleNumber => "impossible number",
            Code::InvalidMailbox => "invalid mailbox address",
            Code::UnqualifiedDomain => "mailbox domain without a dot",
            Code::ConflictingNumber => "number mapped to two mailboxes",
            Code::DuplicateRow => "repeated row",
            Code::NotInTelemessage => "number not registered in TeleMessage",
            Code::UnmappedRegisteredUser => "registered user without a mapping",
            Code::NotATargetUser => "mailbox is not a user of the target",
        }
    }

    /// The code as it appears in JSON, e.g. `conflicting_number`.
    pub fn as_str(self) -> &'static str {
        CODE_NAMES
            .iter()
            .find(|(c, _)| *c == self)
            .map(|(_, n)| *n)
            .unwrap_or("unknown")
    }
}

const CODE_NAMES: &[(Code, &str)] = &[
    (Code::NotUtf8, "not_utf8"),
    (Code::LineEndings, "line_endings"),
    (Code::MissingColumn, "missing_column"),
    (Code::AmbiguousColumn, "ambiguous_column"),
    (Code::FieldCount, "field_count"),
    (Code::UnclosedQuote, "unclosed_quote"),
    (Code::EmptyNumber, "empty_number"),
    (Code::EmptyMailbox, "empty_mailbox"),
    (Code::InvalidNumber, "invalid_number"),
    (Code::ImpossibleNumber, "impossible_number"),
    (Code::InvalidMailbox, "invalid_mailbox"),
    (Code::UnqualifiedDomain, "unqualified_domain"),
    (Code::ConflictingNumber, "conflicting_number"),
    (Code::DuplicateRow, "duplicate_row"),
    (Code::NotInTelemessage, "not_in_telemessage"),
    (Code::UnmappedRegisteredUser, "unmapped_registered_user"),
    (Code::NotATargetUser, "not_a_target_user"),
];

/// One problem, located precisely enough to fix it in a spreadsheet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The line in the file (1-based); `None` for findings about things
    /// that are not in the file (a registered user with no row).
    pub line: Option<u64>,
    /// The column's header as written in the file, when one column is at fault.
    pub column: Option<String>,
    /// The offending value as written (shortened when very long).
    pub value: String,
    pub code: Code,
    pub level: Level,
    pub message: String,
    /// The other line involved (the first mapping of a repeated number).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_line: Option<u64>,
}

/// Longest value quoted in a finding; a swallowed file stays readable.
const MAX_VALUE_CHARS: usize = 200;

impl Finding {
    pub fn new(code: Code, line: Option<u64>, value: &str, message: impl Into<String>) -> Self {
        Finding {
            line,
            column: None,
            value: shorten(value),
            code,
            level: code.level(),
            message: message.into(),
            other_line: None,
        }
    }

    pub fn in_column(mut self, column: &str) -> Self {
        self.column = Some(column.to_owned());
        self
    }

    pub fn with_other_line(mut self, line: u64) -> Self {
        self.other_line = Some(line);
        self
    }
}

fn shorten(value: &str) -> String {
    if value.chars().count() <= MAX_VALUE_CHARS {
        value.to_owned()
    } else {
        let mut s: String = value.chars().take(MAX_VALUE_CHARS).collect();
        s.push('…');
        s
    }
}

/// How the file was read, so an admin can see the tool understood it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Dialect {
    /// `comma`, `semicolon` or `tab`; `None` if no header line was read.
    pub delimiter: Option<String>,
    /// `utf-8` or `utf-8-bom`; `None` if the file is not UTF-8.
    pub encoding: Option<String>,
    /// The number column's header as written.
    pub number_column: Option<String>,
    /// The mailbox column's header as written.
    pub mailbox_column: Option<String>,
}

/// The outcome of validating a mapping file: counts and every finding.
/// The file is usable when there is no error.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    file: String,
    default_region: Option<String>,
    dialect: Dialect,
    rows: u64,
    valid: u64,
    mappings: u64,
    usable: bool,
    /// What the file was compared with besides itself, e.g.
    /// `telemessage https://archive.example.net`.
    checks: Vec<String>,
    errors: Vec<Finding>,
    warnings: Vec<Finding>,
}

impl Report {
    pub fn new(file: &str, default_region: Option<String>) -> Self {
        Report {
            file: file.to_owned(),
            default_region,
            dialect: Dialect::default(),
            rows: 0,
            valid: 0,
            mappings: 0,
            usable: true,
            checks: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub fn push(&mut self, finding: Finding) {
        match finding.level {
            Level::Error => {
                self.usable = false;
                self.errors.push(finding);
            }
            Level::Warning => self.warnings.push(finding),
        }
    }

    pub fn extend(&mut self, findings: impl IntoIterator<Item = Finding>) {
        for f in findings {
            self.push(f);
        }
    }

    /// Records that a check ran, so a clean report shows it was done.
    pub fn add_check(&mut self, description: impl Into<String>) {
        self.checks.push(description.into());
    }

    pub fn checks(&self) -> &[String] {
        &self.checks
    }

    /// Whether the file can be used for mapping (no error).
    pub fn is_usable(&self) -> bool {
        self.usable
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn default_region(&self) -> Option<&str> {
        self.default_region.as_deref()
    }

    pub fn dialect(&self) -> &Dialect {
        &self.dialect
    }

    /// Data rows read (the header and blank lines not counted).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Rows without any error.
    pub fn valid(&self) -> u64 {
        self.valid
    }

    /// Distinct numbers mapped.
    pub fn mappings(&self) -> u64 {
        self.mappings
    }

    pub fn errors(&self) -> &[Finding] {
        &self.errors
    }

    pub fn warnings(&self) -> &[Finding] {
        &self.warnings
    }

    pub(crate) fn set_dialect(&mut self, dialect: Dialect) {
        self.dialect = dialect;
    }

    pub(crate) fn count_row(&mut self, valid: bool) {
        self.rows += 1;
        if valid {
            self.valid += 1;
        }
    }

    pub(crate) fn set_mappings(&mut self, mappings: u64) {
        self.mappings = mappings;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names_match_their_json_spelling() {
        for (code, name) in CODE_NAMES {
            assert_eq!(serde_json::to_value(code).unwrap(), *name);
        }
    }

    #[test]
    fn one_error_makes_the_report_unusable_warnings_do_not() {
        let mut r = Report::new("m.csv", None);
        r.push(Finding::new(Code::DuplicateRow, Some(3), "+86", "repeated"));
        assert!(r.is_usable());
        r.push(Finding::new(Code::EmptyMailbox, Some(4), "", "empty"));
        assert!(!r.is_usable());
        assert_eq!((r.errors().len(), r.warnings().len()), (1, 1));
    }
}
