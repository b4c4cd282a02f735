//! The connection's reading side: one task per connection reads every
//! answer the server sends and routes it to the task waiting for it (a
//! tagged answer to the sender of that tag, with the untagged data before
//! it; a `+` to the literal waiting to be sent), or marks the connection
//! lost for every waiter when the server closes it or breaks protocol.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt};
use tokio::sync::{Notify, oneshot};

use super::{Reader, Reply};
use crate::mailbox::imap::proto::{self, Line};

/// Largest server answer accepted (a FETCH of one header field, a SEARCH
/// of one folder); more means a confused or hostile server.
const MAX_ANSWER: usize = 16 * 1024 * 1024;

#[derive(Default)]
pub(super) struct Routing {
    /// Several senders share a tag when their messages went in one
    /// MULTIAPPEND.
    pub(super) waiting: HashMap<String, Vec<oneshot::Sender<Reply>>>,
    pub(super) continuation: Option<oneshot::Sender<()>>,
    pub(super) untagged: Vec<Vec<u8>>,
    pub(super) lost: Option<String>,
}

/// Reads one complete answer: a line, with any literals it announces
/// read and inlined (`{n}\r\n` then n bytes), CRLF removed at the end.
pub(super) async fn read_answer(reader: &mut Reader) -> std::io::Result<Vec<u8>> {
    let oversized = || std::io::Error::other("the server sent an oversized answer");
    let mut answer = Vec::new();
    loop {
        let start = answer.len();
        let room = MAX_ANSWER.saturating_sub(start) as u64;
        let read = (&mut *reader)
            .take(room)
            .read_until(b'\n', &mut answer)
            .await?;
        if read as u64 == room && answer.last() != Some(&b'\n') {
            return Err(oversized());
        }
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        if answer.last() == Some(&b'\n') {
            answer.pop();
        }
        if answer.last() == Some(&b'\r') {
            answer.pop();
        }
        let Some(len) = proto::trailing_literal(&answer[start..]) else {
            return Ok(answer);
        };
        if answer.len().checked_add(len).is_none_or(|n| n > MAX_ANSWER) {
            return Err(oversized());
        }
        answer.extend_from_slice(b"\r\n");
        let at = answer.len();
        answer.resize(at + len, 0);
        reader.read_exact(&mut answer[at..]).await?;
    }
}

/// Marks a connection dead and wakes every waiter with the reason.
pub(super) fn mark_lost(routing: &Mutex<Routing>, reason: &str) {
    let mut routing = routing.lock().expect("routing lock");
    routing.lost.get_or_insert_with(|| reason.to_owned());
    routing.waiting.clear();
    routing.continuation = None;
}

pub(super) async fn read_loop(
    mut reader: Reader,
    routing: Arc<Mutex<Routing>>,
    answered: Arc<Notify>,
) {
    let reason = loop {
        let answer = match read_answer(&mut reader).await {
            Ok(answer) => answer,
            Err(e) => break format!("the connection dropped: {e}"),
        };
        match proto::classify(&answer) {
            Ok(line) => {
                let tagged = matches!(line, Line::Tagged { .. });
                if let Err(reason) = route(&routing, line) {
                    break reason;
                }
                if tagged {
                    answered.notify_waiters();
                }
            }
            Err(reason) => break reason,
        }
    };
    mark_lost(&routing, &reason);
    answered.notify_waiters();
}

fn route(routing: &Mutex<Routing>, line: Line) -> Result<(), String> {
    let mut routing = routing.lock().expect("routing lock");
    match line {
        Line::Continuation => match routing.continuation.take() {
            Some(waiter) => {
                let _ = waiter.send(());
                Ok(())
            }
            None => Err("the server sent '+' when no command was waiting for it".to_owned()),
        },
        Line::Untagged(data) => {
            if let Some(bye) = data.strip_prefix(b"BYE") {
                routing.lost = Some(format!(
                    "the server closed the connection:{}",
                    String::from_utf8_lossy(bye)
                ));
            }
            routing.untagged.push(data);
            Ok(())
        }
        Line::Tagged { tag, status } => {
            let reply = Reply {
                status,
                untagged: std::mem::take(&mut routing.untagged),
            };
            for waiter in routing.waiting.remove(&tag).unwrap_or_default() {
                let _ = waiter.send(reply.clone());
            }
            Ok(())
        }
    }
}
