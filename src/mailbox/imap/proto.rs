//! IMAP wire syntax (RFC 3501 and extensions): what the writer sends, and
//! the few parts of the server's answers it reads. Pure functions, so the
//! fiddly byte-level rules are unit tested without a server.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

/// How a command ended (the tagged status), or a status greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
    Bye,
    Preauth,
}

/// A status response: `[tag] STATUS [CODE args] text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    pub status: Status,
    /// The response code without brackets, e.g. `APPENDUID 7 42`.
    pub code: Option<String>,
    pub text: String,
}

impl StatusLine {
    /// The response code's name, upper-cased (`TRYCREATE`, `OVERQUOTA`).
    pub fn code_name(&self) -> Option<String> {
        let code = self.code.as_deref()?;
        Some(code.split(' ').next().unwrap_or(code).to_ascii_uppercase())
    }

    /// What to show a person: the code in brackets, then the text.
    pub fn describe(&self) -> String {
        match &self.code {
            Some(code) => format!("[{code}] {}", self.text),
            None => self.text.clone(),
        }
    }
}

/// One response from the server, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// `+ ...`: the server waits for more of the current command.
    Continuation,
    /// `TAG ...`: the end of the command with that tag.
    Tagged { tag: String, status: StatusLine },
    /// `* ...`: data; kept raw (it may hold literals).
    Untagged(Vec<u8>),
}

/// Classifies one complete response (literals inlined, CRLF removed).
pub fn classify(raw: &[u8]) -> Result<Line, String> {
    if raw.first() == Some(&b'+') {
        return Ok(Line::Continuation);
    }
    if raw.starts_with(b"* ") {
        return Ok(Line::Untagged(raw[2..].to_vec()));
    }
    let text = String::from_utf8_lossy(raw);
    let (tag, rest) = text
        .split_once(' ')
        .ok_or_else(|| format!("unexpected answer {:?}", truncate(&text)))?;
    let status =
        parse_status(rest).ok_or_else(|| format!("unexpected answer {:?}", truncate(&text)))?;
    Ok(Line::Tagged {
        tag: tag.to_owned(),
        status,
    })
}

/// Parses `OK [CODE] text` (also NO, BAD, BYE, PREAUTH).
pub fn parse_status(s: &str) -> Option<StatusLine> {
    let (word, rest) = s.split_once(' ').unwrap_or((s, ""));
    let status = match word.to_ascii_uppercase().as_str() {
        "OK" => Status::Ok,
        "NO" => Status::No,
        "BAD" => Status::Bad,
        "BYE" => Status::Bye,
        "PREAUTH" => Status::Preauth,
        _ => return None,
    };
    let (code, text) = match rest.strip_prefix('[') {
        Some(after) => match after.split_once(']') {
            Some((code, text)) => (Some(code.to_owned()), text.trim_start()),
            None => (None, rest),
        },
        None => (None, rest),
    };
    Some(StatusLine {
        status,
        code,
        text: text.to_owned(),
    })
}

fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}

