//! Adapter from path-template fields to the printf engine
//! ([`daf_base::printf`]): one pre-parsed spec per field, formatting straight
//! into the output string.

use daf_base::printf::{self, PrintfArg};

/// A parsed conversion spec of a template field.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FormatSpec(printf::FormatSpec);

/// A spec that could not be parsed or applied.
pub(crate) type SpecError = printf::PrintfError;

impl FormatSpec {
    /// Parses `%<flags><width>.<precision><conversion>`; Python's `%r` is
    /// taken as `%s` (data-id values are plain strings or numbers).
    pub(crate) fn parse(spec: &str) -> Result<Self, SpecError> {
        match spec.strip_suffix('r') {
            Some(head) => printf::FormatSpec::parse(&format!("{head}s")).map(FormatSpec),
            None => printf::FormatSpec::parse(spec).map(FormatSpec),
        }
    }

    pub(crate) fn format_i64(&self, v: i64, out: &mut String) -> Result<(), SpecError> {
        self.0.format_into(out, PrintfArg::Int(v))
    }

    pub(crate) fn format_f64(&self, v: f64, out: &mut String) -> Result<(), SpecError> {
        self.0.format_into(out, PrintfArg::Float(v))
    }

    pub(crate) fn format_str(&self, v: &str, out: &mut String) -> Result<(), SpecError> {
        self.0.format_into(out, PrintfArg::Str(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i(spec: &str, v: i64) -> String {
        let mut s = String::new();
        FormatSpec::parse(spec)
            .unwrap()
            .format_i64(v, &mut s)
            .unwrap();
        s
    }

    #[test]
    fn python_style_fields() {
        assert_eq!(i("%05d", 42), "00042");
        assert_eq!(i("%-4d", 7) + "|", "7   |");
        assert_eq!(i("%x", 255), "ff");
        let mut s = String::new();
        FormatSpec::parse("%5r")
            .unwrap()
            .format_str("ab", &mut s)
            .unwrap();
        assert_eq!(s, "   ab");
        let mut s = String::new();
        FormatSpec::parse("%.2f")
            .unwrap()
            .format_f64(1.5, &mut s)
            .unwrap();
        assert_eq!(s, "1.50");
        assert!(FormatSpec::parse("%q").is_err());
    }
}
