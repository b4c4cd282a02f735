//! Item content: an RFC 5322 message rendered from a recipe. The message
//! is a list of segments, literal header/text bytes and base64 attachment
//! bodies generated on the fly, so a 150 MB item is streamed (from any
//! offset, for `Range`) and hashed without ever being held in memory.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use super::dataset::{Recipe, mix};
use super::names::PHRASES;
use crate::telemessage::model::{ItemType, Participant};

/// Raw bytes per base64 line (76 characters).
const LINE_RAW: u64 = 57;
/// Encoded bytes per full line, CRLF included.
const LINE_OUT: u64 = 78;
/// Lines rendered per chunk: about 64 KB.
const LINES_PER_CHUNK: u64 = 840;

#[derive(Debug)]
enum Segment {
    Literal(Vec<u8>),
    /// Base64 (76-column lines, each CRLF-terminated) of `len` raw bytes
    /// generated from `key`.
    Base64 {
        key: u64,
        len: u64,
    },
}

impl Segment {
    fn len(&self) -> u64 {
        match self {
            Segment::Literal(b) => b.len() as u64,
            Segment::Base64 { len, .. } => base64_len(*len),
        }
    }
}

fn base64_len(raw: u64) -> u64 {
    let rem = raw % LINE_RAW;
    (raw / LINE_RAW) * LINE_OUT + if rem > 0 { rem.div_ceil(3) * 4 + 2 } else { 0 }
}

/// The content of an item from `offset` on, in chunks of about 64 KB.
pub(crate) struct ContentChunks {
    segments: Vec<Segment>,
    index: usize,
    pos: u64,
}

impl ContentChunks {
    pub fn new(recipe: &Recipe, offset: u64) -> Self {
        let mut chunks = ContentChunks {
            segments: render(recipe),
            index: 0,
            pos: 0,
        };
        chunks.seek(offset);
        chunks
    }

    /// The full content length, known without rendering attachment bytes.
    #[cfg(test)]
    pub fn total_len(&self) -> u64 {
        self.segments.iter().map(Segment::len).sum()
    }

    fn seek(&mut self, mut offset: u64) {
        while let Some(seg) = self.segments.get(self.index) {
            if offset < seg.len() {
                self.pos = offset;
                return;
            }
            offset -= seg.len();
            self.index += 1;
        }
    }
}

impl Iterator for ContentChunks {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        let seg = self.segments.get(self.index)?;
        let (chunk, seg_len) = match seg {
            Segment::Literal(bytes) => {
                let end = (self.pos as usize + 65_536).min(bytes.len());
                (
                    Bytes::copy_from_slice(&bytes[self.pos as usize..end]),
                    bytes.len() as u64,
                )
            }
            Segment::Base64 { key, len } => {
                let line = self.pos / LINE_OUT;
                let skip = (self.pos % LINE_OUT) as usize;
                let encoded = encode_lines(*key, *len, line, LINES_PER_CHUNK);
                (Bytes::from(encoded).slice(skip..), base64_len(*len))
            }
        };
        self.pos += chunk.len() as u64;
        if self.pos >= seg_len {
            self.index += 1;
            self.pos = 0;
        }
        Some(chunk)
    }
}

