//! The custom mapping as the sync engine uses it: numbers to mailboxes,
//! loaded only from a file that validates without error.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::phone::{DefaultRegion, UnknownRegion};
use super::report::{Finding, Report};
use super::validate::{self, GoodRow, ValidateOptions};
use crate::types::{E164, Mailbox};

/// Why a mapping file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("cannot read the mapping file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Region(#[from] UnknownRegion),
    /// The file has error-level findings; nothing of it is used.
    #[error("{}", invalid_message(.path, *.count, .first))]
    Invalid {
        path: PathBuf,
        count: usize,
        first: Box<Finding>,
    },
}

fn invalid_message(path: &Path, count: usize, first: &Finding) -> String {
    let place = match first.line {
        Some(line) => format!("{}:{line}", path.display()),
        None => path.display().to_string(),
    };
    format!(
        "the mapping file {} cannot be used: it has {count} error(s), the first at {place}: {}. Run `wechat-archiver map validate {}` to see every problem, fix the file, then run again",
        path.display(),
        first.message,
        path.display()
    )
}

/// One mapping and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub mailbox: Mailbox,
    /// The line of the file (0 for tables not read from a file).
    pub line: u64,
}

/// Mobile numbers (E.164) to the mailbox their traffic belongs to.
#[derive(Debug, Clone, Default)]
pub struct MappingTable {
    entries: HashMap<E164, Entry>,
    default_region: Option<DefaultRegion>,
}

impl MappingTable {
    /// A table built in code (tests, tools); numbers seen twice keep the first.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (E164, Mailbox)>) -> Self {
        let mut table = MappingTable::default();
        for (number, mailbox) in pairs {
            table
                .entries
                .entry(number)
                .or_insert(Entry { mailbox, line: 0 });
        }
        table
    }

    pub fn get(&self, number: &E164) -> Option<&Mailbox> {
        self.entries.get(number).map(|e| &e.mailbox)
    }

    pub fn entry(&self, number: &E164) -> Option<&Entry> {
        self.entries.get(number)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every mapping, in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&E164, &Entry)> {
        let mut all: Vec<_> = self.entries.iter().collect();
        all.sort_by_key(|(_, e)| e.line);
        all.into_iter()
    }

    /// Each distinct mailbox once, with the first line that names it.
    pub fn mailboxes(&self) -> Vec<(&Mailbox, u64)> {
        let mut first: HashMap<&Mailbox, u64> = HashMap::new();
        for e in self.entries.values() {
            let line = first.entry(&e.mailbox).or_insert(e.line);
            *line = (*line).min(e.line);
        }
        let mut all: Vec<_> = first.into_iter().collect();
        all.sort_by_key(|(m, line)| (*line, m.key().to_owned()));
        all
    }

    /// The region the file's national numbers were read in; participant
    /// numbers not in E.164 form are read the same way.
    pub fn default_region(&self) -> Option<DefaultRegion> {
        self.default_region
    }

    fn insert(&mut self, row: GoodRow) {
        self.entries.entry(row.number).or_insert(Entry {
            mailbox: row.mailbox,
            line: row.line,
        });
    }
}

/// Loads the custom mapping for a sync run. Any error-level finding fails
/// the load: a partly wrong mapping would send traffic to wrong mailboxes.
pub fn load(path: &Path, default_region: Option<&str>) -> Result<MappingTable, MappingError> {
    let region = default_region.map(DefaultRegion::parse).transpose()?;
    let (report, table) = validate_with_table(path, region)?;
    match report.errors().first() {
        None => Ok(table),
        Some(first) => Err(MappingError::Invalid {
            path: path.to_owned(),
            count: report.errors().len(),
            first: Box::new(first.clone()),
        }),
    }
}

/// Validates a file and also returns the usable part of it as a table
/// (for checks that need the mappings: TeleMessage, the target).
pub fn validate_with_table(
    path: &Path,
    default_region: Option<DefaultRegion>,
) -> Result<(Report, MappingTable), MappingError> {
    let mut table = MappingTable {
        default_region,
        ..MappingTable::default()
    };
    let options = options_for(path, default_region);
    let report = read(path, |file| {
        validate::scan(file, &options, |row| table.insert(row))
    })?;
    Ok((report, table))
}

/// Validates a file, keeping nothing but the duplicate-detection index.
pub fn validate_file(
    path: &Path,
    default_region: Option<DefaultRegion>,
) -> Result<Report, MappingError> {
    let options = options_for(path, default_region);
    read(path, |file| validate::validate_reader(file, &options))
}

fn options_for(path: &Path, default_region: Option<DefaultRegion>) -> ValidateOptions {
    ValidateOptions {
        default_region,
        file_name: path.display().to_string(),
        size_hint: std::fs::metadata(path).ok().map(|m| m.len()),
    }
}

fn read(
    path: &Path,
    scan: impl FnOnce(File) -> std::io::Result<Report>,
) -> Result<Report, MappingError> {
    let failed = |source| MappingError::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(failed)?;
    scan(file).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_errors_is_refused_naming_file_line_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("people.csv");
        std::fs::write(
            &path,
            "mobile,email\n+8613800138000,a@contoso.com\n+8613800138000,b@contoso.com\n",
        )
        .unwrap();
        let err = load(&path, None).unwrap_err().to_string();
        assert!(err.contains("people.csv:3"), "{err}");
        assert!(err.contains("map validate"), "{err}");
    }

    #[test]
    fn a_good_file_loads_every_number_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("people.csv");
        std::fs::write(&path, "mobile;email\n138 0013 8000;Li.Wei@contoso.com\n+852 9123 4567;zm@contoso.com\n+852 9123 4567;zm@contoso.com\n").unwrap();
        let table = load(&path, Some("cn")).unwrap();
        assert_eq!(table.len(), 2);
        let n = E164::parse_canonical("+8613800138000").unwrap();
        assert_eq!(
            table.entry(&n).map(|e| (e.mailbox.as_str(), e.line)),
            Some(("Li.Wei@contoso.com", 2))
        );
        assert_eq!(table.default_region().map(|r| r.code()), Some("CN".into()));
    }

    #[test]
    fn an_unknown_region_or_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            load(&dir.path().join("none.csv"), None),
            Err(MappingError::Read { .. })
        ));
        assert!(matches!(
            load(&dir.path().join("none.csv"), Some("XX")),
            Err(MappingError::Region(_))
        ));
    }
}
