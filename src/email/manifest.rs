//! The `.mf` manifest of a TeleMessage EML batch (`telemessage-email.md`
//! §2) and Smarsh's validation of a batch against it: the `Count:` value
//! equals the number of EML files, every listed file is present with
//! exactly that name, and no listed file is empty. The layout beyond
//! `Count:` and one file name per line is not public, so other lines are
//! set aside and reported, not fatal.

use std::collections::BTreeSet;

/// What a manifest says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub count: Option<u64>,
    pub files: Vec<String>,
    /// Lines that are neither `Count:` nor a file name (line number, text).
    pub not_understood: Vec<(usize, String)>,
}

/// Reads a manifest tolerantly.
pub fn read(text: &str) -> Manifest {
    let mut manifest = Manifest::default();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim().trim_start_matches('\u{feff}');
        if line.is_empty() {
            continue;
        }
        if let Some(value) = count_value(line) {
            match value.parse::<u64>() {
                Ok(n) if manifest.count.is_none() => manifest.count = Some(n),
                _ => manifest.not_understood.push((index + 1, escape(line))),
            }
        } else if line.to_ascii_lowercase().ends_with(".eml") {
            manifest.files.push(line.to_owned());
        } else {
            manifest.not_understood.push((index + 1, escape(line)));
        }
    }
    manifest
}

/// The value of a `Count:` (or `Count =`) line.
fn count_value(line: &str) -> Option<&str> {
    let (name, value) = line.split_once([':', '='])?;
    name.trim()
        .eq_ignore_ascii_case("count")
        .then(|| value.trim())
}

/// An entry of the batch as the archive lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub size: u64,
}

/// Every discrepancy between a manifest and the batch's EML entries; empty
/// when the batch is valid.
pub fn validate(manifest: &Manifest, entries: &[Entry]) -> Vec<String> {
    let mut problems = Vec::new();
    let present: BTreeSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let listed: BTreeSet<&str> = manifest.files.iter().map(String::as_str).collect();
    match manifest.count {
        None => problems.push("the manifest has no Count: value".to_owned()),
        Some(n) if n != entries.len() as u64 => problems.push(format!(
            "the manifest's Count: is {n}, but the batch holds {} EML files",
            entries.len()
        )),
        Some(_) => {}
    }
    if manifest.files.len() != listed.len() {
        problems.push("the manifest lists a file more than once".to_owned());
    }
    for name in &manifest.files {
        match entries.iter().find(|e| e.name == *name) {
            None => problems.push(format!(
                "{} is listed in the manifest but missing from the batch",
                escape(name)
            )),
            Some(e) if e.size == 0 => {
                problems.push(format!("{} is empty", escape(name)));
            }
            Some(_) => {}
        }
    }
    for name in present.difference(&listed) {
        problems.push(format!(
            "{} is in the batch but not listed in the manifest",
            escape(name)
        ));
    }
    problems
}

/// Control characters escaped, for a terminal or a log.
pub fn escape(text: &str) -> String {
    text.chars()
        .flat_map(char::escape_debug)
        .collect::<String>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(names: &[(&str, u64)]) -> Vec<Entry> {
        names
            .iter()
            .map(|(n, s)| Entry {
                name: n.to_string(),
                size: *s,
            })
            .collect()
    }

    #[test]
    fn a_manifest_is_read_tolerantly() {
        let m = read("Batch: 7\r\nCount: 2\r\na.eml\r\nb.EML\r\n\r\n");
        assert_eq!(m.count, Some(2));
        assert_eq!(m.files, ["a.eml", "b.EML"]);
        assert_eq!(m.not_understood, [(1, "Batch: 7".to_owned())]);
    }

    #[test]
    fn each_discrepancy_is_named() {
        let m = read("Count: 3\na.eml\nb.eml\nc.eml\n");
        assert!(validate(&m, &entries(&[("a.eml", 5), ("b.eml", 5), ("c.eml", 5)])).is_empty());
        let problems = validate(&m, &entries(&[("a.eml", 5), ("b.eml", 0)]));
        assert_eq!(
            problems,
            [
                "the manifest's Count: is 3, but the batch holds 2 EML files",
                "b.eml is empty",
                "c.eml is listed in the manifest but missing from the batch",
            ]
        );
    }
}
