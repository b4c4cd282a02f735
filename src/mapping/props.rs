//! Property tests of the mapping CSV reader against hostile files: any
//! bytes, and CSV-shaped files built from pieces (quotes, BOMs, odd
//! delimiters, control characters, long fields, almost-numbers). Reading
//! never panics nor hangs, and the report's counts are bounded by the
//! file's lines.

use proptest::prelude::*;

use super::{DefaultRegion, ValidateOptions, validate_reader};

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("phone,email\n".to_owned()),
        Just("\u{feff}Mobile;Mailbox\r\n".to_owned()),
        Just("number\tmailbox\n".to_owned()),
        Just("+8613800138000,li.wei@contoso.com\n".to_owned()),
        Just("13800138000,zhang@contoso.com\n".to_owned()),
        Just("\"+86 138 0013 8000\",\"a@b.c\"\n".to_owned()),
        Just("\"unterminated,x@y.z\n".to_owned()),
        Just("\"\"\"\"\n".to_owned()),
        Just("+999999999999999999999999,a@b\n".to_owned()),
        Just(",,,,,,,,\n".to_owned()),
        Just("\u{1b}[2J,\u{202e}@x.com\n".to_owned()),
        Just("\r".to_owned()),
        Just("\0".to_owned()),
        Just(",".to_owned()),
        Just(";".to_owned()),
        Just("\"".to_owned()),
        "[+0-9 ()-]{0,24}".prop_map(|s| s),
        "[a-z.]{0,10}@[a-z.]{0,10}".prop_map(|s| s),
        any::<String>().prop_map(|s| s.chars().take(16).collect()),
    ]
}

fn file() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(piece(), 0..60).prop_map(|p| p.concat().into_bytes())
}

#[track_caller]
fn check(bytes: &[u8], region: Option<&str>) {
    let options = ValidateOptions {
        default_region: region.map(|r| DefaultRegion::parse(r).unwrap()),
        file_name: "mapping.csv".into(),
        size_hint: Some(bytes.len() as u64),
    };
    let Ok(report) = validate_reader(bytes, &options) else {
        return;
    };
    let lines = bytes.iter().filter(|&&b| b == b'\n' || b == b'\r').count() as u64 + 1;
    assert!(
        report.rows() <= lines,
        "{} rows in {lines} lines",
        report.rows()
    );
    assert!(report.valid() <= report.rows());
    assert!(report.mappings() <= report.valid());
    assert!(report.errors().len() as u64 <= 8 * lines + 8);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_bytes_read_without_panic(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(&raw, None);
    }

    #[test]
    fn csv_shaped_files_read_without_panic(raw in file(), cn in any::<bool>()) {
        check(&raw, cn.then_some("CN"));
    }
}
