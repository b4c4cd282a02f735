//! Turning what people type into a spreadsheet into an [`E164`] number,
//! with Google's libphonenumber rules (through `rlibphonenumber`), so the
//! CSV and TeleMessage agree on one spelling of every number.

use std::fmt;
use std::str::FromStr;

use rlibphonenumber::{
    NumberLengthType, PHONE_NUMBER_UTIL, ParseError, PhoneNumberFormat, Region, ValidationError,
};

use crate::types::E164;

/// A region (ISO 3166 alpha-2) the phone-number metadata knows, used to
/// read numbers written without a `+` country code.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DefaultRegion {
    region: Region,
    calling_code: i32,
}

/// Why a `--default-region` value cannot be used.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error(
    "{0:?} is not a region the phone-number rules know; use a two-letter ISO 3166 code such as CN, HK, SG or US"
)]
pub struct UnknownRegion(pub String);

impl DefaultRegion {
    pub fn parse(code: &str) -> Result<Self, UnknownRegion> {
        let unknown = || UnknownRegion(code.to_owned());
        let region = Region::from_code(code.trim()).map_err(|_| unknown())?;
        let calling_code = PHONE_NUMBER_UTIL
            .get_country_code_for_region(region)
            .filter(|c| *c > 0)
            .ok_or_else(unknown)?;
        Ok(DefaultRegion {
            region,
            calling_code,
        })
    }

    /// The uppercase ISO code, e.g. `CN`.
    pub fn code(&self) -> String {
        self.region.to_string()
    }

    /// The country calling code, e.g. 86.
    pub fn calling_code(&self) -> i32 {
        self.calling_code
    }
}

impl FromStr for DefaultRegion {
    type Err = UnknownRegion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DefaultRegion::parse(s)
    }
}

impl fmt::Display for DefaultRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.region)
    }
}

impl fmt::Debug for DefaultRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DefaultRegion({})", self.region)
    }
}

/// Why a number cannot be mapped. The two kinds are separate findings in
/// the validation report (`invalid_number`, `impossible_number`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Not a phone number at all (letters, stray symbols, nothing to read).
    #[error("{0}")]
    Unparseable(String),
    /// A phone number, but not one that can exist in its region.
    #[error("{0}")]
    Impossible(String),
}

impl PhoneError {
    pub fn is_impossible(&self) -> bool {
        matches!(self, PhoneError::Impossible(_))
    }
}

/// Normalises a number as written by a person: spaces, dashes, dots and
/// parentheses are ignored, a leading `00` is an international prefix, and
/// a number without a country code is read in `region`.
pub fn normalise(raw: &str, region: Option<DefaultRegion>) -> Result<E164, PhoneError> {
    let mut buffer = [0u8; MAX_CLEANED];
    let cleaned = clean(raw, &mut buffer)?;
    let international = cleaned.starts_with('+');
    let region = match (international, region) {
        (true, _) => None,
        (false, Some(region)) => Some(region.region),
        (false, None) => {
            return Err(PhoneError::Impossible(
                "has no country code and no default region is set: write it as +<country code><number>, or give the connector a default region (--default-region CC)".into(),
            ));
        }
    };
    let number = PHONE_NUMBER_UTIL
        .parse(cleaned, region)
        .map_err(|e| parse_error(&e, raw))?;
    if number.extension.is_some() {
        return Err(PhoneError::Unparseable("has an extension".into()));
    }
    match PHONE_NUMBER_UTIL.is_possible_number_with_reason(&number) {
        Ok(NumberLengthType::IsPossible) => {}
        Ok(NumberLengthType::IsPossibleLocalOnly) => {
            return Err(PhoneError::Impossible(
                "is a local number: add the area code and the country code".into(),
            ));
        }
        Err(e) => return Err(impossible(&e)),
    }
    let e164 = PHONE_NUMBER_UTIL.format(&number, PhoneNumberFormat::E164);
    E164::parse_canonical(&e164).map_err(|_| {
        PhoneError::Impossible(format!("does not make an E.164 number (read as {e164})"))
    })
}

/// Longest number kept after cleaning: E.164 allows 15 digits; the rest is
/// room for national prefixes before the library strips them.
const MAX_CLEANED: usize = 32;

/// Copies the digits (and a leading `+`) of `raw` into `buffer`, turning a
/// leading `00` into `+`; anything but the ignorable separators is refused
/// here, so letters never reach the vanity-number rules.
fn clean<'b>(raw: &str, buffer: &'b mut [u8; MAX_CLEANED]) -> Result<&'b str, PhoneError> {
    let mut len = 0;
    for c in raw.trim().chars() {
        let byte = match c {
            '0'..='9' => c as u8,
            '０'..='９' => b'0' + (c as u32 - '０' as u32) as u8,
            '+' | '＋' if len == 0 => b'+',
            ' ' | '\u{a0}' | '\u{3000}' | '\t' | '-' | '.' | '(' | ')' | '（' | '）' => continue,
            _ => return Err(unparseable_char(raw, c)),
        };
        if len == MAX_CLEANED {
            return Err(PhoneError::Impossible(
                "is too long for a phone number".into(),
            ));
        }
        buffer[len] = byte;
        len += 1;
    }
    let mut digits = &mut buffer[..len];
    if digits.starts_with(b"00") {
        digits[1] = b'+';
        digits = &mut digits[1..];
    }
    match std::str::from_utf8(digits) {
        Ok(s) if !s.is_empty() && s != "+" => Ok(s),
        _ => Err(PhoneError::Unparseable("has no digits".into())),
    }
}

