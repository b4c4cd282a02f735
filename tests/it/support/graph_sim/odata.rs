//! The few OData `$filter` forms the simulator understands, the ones Graph
//! documents for what the writer does. Anything else is a 400, as Graph
//! answers an unsupported query.

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `singleValueExtendedProperties/Any(ep: ep/id eq '...' and ep/value eq '...')`
    ExtendedProperty { id: String, value: String },
    /// `internetMessageId eq '...'`
    InternetMessageId(String),
    /// `displayName eq '...'`
    DisplayName(String),
    /// `proxyAddresses/any(x:x eq 'smtp:...')`
    ProxyAddress(String),
}

/// The quoted literals of an expression (with `''` unescaped) and its
/// shape: lower case, no whitespace, each literal replaced by `?`.
pub fn literals_and_shape(expr: &str) -> Option<(Vec<String>, String)> {
    let mut literals = Vec::new();
    let mut shape = String::new();
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            let mut lit = String::new();
            loop {
                match chars.next()? {
                    '\'' if chars.peek() == Some(&'\'') => {
                        chars.next();
                        lit.push('\'');
                    }
                    '\'' => break,
                    other => lit.push(other),
                }
            }
            literals.push(lit);
            shape.push('?');
        } else if !c.is_whitespace() {
            shape.extend(c.to_lowercase());
        }
    }
    Some((literals, shape))
}

pub fn parse(expr: &str) -> Option<Filter> {
    let (mut lits, shape) = literals_and_shape(expr)?;
    if shape.starts_with("singlevalueextendedproperties/any(")
        && shape.ends_with("/valueeq?)")
        && shape.contains("/ideq?and")
        && lits.len() == 2
    {
        let value = lits.pop()?;
        let id = lits.pop()?;
        return Some(Filter::ExtendedProperty { id, value });
    }
    if lits.len() != 1 {
        return None;
    }
    let lit = lits.pop()?;
    match shape.as_str() {
        "internetmessageideq?" => Some(Filter::InternetMessageId(lit)),
        "displaynameeq?" => Some(Filter::DisplayName(lit)),
        s if s.starts_with("proxyaddresses/any(") && s.ends_with("eq?)") => {
            Some(Filter::ProxyAddress(lit))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(
            parse(
                "singleValueExtendedProperties/Any(ep: ep/id eq 'String {x} Name A' and ep/value eq 'it''s')"
            ),
            Some(Filter::ExtendedProperty {
                id: "String {x} Name A".into(),
                value: "it's".into()
            })
        );
        assert_eq!(
            parse("displayName eq 'WeChat Archiver'"),
            Some(Filter::DisplayName("WeChat Archiver".into()))
        );
        assert_eq!(parse("subject eq 'x'"), None);
    }
}