/// The literal length announced at the end of a line (`... {123}`), which
/// tells the reader how many raw bytes follow before the line goes on.
pub fn trailing_literal(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = &body[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Capability names, upper-cased.
#[derive(Debug, Clone, Default)]
pub struct Capabilities(HashSet<String>);

impl Capabilities {
    pub fn parse(words: &str) -> Self {
        Capabilities(
            words
                .split_ascii_whitespace()
                .map(str::to_ascii_uppercase)
                .collect(),
        )
    }

    /// From a `[CAPABILITY ...]` response code, if that is what it is.
    pub fn from_code(code: Option<&str>) -> Option<Self> {
        let code = code?;
        let (name, rest) = code.split_once(' ')?;
        name.eq_ignore_ascii_case("CAPABILITY")
            .then(|| Capabilities::parse(rest))
    }

    /// From untagged `CAPABILITY ...` data.
    pub fn from_untagged(data: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(data).ok()?;
        let (name, rest) = text.split_once(' ')?;
        name.eq_ignore_ascii_case("CAPABILITY")
            .then(|| Capabilities::parse(rest))
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains(name)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The most UIDs an `APPENDUID` code may name: far more than one batch
/// of APPENDs, far less than memory (a range list could expand forever).
pub const MAX_APPEND_UIDS: usize = 100_000;

/// The `APPENDUID uidvalidity uid-set` code of a successful APPEND
/// (UIDPLUS): one UID per message, in the order they were sent.
pub fn append_uids(status: &StatusLine) -> Option<(u32, Vec<u32>)> {
    let code = status.code.as_deref()?;
    let mut words = code.split(' ');
    if !words.next()?.eq_ignore_ascii_case("APPENDUID") {
        return None;
    }
    let validity = words.next()?.parse().ok()?;
    let mut uids = Vec::new();
    for range in words.next()?.split(',') {
        let (first, last) = range.split_once(':').unwrap_or((range, range));
        let (first, last): (u32, u32) = (first.parse().ok()?, last.parse().ok()?);
        let (low, high) = (first.min(last), first.max(last));
        if (high - low) as usize >= MAX_APPEND_UIDS - uids.len() {
            return None;
        }
        uids.extend(low..=high);
    }
    Some((validity, uids))
}

/// The `UIDVALIDITY n` code sent when a folder is selected.
pub fn uid_validity(untagged: &[u8]) -> Option<u32> {
    let status = parse_status(std::str::from_utf8(untagged).ok()?)?;
    let code = status.code?;
    let (name, value) = code.split_once(' ')?;
    name.eq_ignore_ascii_case("UIDVALIDITY")
        .then(|| value.trim().parse().ok())?
}

/// The numbers of an untagged `SEARCH n n n` answer.
pub fn search_results(untagged: &[u8]) -> Option<Vec<u32>> {
    let text = std::str::from_utf8(untagged).ok()?;
    let mut words = text.split_ascii_whitespace();
    if !words.next()?.eq_ignore_ascii_case("SEARCH") {
        return None;
    }
    Some(words.filter_map(|w| w.parse().ok()).collect())
}

/// A quoted string for a command argument. Only 7-bit text without CR, LF
/// or NUL can be quoted; anything else is a caller bug (names are encoded
/// first, ids are validated ASCII).
pub fn quote(s: &str) -> Result<String, String> {
    if s.bytes()
        .any(|b| b == b'\r' || b == b'\n' || b == 0 || b >= 0x80)
    {
        return Err(format!("{s:?} cannot be sent as an IMAP quoted string"));
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(out)
}

/// A folder name in IMAP's modified UTF-7 (RFC 3501 5.1.3), so a folder
/// name in Chinese reaches every server the same way.
pub fn encode_mailbox_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush_utf7(&mut out, &mut pending);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush_utf7(&mut out, &mut pending);
    out
}

fn flush_utf7(out: &mut String, pending: &mut Vec<u16>) {
    use base64::Engine;
    if pending.is_empty() {
        return;
    }
    let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
    let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes);
    out.push('&');
    out.push_str(&encoded.replace('/', ","));
    out.push('-');
    pending.clear();
}

/// An APPEND internal date: `"dd-Mon-yyyy hh:mm:ss +0000"` with the day
/// space-padded, as RFC 3501's date-time requires.
pub fn internal_date(at: &DateTime<Utc>) -> String {
    at.format("\"%e-%b-%Y %H:%M:%S +0000\"").to_string()
}

/// A parsed piece of server data: enough of RFC 3501's grammar to read
/// FETCH answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Atom(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Nil,
}

impl Value {
    pub fn as_atom(&self) -> Option<&str> {
        match self {
            Value::Atom(a) => Some(a),
            _ => None,
        }
    }
}

/// Reads the parenthesised list of an untagged `n FETCH (...)` answer.
pub fn fetch_items(untagged: &[u8]) -> Option<Vec<Value>> {
    let space = untagged.iter().position(|&b| b == b' ')?;
    let rest = &untagged[space + 1..];
    let rest = strip_prefix_ci(rest, b"FETCH ")?;
    let mut parser = Parser::new(rest);
    match parser.value()? {
        Value::List(items) => Some(items),
        _ => None,
    }
}

/// Reads a run of values separated by spaces up to the end (the data of
/// an untagged answer such as `NAMESPACE`).
pub fn values(data: &[u8]) -> Option<Vec<Value>> {
    let mut parser = Parser::new(data);
    let mut values = Vec::new();
    loop {
        while parser.peek() == Some(b' ') {
            parser.pos += 1;
        }
        if parser.peek().is_none() {
            return Some(values);
        }
        values.push(parser.value()?);
    }
}

fn strip_prefix_ci<'a>(data: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (data.len() >= prefix.len() && data[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &data[prefix.len()..])
}

/// Lists nested deeper than this are refused: a server sending a million
/// `(` would otherwise overflow the stack of this recursive parser.
const MAX_DEPTH: usize = 32;

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(data: &'a [u8]) -> Self {
        Parser {
            data,
            pos: 0,
            depth: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    fn value(&mut self) -> Option<Value> {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
        match self.peek()? {
            b'(' => self.list(),
            b'"' => self.quoted(),
            b'{' => self.literal(),
            _ => self.atom(),
        }
    }

    fn list(&mut self) -> Option<Value> {
        self.pos += 1;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let mut items = Vec::new();
        loop {
            while self.peek() == Some(b' ') {
                self.pos += 1;
            }
            if self.peek()? == b')' {
                self.pos += 1;
                self.depth -= 1;
                return Some(Value::List(items));
            }
            items.push(self.value()?);
        }
    }

    fn quoted(&mut self) -> Option<Value> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.pos += 1;
            match b {
                b'"' => return Some(Value::Bytes(out)),
                b'\\' => {
                    out.push(self.peek()?);
                    self.pos += 1;
                }
                _ => out.push(b),
            }
        }
    }

    fn literal(&mut self) -> Option<Value> {
        let close = self.data[self.pos..].iter().position(|&b| b == b'}')? + self.pos;
        let len: usize = std::str::from_utf8(&self.data[self.pos + 1..close])
            .ok()?
            .trim_end_matches('+')
            .parse()
            .ok()?;
        let start = close + 3;
        if self.data.get(close + 1..start)? != b"\r\n" {
            return None;
        }
        let end = start.checked_add(len)?;
        let bytes = self.data.get(start..end)?.to_vec();
        self.pos = end;
        Some(Value::Bytes(bytes))
    }

    /// An atom; a `[...]` section (as in `BODY[HEADER.FIELDS (X)]`) is
    /// part of it, spaces and all.
    fn atom(&mut self) -> Option<Value> {
        let start = self.pos;
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'[' => depth += 1,
                b']' => depth = depth.saturating_sub(1),
                b' ' | b'(' | b')' if depth == 0 => break,
                _ => {}
            }
            self.pos += 1;
        }
        if self.pos == start {
            return None;
        }
        let atom = String::from_utf8_lossy(&self.data[start..self.pos]).into_owned();
        if atom.eq_ignore_ascii_case("NIL") {
            Some(Value::Nil)
        } else {
            Some(Value::Atom(atom))
        }
    }
}

