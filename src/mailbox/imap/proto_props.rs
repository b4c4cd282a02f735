//! Property tests of the IMAP answer parsers against hostile servers: any
//! bytes, and answers built from the grammar's pieces with absurd numbers,
//! deep nesting and truncated literals. Nothing may panic (a panic would
//! end the run, and a stack overflow the process), and what comes out is
//! bounded by what came in.

use proptest::prelude::*;

use super::proto::*;

/// Pieces a server answer is made of, hostile ones included.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"* ".to_vec()),
        Just(b"A1 ".to_vec()),
        Just(b"OK ".to_vec()),
        Just(b"NO ".to_vec()),
        Just(b"[APPENDUID ".to_vec()),
        Just(b"[UIDVALIDITY ".to_vec()),
        Just(b"FETCH ".to_vec()),
        Just(b"SEARCH ".to_vec()),
        Just(b"(".to_vec()),
        Just(b")".to_vec()),
        Just(b"[".to_vec()),
        Just(b"]".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\\".to_vec()),
        Just(b"NIL ".to_vec()),
        Just(b"{18446744073709551615}\r\n".to_vec()),
        Just(b"{4294967296+}\r\n".to_vec()),
        Just(b"{3}\r\n".to_vec()),
        Just(b"1:4294967295".to_vec()),
        Just(b"4294967295:1,".to_vec()),
        Just(b"Request is throttled. Suggested Backoff Time: 99999999999999999999999 ms".to_vec()),
        "[0-9]{1,25}".prop_map(String::into_bytes),
        "[ -~]{0,12}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..8),
    ]
}

fn answer() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(piece(), 0..40).prop_map(|p| p.concat())
}

/// Runs every parser on one answer; each result is checked for sanity.
fn parse_everything(raw: &[u8]) {
    match classify(raw) {
        Ok(Line::Tagged { status, .. }) => {
            let _ = status.describe();
            let _ = status.code_name();
            if let Some((_, uids)) = append_uids(&status) {
                // No range expands beyond what the code could name.
                let ranges = status.code.as_deref().unwrap_or("").matches(',').count() + 1;
                assert!(uids.len() <= ranges * 100_001);
            }
        }
        Ok(Line::Untagged(data)) => {
            let _ = uid_validity(&data);
            if let Some(found) = search_results(&data) {
                assert!(found.len() <= data.len());
            }
            if let Some(items) = fetch_items(&data) {
                assert!(items.len() <= data.len());
            }
            let _ = Capabilities::from_untagged(&data);
        }
        Ok(Line::Continuation) | Err(_) => {}
    }
    if let Some(len) = trailing_literal(raw) {
        assert!(raw.len() >= 3, "{len}");
    }
    let _ = throttle_backoff_ms(&String::from_utf8_lossy(raw));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn any_bytes_parse_without_panic(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
        parse_everything(&raw);
    }

    #[test]
    fn grammar_shaped_answers_parse_without_panic(raw in answer()) {
        parse_everything(&raw);
        let mut untagged = b"* 1 FETCH ".to_vec();
        untagged.extend_from_slice(&raw);
        parse_everything(&untagged);
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow(depth in 1usize..200_000) {
        let mut data = b"1 FETCH ".to_vec();
        data.extend(std::iter::repeat_n(b'(', depth));
        data.extend(std::iter::repeat_n(b')', depth));
        let _ = fetch_items(&data);
    }
}
