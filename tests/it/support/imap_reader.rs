//! A small blocking IMAP reader for the tests, written separately from the
//! crate's client so that what the tests read back does not depend on the
//! code under test. Used for Dovecot and Cyrus alike.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine;

/// One message as the server holds it.
#[derive(Debug)]
pub struct Fetched {
    pub uid: u32,
    pub uid_validity: u32,
    pub flags: Vec<String>,
    /// As the server reports it, e.g. `22-Nov-2026 08:15:00 +0000`.
    pub internal_date: String,
    pub body: Vec<u8>,
}

impl Fetched {
    fn parse(line: Answer, uid_validity: u32) -> Fetched {
        let text = &line.text;
        let uid = between(text, "UID ", " ")
            .or_else(|| between(text, "UID ", ")"))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no UID in {text:?}"));
        let flags = between(text, "FLAGS (", ")")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let internal_date = between(text, "INTERNALDATE \"", "\"")
            .unwrap_or_else(|| panic!("no INTERNALDATE in {text:?}"))
            .trim()
            .to_owned();
        let body = line.literals.into_iter().next().expect("BODY[] literal");
        Fetched {
            uid,
            uid_validity,
            flags,
            internal_date,
            body,
        }
    }

    /// The value of the item-id trace header.
    pub fn item_id(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.body);
        text.lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| l.strip_prefix("X-WeChat-Archiver-Item-Id: "))
            .map(|v| v.trim().to_owned())
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

pub fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One server answer: its text with each literal replaced by `{}`, and the
/// literals.
pub struct Answer {
    pub text: String,
    pub literals: Vec<Vec<u8>>,
}

pub struct Completed {
    pub ok: bool,
    pub status: String,
    pub lines: Vec<Answer>,
}

/// One IMAP connection of the test side.
pub struct RawImap {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    tag: u32,
}

impl RawImap {
    /// Connects to the server on loopback and reads its greeting.
    pub fn connect(port: u16) -> RawImap {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the IMAP server");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let mut session = RawImap {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
            tag: 0,
        };
        let greeting = session.answer();
        assert!(
            greeting.text.starts_with("* OK"),
            "greeting {:?}",
            greeting.text
        );
        session
    }

    /// `LOGIN user password`; panics when refused.
    pub fn login(&mut self, user: &str, password: &str) {
        let done = self.command(&format!("LOGIN {} {}", quoted(user), quoted(password)));
        assert!(done.ok, "login as {user} failed: {}", done.status);
    }

    /// SASL PLAIN acting as `authz` (empty: as the admin itself).
    pub fn authenticate_plain(&mut self, authz: &str, authn: &str, password: &str) {
        let response = base64::engine::general_purpose::STANDARD
            .encode(format!("{authz}\0{authn}\0{password}"));
        let done = self.command(&format!("AUTHENTICATE PLAIN {response}"));
        assert!(
            done.ok,
            "login of {authn} as {authz:?} failed: {}",
            done.status
        );
    }

    /// Everything in `folder`; `None` when it cannot be opened.
    pub fn fetch_all(&mut self, folder: &str) -> Option<Vec<Fetched>> {
        let examined = self.command(&format!("EXAMINE {}", quoted(folder)));
        if !examined.ok {
            return None;
        }
        let uid_validity = examined
            .lines
            .iter()
            .find_map(|l| between(&l.text, "[UIDVALIDITY ", "]"))
            .and_then(|v| v.parse().ok())
            .expect("UIDVALIDITY in EXAMINE answer");
        let fetched = self.command("UID FETCH 1:* (UID FLAGS INTERNALDATE BODY.PEEK[])");
        assert!(fetched.ok, "FETCH failed: {}", fetched.status);
        let mut messages: Vec<Fetched> = fetched
            .lines
            .into_iter()
            .filter(|l| l.text.contains(" FETCH ("))
            .map(|l| Fetched::parse(l, uid_validity))
            .collect();
        messages.sort_by_key(|m| m.uid);
        Some(messages)
    }

    /// Whether `folder` is among the subscriptions.
    pub fn is_subscribed(&mut self, folder: &str) -> bool {
        let listed = self.command(&format!("LSUB \"\" {}", quoted(folder)));
        listed.lines.iter().any(|l| l.text.starts_with("* LSUB"))
    }

    /// Sends one command and reads everything up to its tagged answer.
    pub fn command(&mut self, command: &str) -> Completed {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        write!(self.writer, "{tag} {command}\r\n").expect("send");
        self.completed(&tag)
    }

    /// `APPEND folder message` with a non-synchronising literal (LITERAL+).
    pub fn append(&mut self, folder: &str, message: &[u8]) -> Completed {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        let len = message.len();
        write!(
            self.writer,
            "{tag} APPEND {} {{{len}+}}\r\n",
            quoted(folder)
        )
        .expect("send");
        self.writer.write_all(message).expect("send");
        self.writer.write_all(b"\r\n").expect("send");
        self.completed(&tag)
    }

    fn completed(&mut self, tag: &str) -> Completed {
        let mut lines = Vec::new();
        loop {
            let answer = self.answer();
            if let Some(status) = answer.text.strip_prefix(&format!("{tag} ")) {
                return Completed {
                    ok: status.starts_with("OK"),
                    status: status.to_owned(),
                    lines,
                };
            }
            lines.push(answer);
        }
    }

    fn answer(&mut self) -> Answer {
        let mut text = String::new();
        let mut literals = Vec::new();
        loop {
            let mut line = Vec::new();
            self.reader
                .read_until(b'\n', &mut line)
                .expect("read from the server");
            assert!(!line.is_empty(), "the server closed the connection");
            let line = String::from_utf8_lossy(&line)
                .trim_end_matches(['\r', '\n'])
                .to_owned();
            let literal = line
                .strip_suffix('}')
                .and_then(|l| l.rsplit_once('{'))
                .and_then(|(_, n)| n.parse::<usize>().ok());
            text.push_str(&line);
            let Some(len) = literal else {
                return Answer { text, literals };
            };
            let mut bytes = vec![0; len];
            self.reader.read_exact(&mut bytes).expect("read literal");
            literals.push(bytes);
        }
    }
}
