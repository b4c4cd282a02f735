//! Reading the header row: which delimiter the spreadsheet used and which
//! columns hold the number and the mailbox, under the names people give
//! them (`user-mapping.md` lists the aliases).

use super::records::{Record, Records};

/// Header names for the number column, after [`header_key`].
const NUMBER_ALIASES: &[&str] = &[
    "mobilenumber",
    "mobile",
    "phone",
    "phonenumber",
    "usersmobilenumber",
    "mobilephone",
    "mobilephonenumber",
    "mobileno",
    "cellphone",
    "cellphonenumber",
    "cell",
    "msisdn",
    "telephone",
    "telephonenumber",
    "externaluserid",
    "手机",
    "手机号",
    "手机号码",
    "移动电话",
    "电话",
    "电话号码",
];

/// TeleMessage's own custom-mapping column (`telemessage-email.md` §3).
const TELEMESSAGE_NUMBER: &str = "externaluserid";

/// Header names for the mailbox column, after [`header_key`].
const MAILBOX_ALIASES: &[&str] = &[
    "mailbox",
    "email",
    "emailaddress",
    "userprincipalname",
    "upn",
    "microsoft365mailboxaddress",
    "mailboxaddress",
    "mail",
    "mailaddress",
    "smtpaddress",
    "primarysmtpaddress",
    "microsoft365usermailbox",
    "邮箱",
    "邮箱地址",
    "电子邮件",
    "电子邮箱",
    "电子邮件地址",
    "邮件地址",
];

/// The delimiters spreadsheets save with, in order of preference.
pub const DELIMITERS: [u8; 3] = [b',', b';', b'\t'];

pub fn delimiter_name(delimiter: u8) -> &'static str {
    match delimiter {
        b';' => "semicolon",
        b'\t' => "tab",
        _ => "comma",
    }
}

/// Header text compared case-insensitively, ignoring spaces, underscores
/// and punctuation: `User's mobile Number` becomes `usersmobilenumber`.
pub fn header_key(header: &str) -> String {
    header
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Number,
    Mailbox,
}

fn role(header: &str) -> Option<Role> {
    let key = header_key(header);
    if NUMBER_ALIASES.contains(&key.as_str()) {
        Some(Role::Number)
    } else if MAILBOX_ALIASES.contains(&key.as_str()) {
        Some(Role::Mailbox)
    } else {
        None
    }
}

/// Splits a header line with one delimiter; `None` if a quote is unclosed.
pub fn split_header(line: &str, delimiter: u8) -> Option<Vec<String>> {
    let mut records = Records::new(line.as_bytes(), delimiter, 0);
    let mut record = Record::default();
    match records.read(&mut record) {
        Ok(true) => Some(record.fields().map(|f| f.trim().to_owned()).collect()),
        _ => None,
    }
}

/// Picks the delimiter under which the header names the most known
/// columns; with no known column, the one that splits it into most fields.
pub fn detect_delimiter(line: &str) -> u8 {
    let score = |d: u8| {
        let fields = split_header(line, d).unwrap_or_default();
        let known = fields.iter().filter(|f| role(f).is_some()).count();
        (known, fields.len())
    };
    let mut best = DELIMITERS[0];
    let mut best_score = score(best);
    for d in &DELIMITERS[1..] {
        let s = score(*d);
        if s > best_score {
            best = *d;
            best_score = s;
        }
    }
    best
}

/// Where the two columns are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    pub number: usize,
    pub mailbox: usize,
    /// Every header as written (trimmed), to name columns in findings.
    pub names: Vec<String>,
    /// The number column is TeleMessage's `External User ID`: its numbers
    /// are international digits with the `+` left out.
    pub implied_plus: bool,
}

impl Columns {
    pub fn name(&self, index: usize) -> String {
        match self.names.get(index) {
            Some(n) if !n.is_empty() => n.clone(),
            _ => format!("column {}", index + 1),
        }
    }
}

/// Why the header cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderProblem {
    /// One or both columns are missing; says which.
    Missing { number: bool, mailbox: bool },
    /// Several columns claim the same role.
    Ambiguous {
        role: &'static str,
        names: Vec<String>,
    },
}

pub fn find_columns(names: Vec<String>) -> Result<Columns, HeaderProblem> {
    let of = |r: Role| -> Vec<usize> {
        (0..names.len())
            .filter(|&i| role(&names[i]) == Some(r))
            .collect()
    };
    let (numbers, mailboxes) = (of(Role::Number), of(Role::Mailbox));
    for (found, role) in [(&numbers, "number"), (&mailboxes, "mailbox")] {
        if found.len() > 1 {
            return Err(HeaderProblem::Ambiguous {
                role,
                names: found.iter().map(|&i| names[i].clone()).collect(),
            });
        }
    }
    match (numbers.first(), mailboxes.first()) {
        (Some(&number), Some(&mailbox)) => Ok(Columns {
            implied_plus: header_key(&names[number]) == TELEMESSAGE_NUMBER,
            number,
            mailbox,
            names,
        }),
        (n, m) => Err(HeaderProblem::Missing {
            number: n.is_none(),
            mailbox: m.is_none(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_spec_aliases_are_recognised_however_they_are_written() {
        for n in [
            "mobile_number",
            "Mobile",
            "PHONE",
            "phone number",
            "User's mobile Number",
            "手机号码",
        ] {
            for m in [
                "mailbox",
                "E-mail",
                "email_address",
                "User Principal Name",
                "UPN",
                "Microsoft 365 mailbox address",
            ] {
                let c = find_columns(names(&["Name", n, m]))
                    .unwrap_or_else(|e| panic!("{n} {m}: {e:?}"));
                assert_eq!((c.number, c.mailbox), (1, 2));
            }
        }
    }

    #[test]
    fn telemessage_s_own_mapping_file_is_understood() {
        let c = find_columns(names(&["External User ID", "Microsoft 365 User Mailbox"])).unwrap();
        assert_eq!((c.number, c.mailbox, c.implied_plus), (0, 1, true));
        assert!(
            !find_columns(names(&["mobile", "mailbox"]))
                .unwrap()
                .implied_plus
        );
    }

    #[test]
    fn missing_and_ambiguous_columns_are_told_apart() {
        assert_eq!(
            find_columns(names(&["name", "mail"])),
            Err(HeaderProblem::Missing {
                number: true,
                mailbox: false
            })
        );
        assert!(matches!(
            find_columns(names(&["phone", "mobile", "email"])),
            Err(HeaderProblem::Ambiguous { role: "number", .. })
        ));
    }

    #[test]
    fn the_delimiter_is_the_one_that_reveals_the_columns() {
        assert_eq!(detect_delimiter("mobile_number,mailbox"), b',');
        assert_eq!(detect_delimiter("mobile_number;mailbox"), b';');
        assert_eq!(detect_delimiter("mobile_number\tmailbox"), b'\t');
        assert_eq!(detect_delimiter("\"Name, full\";Mobile;E-mail"), b';');
        assert_eq!(detect_delimiter("a;b;c"), b';');
    }
}
