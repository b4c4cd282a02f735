//! One streaming pass over a mapping file that reports every finding of
//! `user-mapping.md` and hands each good row to a sink. Memory is the
//! duplicate-detection index (one small entry per distinct number), never
//! the file.

use std::io::{self, BufRead, BufReader, Read};

use super::header::{self, Columns, HeaderProblem};
use super::phone::{self, DefaultRegion};
use super::records::Records;
use super::report::{Code, Dialect, Finding, Report};
use super::rows::{Index, RowChecker};
use crate::types::{E164, Mailbox};

/// What validation needs besides the file.
#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {
    /// Region for numbers written without a `+` country code.
    pub default_region: Option<DefaultRegion>,
    /// How the file is named in the report.
    pub file_name: String,
    /// The file's size in bytes, if known: the duplicate index is then
    /// sized once instead of growing (less time, lower peak memory).
    pub size_hint: Option<u64>,
}

/// A row that passed every check, the first to map its number, for
/// callers that build a table.
#[derive(Debug, Clone)]
pub struct GoodRow {
    pub number: E164,
    pub mailbox: Mailbox,
    pub line: u64,
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
const READ_BUFFER: usize = 256 * 1024;

/// Validates a whole mapping file from `source`, reporting every finding.
/// Fails only when the source itself cannot be read.
pub fn validate_reader(source: impl Read, options: &ValidateOptions) -> io::Result<Report> {
    run(source, options, None)
}

/// Validates and passes every good, first-seen mapping to `sink`.
pub fn scan(
    source: impl Read,
    options: &ValidateOptions,
    mut sink: impl FnMut(GoodRow),
) -> io::Result<Report> {
    run(source, options, Some(&mut sink))
}

/// Without a sink the rows are only checked, never built into values.
fn run(
    source: impl Read,
    options: &ValidateOptions,
    sink: Option<&mut dyn FnMut(GoodRow)>,
) -> io::Result<Report> {
    let mut report = Report::new(&options.file_name, options.default_region.map(|r| r.code()));
    let mut reader = BufReader::with_capacity(READ_BUFFER, source);
    if let Some((columns, lines_read, delimiter)) = read_header(&mut reader, &mut report)? {
        let records = Records::new(reader, delimiter, lines_read);
        let mut rows = RowChecker {
            number_column: columns.name(columns.number),
            mailbox_column: columns.name(columns.mailbox),
            columns,
            region: options.default_region,
            size_hint: options.size_hint,
            index: Index::default(),
            report: &mut report,
        };
        rows.run(records, sink)?;
        let mappings = rows.index.len() as u64;
        report.set_mappings(mappings);
    }
    Ok(report)
}

/// Reads the first line(s) up to the header: encoding, line endings, an
/// Excel `sep=` hint, the delimiter and the columns. `None` (after
/// reporting why) when the rest of the file cannot be read meaningfully.
fn read_header(
    reader: &mut impl BufRead,
    report: &mut Report,
) -> io::Result<Option<(Columns, u64, u8)>> {
    let mut raw = Vec::new();
    let mut line_no = 1;
    reader.read_until(b'\n', &mut raw)?;
    let bom = raw.starts_with(UTF8_BOM);
    if bom {
        raw.drain(..UTF8_BOM.len());
    }
    let Some(mut line) = header_text(&raw, 1, report) else {
        return Ok(None);
    };
    let mut forced = None;
    if let Some(d) = sep_hint(&line) {
        forced = Some(d);
        raw.clear();
        reader.read_until(b'\n', &mut raw)?;
        line_no += 1;
        match header_text(&raw, line_no, report) {
            Some(l) => line = l,
            None => return Ok(None),
        }
    }
    let delimiter = forced.unwrap_or_else(|| header::detect_delimiter(&line));
    let mut dialect = Dialect {
        delimiter: Some(header::delimiter_name(delimiter).to_owned()),
        encoding: Some(if bom { "utf-8-bom" } else { "utf-8" }.to_owned()),
        ..Dialect::default()
    };
    let columns = header_columns(&line, line_no, delimiter, report);
    if let Some(c) = &columns {
        dialect.number_column = Some(c.name(c.number));
        dialect.mailbox_column = Some(c.name(c.mailbox));
    }
    report.set_dialect(dialect);
    Ok(columns.map(|c| (c, line_no, delimiter)))
}

/// The header line as text, or a finding saying why it is not readable.
fn header_text(raw: &[u8], line_no: u64, report: &mut Report) -> Option<String> {
    if raw.starts_with(b"\xFF\xFE") || raw.starts_with(b"\xFE\xFF") || raw.contains(&0) {
        report.push(Finding::new(
            Code::NotUtf8,
            Some(line_no),
            "",
            format!(
                "the file is UTF-16 (Excel's \"Unicode Text\"), not UTF-8. {}",
                RESAVE_HINT
            ),
        ));
        return None;
    }
    if raw.is_empty() {
        report.push(Finding::new(
            Code::MissingColumn,
            Some(line_no),
            "",
            "the file is empty: the first line must be a header such as `mobile_number,mailbox`",
        ));
        return None;
    }
    let text = match std::str::from_utf8(raw) {
        Ok(t) => t,
        Err(_) => {
            report.push(not_utf8(line_no, raw));
            return None;
        }
    };
    let text = text.strip_suffix('\n').unwrap_or(text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.contains('\r') {
        report.push(Finding::new(
            Code::LineEndings,
            Some(line_no),
            text.split('\r').next().unwrap_or(""),
            "lines end with a lone CR (old Macintosh format), which cannot be read reliably: re-save the file as \"CSV UTF-8\", or convert it with `tr '\\r' '\\n'`",
        ));
        return None;
    }
    Some(text.to_owned())
}

const RESAVE_HINT: &str = "Re-save it as UTF-8: in Excel, File > Save As > \"CSV UTF-8 (Comma delimited) (*.csv)\"; in WPS or LibreOffice choose the UTF-8 character set; or convert it with `iconv -f GB18030 -t UTF-8 FILE > FILE.utf8.csv` (use the file's real encoding).";

pub(super) fn not_utf8(line: u64, raw: &[u8]) -> Finding {
    let guess = if looks_like_gb(raw) {
        "it looks like GB18030/GBK, the default of Chinese-locale spreadsheets"
    } else {
        "for example GB18030 or Windows-1252"
    };
    Finding::new(
        Code::NotUtf8,
        Some(line),
        escape_invalid(raw).trim_end(),
        format!("line {line} is not UTF-8 ({guess}); the file was not read further. {RESAVE_HINT}"),
    )
}

/// The line with its invalid bytes shown as `\xNN`, so the report shows
/// exactly what is in the file instead of replacement characters.
fn escape_invalid(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len() * 2);
    for chunk in raw.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

/// Whether the invalid bytes pair up as GBK double-byte characters.
fn looks_like_gb(raw: &[u8]) -> bool {
    let mut i = 0;
    let mut pairs = 0;
    while i < raw.len() {
        let b = raw[i];
        if b < 0x80 {
            i += 1;
        } else if (0x81..=0xFE).contains(&b)
            && raw
                .get(i + 1)
                .is_some_and(|n| (0x40..=0xFE).contains(n) && *n != 0x7F)
        {
            pairs += 1;
            i += 2;
        } else {
            return false;
        }
    }
    pairs > 0
}

/// Excel writes `sep=;` as a first line to name the delimiter.
fn sep_hint(line: &str) -> Option<u8> {
    let rest = line.strip_prefix("sep=")?;
    match rest.as_bytes() {
        [d] if header::DELIMITERS.contains(d) => Some(*d),
        _ => None,
    }
}

fn header_columns(line: &str, line_no: u64, delimiter: u8, report: &mut Report) -> Option<Columns> {
    let Some(names) = header::split_header(line, delimiter) else {
        report.push(Finding::new(
            Code::UnclosedQuote,
            Some(line_no),
            line,
            "the header has a quote that is never closed",
        ));
        return None;
    };
    match header::find_columns(names.clone()) {
        Ok(c) => Some(c),
        Err(problem) => {
            report.push(header_finding(problem, &names, line, line_no, delimiter));
            None
        }
    }
}

fn header_finding(
    problem: HeaderProblem,
    names: &[String],
    line: &str,
    line_no: u64,
    delimiter: u8,
) -> Finding {
    match problem {
        HeaderProblem::Ambiguous { role, names } => Finding::new(
            Code::AmbiguousColumn,
            Some(line_no),
            line,
            format!(
                "several columns could be the {role} column ({}): rename or remove all but one",
                names.join(", ")
            ),
        ),
        HeaderProblem::Missing { number, mailbox } => {
            let what = match (number, mailbox) {
                (true, true) => "neither a number column nor a mailbox column",
                (true, false) => "no number column",
                _ => "no mailbox column",
            };
            let found = names
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut message = format!(
                "the header has {what}; found {} column(s), {} delimited: {found}. The first line must name a number column (mobile_number, mobile, phone, phone_number or \"User's mobile Number\") and a mailbox column (mailbox, email, email_address, user_principal_name, upn or \"Microsoft 365 mailbox address\"), separated by commas, semicolons or tabs",
                names.len(),
                header::delimiter_name(delimiter)
            );
            if looks_like_data(names) {
                message.push_str(
                    ". The first line looks like data: add a header line such as `mobile_number,mailbox` above it",
                );
            }
            Finding::new(Code::MissingColumn, Some(line_no), line, message)
        }
    }
}

fn looks_like_data(names: &[String]) -> bool {
    names
        .iter()
        .any(|n| Mailbox::parse(n).is_ok() || phone::normalise(n, None).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(bytes: &[u8]) -> Report {
        let options = ValidateOptions {
            default_region: DefaultRegion::parse("CN").ok(),
            file_name: "m.csv".into(),
            size_hint: Some(bytes.len() as u64),
        };
        validate_reader(bytes, &options).unwrap()
    }

    fn codes(findings: &[Finding]) -> Vec<(Option<u64>, &'static str)> {
        findings.iter().map(|f| (f.line, f.code.as_str())).collect()
    }

    #[test]
    fn every_problem_is_reported_in_one_pass() {
        let r = check(
            b"mobile_number,mailbox\n\
              +8613800138000,li.wei@contoso.com\n\
              ,a@contoso.com\n\
              +8613800138001,\n\
              call me,b@contoso.com\n\
              +86 138,c@contoso.com\n\
              +8613800138002,not-an-address\n\
              +86 138 0013 8000,zhang@contoso.com\n\
              008613800138000,LI.WEI@contoso.com\n\
              +8613800138003,d@contoso.com,extra\n\
              +8613800138004,li@contoso\n",
        );
        assert_eq!(
            codes(r.errors()),
            [
                (Some(3), "empty_number"),
                (Some(4), "empty_mailbox"),
                (Some(5), "invalid_number"),
                (Some(6), "impossible_number"),
                (Some(7), "invalid_mailbox"),
                (Some(8), "conflicting_number"),
                (Some(10), "field_count"),
            ]
        );
        assert_eq!(
            codes(r.warnings()),
            [(Some(9), "duplicate_row"), (Some(11), "unqualified_domain")]
        );
        assert_eq!((r.rows(), r.valid(), r.mappings()), (10, 3, 2));
        let conflict = &r.errors()[5];
        assert_eq!(conflict.other_line, Some(2));
        assert!(conflict.message.contains("line 2") && conflict.message.contains("line 8"));
        assert_eq!(conflict.column.as_deref(), Some("mobile_number"));
        assert!(!r.is_usable());
    }

    #[test]
    fn spreadsheet_dialects_read_the_same() {
        let variants: [&[u8]; 6] = [
            b"mobile_number,mailbox\n+8613800138000,li.wei@contoso.com\n",
            b"\xEF\xBB\xBFMobile;E-mail\r\n+86 138 0013 8000;li.wei@contoso.com\r\n;\r\n",
            b"Name\tPhone\tUPN\n\"Li, Wei\"\t13800138000\tli.wei@contoso.com\n",
            b"sep=;\n\"Mobile\";\"E-mail\"\n\"+8613800138000\";\"li.wei@contoso.com\"\n",
            b"User's mobile Number,Microsoft 365 mailbox address,Notes\n+8613800138000,li.wei@contoso.com,\"two\nlines, quoted\"\n",
            b"External User ID,Microsoft 365 User Mailbox\r\n8613800138000,li.wei@contoso.com\r\n",
        ];
        for bytes in variants {
            let r = check(bytes);
            let text = String::from_utf8_lossy(bytes);
            assert!(r.is_usable(), "{text}: {:?}", r.errors());
            assert_eq!((r.rows(), r.valid(), r.mappings()), (1, 1, 1), "{text}");
        }
        assert_eq!(
            check(variants[1]).dialect().encoding.as_deref(),
            Some("utf-8-bom")
        );
        assert_eq!(
            check(variants[2]).dialect().delimiter.as_deref(),
            Some("tab")
        );
    }

    #[test]
    fn gb18030_and_utf16_are_refused_with_how_to_resave() {
        let mut gb = b"mobile,email,name\n+8613800138000,li.wei@contoso.com,".to_vec();
        gb.extend_from_slice(&[0xC0, 0xEE, 0xCE, 0xB0, b'\n']);
        let r = check(&gb);
        assert_eq!(codes(r.errors()), [(Some(2), "not_utf8")]);
        assert!(r.errors()[0].message.contains("GB18030"));
        assert!(r.errors()[0].message.contains("CSV UTF-8"));

        let utf16: Vec<u8> = "\u{feff}mobile\tmailbox\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let r = check(&utf16);
        assert_eq!(codes(r.errors()), [(Some(1), "not_utf8")]);
        assert!(r.errors()[0].message.contains("UTF-16"));
    }

    #[test]
    fn a_header_without_the_columns_names_what_it_found() {
        let r = check(b"Name;Cell phone number;Address\nLi;+8613800138000;x\n");
        assert_eq!(codes(r.errors()), [(Some(1), "missing_column")]);
        let m = &r.errors()[0].message;
        assert!(
            m.contains("\"Name\", \"Cell phone number\", \"Address\""),
            "{m}"
        );
        assert!(m.contains("semicolon"), "{m}");

        let r = check(b"+8613800138000,li.wei@contoso.com\n");
        assert!(r.errors()[0].message.contains("looks like data"));

        let r = check(b"");
        assert_eq!(codes(r.errors()), [(Some(1), "missing_column")]);
        assert!(r.errors()[0].message.contains("empty"));
    }

    #[test]
    fn an_unclosed_quote_is_reported_at_the_line_it_opens() {
        let r = check(b"mobile,email\n+8613800138000,li.wei@contoso.com\n\"+8613800138001,x@contoso.com\n+8613800138002,y@contoso.com\n");
        assert_eq!(codes(r.errors()), [(Some(3), "unclosed_quote")]);
        assert_eq!((r.rows(), r.valid()), (1, 1));
    }

    #[test]
    fn findings_stay_in_line_order_across_batches() {
        let mut text = String::from("mobile,email\n");
        for i in 0..10_000u64 {
            let line = i + 2;
            let row = match line {
                4097 | 4098 | 8194 => format!("not a number,u{i}@contoso.com\n"),
                9000 => "+8613800000005,someone.else@contoso.com\n".to_owned(),
                9001 => "x,y,z\n".to_owned(),
                _ => format!("+86138{i:08},u{i}@contoso.com\n"),
            };
            text.push_str(&row);
        }
        text.push_str("\"+8613900000000,open@contoso.com\n");
        let r = check(text.as_bytes());
        let lines: Vec<u64> = r.errors().iter().filter_map(|f| f.line).collect();
        assert_eq!(lines, [4097, 4098, 8194, 9000, 9001, 10_002]);
        assert_eq!(r.errors()[3].other_line, Some(7));
        assert_eq!(r.errors()[5].code, Code::UnclosedQuote);
        assert_eq!((r.rows(), r.valid(), r.mappings()), (10_000, 9_995, 9_995));
    }

    /// Byte soup (quotes, delimiters, CR, LF, invalid UTF-8) after a good
    /// header: a report, never a panic, and findings in line order.
    #[test]
    fn arbitrary_bytes_give_a_report_not_a_panic() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let alphabet: &[u8] = b"\",;\t\r\n\n\n+0123456789 @.a\xff\xc3";
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..1_000 {
            let mut bytes = b"mobile,email\n".to_vec();
            let len = rng.random_range(0..300);
            bytes.extend((0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())]));
            let r = check(&bytes);
            let lines: Vec<u64> = r.errors().iter().filter_map(|f| f.line).collect();
            assert!(
                lines.is_sorted(),
                "{:?}: {lines:?}",
                String::from_utf8_lossy(&bytes)
            );
            assert!(r.valid() <= r.rows());
        }
    }

    #[test]
    fn a_national_number_without_a_region_is_an_error_that_says_what_to_do() {
        let options = ValidateOptions::default();
        let r = validate_reader(
            &b"mobile,email\n13800138000,li.wei@contoso.com\n"[..],
            &options,
        )
        .unwrap();
        assert_eq!(codes(r.errors()), [(Some(2), "impossible_number")]);
        assert!(r.errors()[0].message.contains("--default-region"));
    }
}
