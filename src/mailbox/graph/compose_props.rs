//! Property tests of the MIME handling behind the Graph writer against
//! hostile items: any bytes, and MIME-shaped messages built from pieces
//! (nested multiparts, missing or repeated boundaries, broken base64 and
//! quoted-printable, encoded words, control characters, absurd lengths).
//! Planning never panics, and a plan's attachments hold no more bytes
//! than the message could encode.

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::json;

use super::compose::plan;
use crate::content::Content;
use crate::mailbox::Copy;
use crate::telemessage::Item;

fn item() -> Item {
    serde_json::from_value(json!({
        "id": "itm_1", "platform": "wechat", "type": "message",
        "conversation": {"id": "c", "kind": "direct", "title": "\u{1b}[2J"},
        "sent_at": "2026-11-22T08:15:00Z", "archived_at": "2026-11-22T09:00:00Z",
        "sender": {"name": "\u{202e}x", "mobile": null, "email": "a@x.com", "wechat_id": "w"},
        "participants": [], "size": 1, "sha256": "00"
    }))
    .unwrap()
}

fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"From: =?utf-8?B?5p2O5Lyf?= <a@x.com>\r\n".to_vec()),
        Just(b"To: \"x\" <b@y.z>, , <<>>, c@\r\n".to_vec()),
        Just(b"Subject: =?gbk?Q?=C4=E3?= =?bogus?X?zz?=\r\n".to_vec()),
        Just(b"Message-ID: <\x1b]52;c;eA==\x07@x>\r\n".to_vec()),
        Just(b"MIME-Version: 1.0\r\n".to_vec()),
        Just(b"Content-Type: multipart/mixed; boundary=B\r\n".to_vec()),
        Just(b"Content-Type: multipart/related; boundary=\"\"\r\n".to_vec()),
        Just(b"Content-Type: message/rfc822\r\n".to_vec()),
        Just(b"Content-Type: text/html; charset=x-unknown\r\n".to_vec()),
        Just(b"Content-Type: application/octet-stream; name=\"../../a\x00.exe\"\r\n".to_vec()),
        Just(b"Content-Disposition: attachment; filename*=utf-8''%E4%BD%A0%ZZ\r\n".to_vec()),
        Just(b"Content-Transfer-Encoding: base64\r\n".to_vec()),
        Just(b"Content-Transfer-Encoding: quoted-printable\r\n".to_vec()),
        Just(b"Content-ID: <cid>\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"--B\r\n".to_vec()),
        Just(b"--B--\r\n".to_vec()),
        Just(b"--\r\n".to_vec()),
        Just(b"SGVsbG8gd29ybGQ=\r\n".to_vec()),
        Just(b"!!!notbase64===\r\n".to_vec()),
        Just(b"na=C3=AFve=\r\n=ZZ=\r\n".to_vec()),
        Just(b"<html><body>\xff\xfe</body>\r\n".to_vec()),
        "[ -~]{0,40}\r\n".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..16),
    ]
}

fn message() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(piece(), 0..50).prop_map(|p| p.concat())
}

#[track_caller]
fn check(raw: &[u8]) {
    let item = item();
    let content = Content::Memory(Bytes::copy_from_slice(raw));
    let copy = Copy {
        item: &item,
        connector: "c",
        content: &content,
        in_reply_to: None,
    };
    let Ok(plan) = plan(&copy, raw) else {
        return;
    };
    let bytes: usize = plan
        .separate
        .iter()
        .chain(&plan.sessions)
        .map(|a| a.bytes.len())
        .sum();
    assert!(
        bytes <= raw.len() * 4 + 1024,
        "{bytes} bytes from {}",
        raw.len()
    );
    let create = serde_json::to_string(&plan.create).unwrap();
    assert!(
        create.len() <= raw.len() * 8 + 64 * 1024,
        "{}",
        create.len()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_bytes_plan_without_panic(raw in proptest::collection::vec(any::<u8>(), 0..1024)) {
        check(&raw);
    }

    #[test]
    fn mime_shaped_messages_plan_without_panic(raw in message()) {
        check(&raw);
    }

    #[test]
    fn deeply_nested_multiparts_plan_without_panic(depth in 1usize..2_000) {
        let mut raw = Vec::new();
        for i in 0..depth {
            raw.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n").as_bytes(),
            );
        }
        raw.extend_from_slice(b"Content-Type: text/plain\r\n\r\nx\r\n");
        check(&raw);
    }
}