fn unparseable_char(raw: &str, c: char) -> PhoneError {
    let looks_scientific = raw.contains(['E', 'e']) && raw.contains('+');
    if looks_scientific
        && raw
            .chars()
            .all(|c| c.is_ascii_digit() || "+.,Ee".contains(c))
    {
        return PhoneError::Unparseable(
            "was turned into scientific notation by a spreadsheet: format the column as Text and type the numbers again".into(),
        );
    }
    if c == '+' {
        return PhoneError::Unparseable("has a '+' that is not at the start".into());
    }
    PhoneError::Unparseable(format!(
        "contains {c:?}: only digits, a leading +, spaces, dashes, dots and parentheses are allowed"
    ))
}

fn parse_error(e: &ParseError, raw: &str) -> PhoneError {
    match e {
        ParseError::InvalidCountryCode => PhoneError::Impossible(format!(
            "has no valid country code{}",
            if raw.trim_start().starts_with(['+', '＋']) || raw.trim_start().starts_with("00") {
                ""
            } else {
                " for the default region"
            }
        )),
        ParseError::TooShortAfterIdd | ParseError::TooShortNsn => {
            PhoneError::Impossible("is too short for its region".into())
        }
        ParseError::TooLongNsn => PhoneError::Impossible("is too long for its region".into()),
        ParseError::NotANumber(_) => PhoneError::Unparseable("is not a phone number".into()),
    }
}

fn impossible(e: &ValidationError) -> PhoneError {
    let reason = match e {
        ValidationError::InvalidCountryCode => "has no valid country code",
        ValidationError::TooShort => "is too short for its region",
        ValidationError::TooLong => "is too long for its region",
        _ => "has a length no number of its region has",
    };
    PhoneError::Impossible(reason.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cn() -> Option<DefaultRegion> {
        Some(DefaultRegion::parse("cn").unwrap())
    }

    fn ok(raw: &str, region: Option<DefaultRegion>) -> String {
        normalise(raw, region)
            .unwrap_or_else(|e| panic!("{raw:?}: {e}"))
            .to_string()
    }

    #[test]
    fn separators_and_prefixes_reduce_to_one_spelling() {
        for raw in [
            "+8613800138000",
            "+86 138 0013 8000",
            "+86-138-0013-8000",
            "+86.138.0013.8000",
            "(+86) 138 0013 8000",
            "008613800138000",
            "00 86 138 0013 8000",
            "13800138000",
            "１３８００１３８０００",
        ] {
            assert_eq!(ok(raw, cn()), "+8613800138000", "{raw}");
        }
        assert_eq!(ok("+852 9123 4567", cn()), "+85291234567");
        assert_eq!(
            ok("(650) 253-0000", DefaultRegion::parse("US").ok()),
            "+16502530000"
        );
        assert_eq!(
            ok("0086 13800138000", DefaultRegion::parse("US").ok()),
            "+8613800138000"
        );
    }

    #[test]
    fn national_numbers_need_a_region() {
        let e = normalise("13800138000", None).unwrap_err();
        assert!(e.is_impossible());
        assert!(e.to_string().contains("--default-region"));
    }

    #[test]
    fn impossible_and_unparseable_numbers_are_told_apart() {
        assert!(normalise("+86 138", cn()).unwrap_err().is_impossible());
        assert!(
            normalise("+86 1380013800012345", cn())
                .unwrap_err()
                .is_impossible()
        );
        assert!(normalise("+999 1234567", cn()).unwrap_err().is_impossible());
        assert!(!normalise("call me", cn()).unwrap_err().is_impossible());
        assert!(
            !normalise("1-800-FLOWERS", cn())
                .unwrap_err()
                .is_impossible()
        );
        assert!(!normalise("+", cn()).unwrap_err().is_impossible());
        let e = normalise("8.61380E+12", cn()).unwrap_err();
        assert!(e.to_string().contains("scientific"), "{e}");
    }

    #[test]
    fn unknown_regions_are_refused() {
        assert!(DefaultRegion::parse("ZZ").is_err());
        assert!(DefaultRegion::parse("China").is_err());
        assert_eq!(DefaultRegion::parse("hk").unwrap().code(), "HK");
    }
}

#[cfg(test)]
mod robustness {
    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;

    /// Whatever people type, normalising answers and never panics, and an
    /// answer is always a canonical E.164 number.
    #[test]
    fn arbitrary_input_gives_an_answer_not_a_panic() {
        let alphabet: Vec<char> = "0123456789+ -.()０＋x#*".chars().collect();
        let regions = [
            None,
            DefaultRegion::parse("CN").ok(),
            DefaultRegion::parse("US").ok(),
        ];
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..20_000 {
            let len = rng.random_range(0..24);
            let raw: String = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            let region = regions[rng.random_range(0..regions.len())];
            if let Ok(n) = normalise(&raw, region) {
                assert!(E164::parse_canonical(n.as_str()).is_ok(), "{raw:?} -> {n}");
            }
        }
    }
}