/// Base64 lines `first..first+count` of the raw bytes of `key`.
fn encode_lines(key: u64, raw_len: u64, first: u64, count: u64) -> Vec<u8> {
    let start = first * LINE_RAW;
    let end = ((first + count) * LINE_RAW).min(raw_len);
    let mut raw = vec![0u8; (end - start) as usize];
    fill_raw(key, start, &mut raw);
    let mut out = Vec::with_capacity(raw.len() / 57 * 78 + 80);
    let mut line = [0u8; 76];
    for piece in raw.chunks(LINE_RAW as usize) {
        let n = STANDARD
            .encode_slice(piece, &mut line)
            .expect("76 bytes hold a 57-byte line");
        out.extend_from_slice(&line[..n]);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The attachment bytes of `key` from `offset`: a counter-based stream, so
/// any part can be produced without the parts before it.
pub(crate) fn fill_raw(key: u64, offset: u64, out: &mut [u8]) {
    let mut pos = offset;
    let mut i = 0;
    while i < out.len() {
        let word = mix(key, pos / 8).to_le_bytes();
        let from = (pos % 8) as usize;
        let n = (8 - from).min(out.len() - i);
        out[i..i + n].copy_from_slice(&word[from..from + n]);
        i += n;
        pos += n as u64;
    }
}

/// Size and lowercase hex SHA-256 of an item's content.
pub(crate) fn measure(recipe: &Recipe) -> (u64, String) {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    for chunk in ContentChunks::new(recipe, 0) {
        size += chunk.len() as u64;
        hasher.update(&chunk);
    }
    (size, hex::encode(hasher.finalize()))
}

/// A `std::io::Read` over content chunks.
pub(crate) struct ChunkReader {
    chunks: ContentChunks,
    current: Bytes,
}

impl ChunkReader {
    pub fn new(chunks: ContentChunks) -> Self {
        ChunkReader {
            chunks,
            current: Bytes::new(),
        }
    }
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.next() {
                Some(c) => self.current = c,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

fn render(recipe: &Recipe) -> Vec<Segment> {
    if let Some(raw) = &recipe.raw {
        return vec![Segment::Literal(raw.clone())];
    }
    let boundary = format!("=_tm_{:016x}", mix(recipe.text_seed, 0xB0));
    let text = chat_text(recipe);
    let mut head = headers(recipe);
    let mut segments = Vec::new();
    if recipe.attachments.is_empty() {
        head.push_str("Content-Type: text/plain; charset=UTF-8\r\n");
        head.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
        let mut lit = head.into_bytes();
        lit.extend(encode_text(&text));
        segments.push(Segment::Literal(lit));
        return segments;
    }
    head.push_str(&format!(
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
    ));
    head.push_str("This is a multi-part message in MIME format.\r\n\r\n");
    head.push_str(&format!("--{boundary}\r\n"));
    head.push_str("Content-Type: text/plain; charset=UTF-8\r\n");
    head.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
    let mut lit = head.into_bytes();
    lit.extend(encode_text(&text));
    for a in &recipe.attachments {
        let name = &a.info.name;
        lit.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: {}; name=\"{}\"\r\nContent-Disposition: attachment; filename*=UTF-8''{}\r\nContent-Transfer-Encoding: base64\r\n\r\n",
                a.info.content_type,
                encoded_word(name),
                percent_encode(name)
            )
            .as_bytes(),
        );
        segments.push(Segment::Literal(std::mem::take(&mut lit)));
        segments.push(Segment::Base64 {
            key: a.key,
            len: a.info.size,
        });
    }
    lit.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    segments.push(Segment::Literal(lit));
    segments
}

fn headers(recipe: &Recipe) -> String {
    let mut h = String::new();
    h.push_str(&format!(
        "Message-ID: <{}@archive.telemessage.sim>\r\n",
        recipe.id
    ));
    h.push_str(&format!("Date: {}\r\n", recipe.sent_at.to_rfc2822()));
    h.push_str(&format!("From: {}\r\n", address(&recipe.sender)));
    let to: Vec<String> = recipe
        .participants
        .iter()
        .filter(|p| **p != recipe.sender)
        .map(address)
        .collect();
    if to.is_empty() {
        h.push_str("To: undisclosed-recipients:;\r\n");
    } else {
        h.push_str(&format!("To: {}\r\n", to.join(",\r\n ")));
    }
    h.push_str(&format!("Subject: {}\r\n", encoded_words(&subject(recipe))));
    h.push_str("MIME-Version: 1.0\r\n");
    h.push_str(&format!("X-TeleMessage-Item-Id: {}\r\n", recipe.id));
    h.push_str(&format!("X-TeleMessage-Platform: {}\r\n", recipe.platform));
    h.push_str(&format!("X-TeleMessage-Type: {}\r\n", recipe.kind));
    h.push_str(&format!(
        "X-TeleMessage-Conversation: {}\r\n",
        recipe.conversation.id
    ));
    h.push_str(&format!(
        "X-TeleMessage-Archived-At: {}\r\n",
        rfc3339(recipe.archived_at)
    ));
    if let Some(recall) = &recipe.recall {
        h.push_str(&format!(
            "X-TeleMessage-Recalled-At: {}\r\n",
            rfc3339(recall.recalled_at)
        ));
    }
    h
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn subject(recipe: &Recipe) -> String {
    let conv = &recipe.conversation.title;
    match &recipe.kind {
        ItemType::Call => {
            let call = recipe.call.as_ref();
            format!(
                "{} call ({}) – {}",
                call.map_or("voice", |c| c.media.as_str()),
                call.map_or("", |c| c.result.as_str()),
                conv
            )
        }
        ItemType::Recalled => format!("[已撤回 recalled] {conv}"),
        ItemType::File | ItemType::Attachment => {
            let name = recipe
                .attachments
                .first()
                .map_or("", |a| a.info.name.as_str());
            format!("{name} – {conv}")
        }
        _ => format!("微信聊天 WeChat: {conv}"),
    }
}

/// `Name <address>`; a party without an e-mail gets a synthetic address
/// from its WeChat id so every header stays a valid mailbox.
fn address(p: &Participant) -> String {
    let addr = match (&p.email, &p.wechat_id) {
        (Some(e), _) => e.clone(),
        (None, Some(w)) => format!("{w}@wechat.invalid"),
        (None, None) => "unknown@wechat.invalid".to_owned(),
    };
    if p.name.is_empty() {
        format!("<{addr}>")
    } else {
        format!("{} <{addr}>", encoded_words(&p.name))
    }
}

/// The text as-is when it is plain printable ASCII without specials,
/// otherwise UTF-8 encoded words of at most 45 bytes each, folded.
fn encoded_words(text: &str) -> String {
    let plain = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'-' || b == b'.');
    if plain && !text.is_empty() {
        return text.to_owned();
    }
    let mut words = Vec::new();
    let mut start = 0;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        if i + c.len_utf8() - start > 45 {
            words.push(encoded_word(&text[start..end]));
            start = i;
        }
        end = i + c.len_utf8();
    }
    words.push(encoded_word(&text[start..end]));
    words.join("\r\n ")
}

fn encoded_word(text: &str) -> String {
    format!("=?UTF-8?B?{}?=", STANDARD.encode(text.as_bytes()))
}

/// RFC 2231 value: unreserved ASCII as is, everything else `%XX`.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn encode_text(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 4 / 3 + text.len() / 38 + 4);
    for piece in text.as_bytes().chunks(LINE_RAW as usize) {
        out.extend_from_slice(STANDARD.encode(piece).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A transcript of about `text_len` bytes: timestamped lines from the
/// parties, with a description of the call or recall first.
fn chat_text(recipe: &Recipe) -> String {
    let mut rng = StdRng::seed_from_u64(recipe.text_seed);
    let mut text = String::with_capacity(recipe.text_len + 200);
    if let Some(call) = &recipe.call {
        text.push_str(&format!(
            "通话记录 Call record: {} {}, {} s, started {}\r\n",
            call.media,
            call.result,
            call.duration_seconds,
            rfc3339(call.started_at)
        ));
    }
    if let Some(recall) = &recipe.recall {
        text.push_str(&format!(
            "此消息已被撤回 This message was recalled at {}\r\n",
            rfc3339(recall.recalled_at)
        ));
    }
    let mut t = recipe.sent_at;
    while text.len() < recipe.text_len {
        let who = recipe
            .participants
            .choose(&mut rng)
            .map_or("", |p| p.name.as_str());
        let phrase = PHRASES.choose(&mut rng).expect("phrases");
        text.push_str(&format!(
            "[{}] {who}: {phrase}\r\n",
            t.format("%Y-%m-%d %H:%M:%S")
        ));
        t += chrono::Duration::seconds(rng.random_range(1..90));
    }
    text
}
