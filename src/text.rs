//! Text for people: what the tool prints to a terminal, a cron mail or a
//! log file. Names, titles and messages come from servers and files an
//! attacker may control; a raw `ESC ]52` or `ESC [2J` in them would let
//! that attacker write to the admin's clipboard or wipe their screen, and
//! a bidi override would make a line read differently than it is. Every
//! piece of such text goes through [`escape_control`] (or
//! [`escape_lines`]) before it is shown or logged.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::io::{self, Write};
use std::time::Duration;

/// `s` with every control character written as a visible escape: C0
/// (including CR, LF and TAB), DEL, C1, and the Unicode bidi controls.
/// Borrowed when there is nothing to escape, as for nearly all text.
pub fn escape_control(s: &str) -> Cow<'_, str> {
    escape_with(s, |_| false)
}

/// Like [`escape_control`] but keeps line feeds and tabs, for messages
/// that may span lines (an error with its cause on the next line).
pub fn escape_lines(s: &str) -> Cow<'_, str> {
    escape_with(s, |c| c == '\n' || c == '\t')
}

/// A `Display` wrapper that escapes as it formats: `format!("{}", Clean(name))`.
pub struct Clean<'a>(pub &'a str);

impl fmt::Display for Clean<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape_control(self.0))
    }
}

fn escape_with(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if is_unsafe(c) && !keep(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A character that changes what a terminal does or how a line reads.
fn is_unsafe(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// The explicit bidi embeddings, overrides and isolates, and the marks.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// Whether to colour standard error: only on a terminal, and only when
/// `NO_COLOR` is unset or empty (<https://no-color.org>). A cron mail or a
/// log file then holds plain text.
pub fn colour_wanted(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// A duration as people write it: `0.3 s`, `1.2 s`, `27 s`, `3 min 4 s`,
/// `2 h 5 min`, not `27.105800053s`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 10 {
        let tenths = d.as_millis().div_ceil(100);
        return match tenths {
            100.. => "10 s".to_owned(),
            t if t % 10 == 0 => format!("{} s", t / 10),
            t => format!("{}.{} s", t / 10, t % 10),
        };
    }
    let (mins, hours, days) = (secs / 60, secs / 3600, secs / 86_400);
    if secs < 60 {
        format!("{secs} s")
    } else if secs < 3600 {
        match secs % 60 {
            0 => format!("{mins} min"),
            s => format!("{mins} min {s} s"),
        }
    } else if secs < 86_400 {
        match mins % 60 {
            0 => format!("{hours} h"),
            m => format!("{hours} h {m} min"),
        }
    } else {
        format!("{days} d {} h", hours % 24)
    }
}

/// A writer for log output that escapes every control character but line
/// feeds, tabs and, when `colour` is on, the SGR colour sequences
/// (`ESC [ ... m`) the log formatter itself writes. The formatter already
/// escapes ESC in logged values; this catches whatever it lets through
/// (CR, other C0, bidi controls) at the one place all log lines pass.
pub struct CleanWriter<W> {
    inner: W,
    colour: bool,
}

impl<W: Write> CleanWriter<W> {
    pub fn new(inner: W, colour: bool) -> Self {
        CleanWriter { inner, colour }
    }
}

impl<W: Write> Write for CleanWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let text = String::from_utf8_lossy(buf);
        self.inner
            .write_all(clean_log(&text, self.colour).as_bytes())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn clean_log(text: &str, colour: bool) -> Cow<'_, str> {
    if !colour {
        return escape_lines(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\x1b') {
        out.push_str(&escape_lines(&rest[..at]));
        let after = &rest[at + 1..];
        match sgr_len(after) {
            Some(n) => {
                out.push('\x1b');
                out.push_str(&after[..n]);
                rest = &after[n..];
            }
            None => {
                out.push_str("\\x1b");
                rest = after;
            }
        }
    }
    out.push_str(&escape_lines(rest));
    Cow::Owned(out)
}

/// Length of `[` digits/semicolons `m` at the start of `s`, an SGR colour.
fn sgr_len(s: &str) -> Option<usize> {
    let body = s.strip_prefix('[')?;
    let params = body
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';')
        .count();
    (params <= 16 && body.as_bytes().get(params) == Some(&b'm')).then_some(params + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "Li\x1b]52;c;aGk=\x07\x1b[2J\r\u{9b}31m\u{202e}gpj.exe\x7f";

    #[test]
    fn escapes_every_control_and_bidi_character() {
        let out = escape_control(HOSTILE);
        assert_eq!(
            out,
            "Li\\x1b]52;c;aGk=\\x07\\x1b[2J\\r\\x9b31m\\u{202e}gpj.exe\\x7f"
        );
        assert!(!out.chars().any(is_unsafe));
        assert_eq!(escape_control("a\nb"), "a\\nb");
        assert_eq!(escape_lines("a\nb\tc\x1b"), "a\nb\tc\\x1b");
    }

    #[test]
    fn leaves_ordinary_text_borrowed() {
        assert!(matches!(escape_control("李伟 😀 \"ok\""), Cow::Borrowed(_)));
        assert_eq!(format!("{}", Clean("a\x1bb")), "a\\x1bb");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some(OsStr::new(""))));
        assert!(!colour_wanted(true, Some(OsStr::new("1"))));
        assert!(!colour_wanted(false, None));
    }

    #[test]
    fn durations_read_as_people_write_them() {
        let ms = Duration::from_millis;
        assert_eq!(human_duration(ms(27_105)), "27 s");
        assert_eq!(human_duration(ms(1_200)), "1.2 s");
        assert_eq!(human_duration(ms(300)), "0.3 s");
        assert_eq!(human_duration(ms(2_000)), "2 s");
        assert_eq!(human_duration(ms(9_999)), "10 s");
        assert_eq!(human_duration(Duration::from_secs(184)), "3 min 4 s");
        assert_eq!(human_duration(Duration::from_secs(120)), "2 min");
        assert_eq!(human_duration(Duration::from_secs(7_500)), "2 h 5 min");
        assert_eq!(human_duration(Duration::from_secs(3 * 86_400)), "3 d 0 h");
        assert!(human_duration(Duration::MAX).ends_with(" h"));
    }

    #[test]
    fn log_writer_keeps_colours_and_line_feeds_but_nothing_else() {
        let line = "\x1b[33m WARN\x1b[0m item: Li\\x1b]52 \x1b[2J\r\u{202e}x\n";
        let mut out = Vec::new();
        CleanWriter::new(&mut out, true)
            .write_all(line.as_bytes())
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\x1b[33m WARN\x1b[0m item: Li\\x1b]52 \\x1b[2J\\r\\u{202e}x\n"
        );
        let mut plain = Vec::new();
        CleanWriter::new(&mut plain, false)
            .write_all(line.as_bytes())
            .unwrap();
        assert!(!plain.contains(&0x1b));
    }
}
