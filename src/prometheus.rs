//! The Prometheus text format's one rule both `/metrics` pages need: how
//! a label value is written. `disco serve`'s counters ([`crate::metrics`])
//! and the registrar's endpoints each render their own families with it;
//! neither imports the other.

use std::borrow::Cow;

/// A label value in the Prometheus text format: backslash, double quote
/// and line feed escaped, as the format requires (a registry URL may hold
/// any of them).
pub fn label_value(value: &str) -> Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return Cow::Borrowed(value);
    }
    let mut escaped = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_as_the_text_format_requires() {
        assert_eq!(label_value("etcd://h1:2379/disco"), "etcd://h1:2379/disco");
        assert_eq!(label_value("zk://h/a\"b\\c\nd"), r#"zk://h/a\"b\\c\nd"#);
    }
}