/// Whether text reports Exchange Online throttling, and for how long to
/// back off: `Request is throttled. Suggested Backoff Time: N milliseconds`.
pub fn throttle_backoff_ms(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    if !lower.contains("throttled") {
        return None;
    }
    let after = lower.split("backoff time:").nth(1).unwrap_or("");
    let digits: String = after
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some(digits.parse().unwrap_or(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_answers_keep_their_code_and_text() {
        let line = classify(b"A7 OK [APPENDUID 1732 55] Append completed.").unwrap();
        let Line::Tagged { tag, status } = line else {
            panic!("not tagged")
        };
        assert_eq!(tag, "A7");
        assert_eq!(status.status, Status::Ok);
        assert_eq!(append_uids(&status), Some((1732, vec![55])));
        let multi = parse_status("OK [APPENDUID 9 1981:1983,1990] Append completed.").unwrap();
        assert_eq!(append_uids(&multi), Some((9, vec![1981, 1982, 1983, 1990])));
        let one_huge = parse_status("OK [APPENDUID 9 1:4294967295] done").unwrap();
        assert_eq!(append_uids(&one_huge), None);
        let many = format!("OK [APPENDUID 9 {}] done", vec!["1:60000"; 50].join(","));
        assert_eq!(append_uids(&parse_status(&many).unwrap()), None);
        let no = parse_status("NO [OVERQUOTA] Quota exceeded (mailbox for user is full)").unwrap();
        assert_eq!(no.code_name().as_deref(), Some("OVERQUOTA"));
        assert_eq!(
            no.describe(),
            "[OVERQUOTA] Quota exceeded (mailbox for user is full)"
        );
        assert_eq!(classify(b"+ OK").unwrap(), Line::Continuation);
        assert!(classify(b"garbage").is_err());
    }

    #[test]
    fn literal_lengths_are_found_only_at_the_end() {
        assert_eq!(trailing_literal(b"* 1 FETCH (BODY[] {12}"), Some(12));
        assert_eq!(trailing_literal(b"* LIST () \"/\" {3+}"), Some(3));
        assert_eq!(trailing_literal(b"* OK {x}"), None);
        assert_eq!(trailing_literal(b"* OK done"), None);
        assert_eq!(
            trailing_literal(b"* 1 FETCH (BODY[] {18446744073709551615}"),
            Some(usize::MAX)
        );
        assert_eq!(
            trailing_literal(b"* 1 FETCH (BODY[] {99999999999999999999}"),
            None
        );
    }

    #[test]
    fn quoting_escapes_and_refuses_line_breaks() {
        assert_eq!(quote(r#"a"b\c"#).unwrap(), r#""a\"b\\c""#);
        assert!(quote("a\r\nb").is_err());
        assert!(quote("é").is_err());
    }

    #[test]
    fn folder_names_use_modified_utf7() {
        assert_eq!(encode_mailbox_name("WeChat Archiver"), "WeChat Archiver");
        assert_eq!(encode_mailbox_name("A&B"), "A&-B");
        assert_eq!(encode_mailbox_name("台北"), "&U,BTFw-");
        assert_eq!(
            encode_mailbox_name("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
    }

    #[test]
    fn internal_date_is_space_padded() {
        let at: DateTime<Utc> = "2026-11-02T08:05:09Z".parse().unwrap();
        assert_eq!(internal_date(&at), "\" 2-Nov-2026 08:05:09 +0000\"");
    }

    #[test]
    fn a_literal_longer_than_memory_is_refused_without_a_panic() {
        assert_eq!(
            fetch_items(b"1 FETCH (BODY[] {18446744073709551615}\r\nabc)"),
            None
        );
    }

    #[test]
    fn fetch_answers_parse_with_literals_and_sections() {
        let raw = b"3 FETCH (UID 9 RFC822.SIZE 120 BODY[HEADER.FIELDS (X-WECHAT-ARCHIVER-ITEM-ID)] {34}\r\nX-WeChat-Archiver-Item-Id: a b\r\n\r\n)";
        let items = fetch_items(raw).unwrap();
        assert_eq!(items[0], Value::Atom("UID".into()));
        assert_eq!(items[1], Value::Atom("9".into()));
        assert_eq!(
            items[4],
            Value::Atom("BODY[HEADER.FIELDS (X-WECHAT-ARCHIVER-ITEM-ID)]".into())
        );
        assert_eq!(
            items[5],
            Value::Bytes(b"X-WeChat-Archiver-Item-Id: a b\r\n\r\n".to_vec())
        );
    }

    #[test]
    fn selection_and_search_data() {
        assert_eq!(
            uid_validity(b"OK [UIDVALIDITY 1732] UIDs valid"),
            Some(1732)
        );
        assert_eq!(uid_validity(b"OK [UIDNEXT 4] Predicted"), None);
        assert_eq!(search_results(b"SEARCH 4 9"), Some(vec![4, 9]));
        assert_eq!(search_results(b"SEARCH"), Some(vec![]));
        assert_eq!(search_results(b"3 EXISTS"), None);
    }

    #[test]
    fn exchange_throttling_is_recognised() {
        assert_eq!(
            throttle_backoff_ms("Request is throttled. Suggested Backoff Time: 1500 milliseconds"),
            Some(1500)
        );
        assert_eq!(throttle_backoff_ms("Command Error. 12"), None);
    }
}
