//! A pre-parsed printf conversion spec (`%05d`, `%-8s`, `%.3f`), formatting
//! straight into a `String` without allocating: the hot path of path
//! templates.

use std::fmt::Write as _;

/// A parsed `%<flags><width>.<precision><conversion>`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FormatSpec {
    left: bool,
    plus: bool,
    space: bool,
    alt: bool,
    zero: bool,
    width: usize,
    precision: Option<usize>,
    conv: char,
}

/// A spec that could not be parsed or applied.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpecError(pub String);

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Widths beyond this are refused (no unbounded allocation from a policy).
const MAX_WIDTH: usize = 256;

impl FormatSpec {
    pub(crate) fn parse(spec: &str) -> Result<Self, SpecError> {
        let s = spec
            .strip_prefix('%')
            .ok_or_else(|| SpecError(format!("spec {spec:?} does not start with %")))?;
        let b = s.as_bytes();
        let mut f = FormatSpec {
            left: false,
            plus: false,
            space: false,
            alt: false,
            zero: false,
            width: 0,
            precision: None,
            conv: 's',
        };
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'-' => f.left = true,
                b'+' => f.plus = true,
                b' ' => f.space = true,
                b'#' => f.alt = true,
                b'0' => f.zero = true,
                _ => break,
            }
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i > start {
            f.width = s[start..i]
                .parse()
                .map_err(|_| SpecError(format!("bad width in {spec:?}")))?;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            let ps = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            f.precision = Some(if i > ps {
                s[ps..i]
                    .parse()
                    .map_err(|_| SpecError(format!("bad precision in {spec:?}")))?
            } else {
                0
            });
        }
        if f.width > MAX_WIDTH || f.precision.unwrap_or(0) > MAX_WIDTH {
            return Err(SpecError(format!(
                "width or precision too large in {spec:?}"
            )));
        }
        if i + 1 != b.len() {
            return Err(SpecError(format!("bad conversion in {spec:?}")));
        }
        f.conv = b[i] as char;
        if !"diouxXeEfFgGsrc".contains(f.conv) {
            return Err(SpecError(format!("unknown conversion in {spec:?}")));
        }
        Ok(f)
    }

    fn pad(&self, out: &mut String, sign: &str, body: &str, numeric: bool) {
        let len = sign.len() + body.chars().count();
        let fill = self.width.saturating_sub(len);
        if self.left {
            out.push_str(sign);
            out.push_str(body);
            out.extend(std::iter::repeat_n(' ', fill));
        } else if self.zero && numeric {
            out.push_str(sign);
            out.extend(std::iter::repeat_n('0', fill));
            out.push_str(body);
        } else {
            out.extend(std::iter::repeat_n(' ', fill));
            out.push_str(sign);
            out.push_str(body);
        }
    }

    fn sign(&self, negative: bool) -> &'static str {
        if negative {
            "-"
        } else if self.plus {
            "+"
        } else if self.space {
            " "
        } else {
            ""
        }
    }

    pub(crate) fn format_i64(&self, v: i64, out: &mut String) -> Result<(), SpecError> {
        let mag = v.unsigned_abs();
        let sign = self.sign(v < 0);
        if self.width == 0 && sign.is_empty() && matches!(self.conv, 'd' | 'i' | 'u') {
            let _ = write!(out, "{mag}");
            return Ok(());
        }
        let mut body = String::with_capacity(24);
        match self.conv {
            'd' | 'i' | 'u' => {
                let _ = write!(body, "{mag}");
            }
            'o' => {
                let _ = write!(body, "{}{mag:o}", if self.alt { "0o" } else { "" });
            }
            'x' => {
                let _ = write!(body, "{}{mag:x}", if self.alt { "0x" } else { "" });
            }
            'X' => {
                let _ = write!(body, "{}{mag:X}", if self.alt { "0X" } else { "" });
            }
            'e' | 'E' | 'f' | 'F' | 'g' | 'G' => return self.format_f64(v as f64, out),
            c => return Err(SpecError(format!("%{c} cannot format an integer"))),
        }
        if let Some(p) = self.precision {
            if body.len() < p {
                body.insert_str(0, &"0".repeat(p - body.len()));
            }
        }
        let zero_ok = self.precision.is_none();
        self.pad(out, sign, &body, zero_ok);
        Ok(())
    }

    pub(crate) fn format_f64(&self, v: f64, out: &mut String) -> Result<(), SpecError> {
        let p = self.precision.unwrap_or(6);
        let sign = self.sign(v.is_sign_negative() && !v.is_nan());
        let a = v.abs();
        let mut body = String::with_capacity(24);
        if !a.is_finite() {
            body.push_str(if a.is_nan() { "nan" } else { "inf" });
        } else {
            match self.conv {
                'f' | 'F' => {
                    let _ = write!(body, "{a:.p$}");
                }
                'e' | 'E' => body.push_str(&py_exp(a, p)),
                'g' | 'G' => {
                    let p = p.max(1);
                    let exp = if a == 0.0 {
                        0
                    } else {
                        let e = py_exp(a, p - 1);
                        e.rsplit('e')
                            .next()
                            .and_then(|x| x.parse::<i32>().ok())
                            .unwrap_or(0)
                    };
                    if exp < -4 || exp >= p as i32 {
                        body.push_str(&py_exp(a, p - 1));
                    } else {
                        let decimals = (p as i32 - 1 - exp).max(0) as usize;
                        let _ = write!(body, "{a:.decimals$}");
                    }
                    if !self.alt {
                        // Strip trailing zeros of the fraction.
                        let (mant, exp_part) = match body.find('e') {
                            Some(i) => (body[..i].to_string(), body[i..].to_string()),
                            None => (body.clone(), String::new()),
                        };
                        let mant = if mant.contains('.') {
                            mant.trim_end_matches('0').trim_end_matches('.').to_string()
                        } else {
                            mant
                        };
                        body = mant + &exp_part;
                    }
                }
                c => return Err(SpecError(format!("%{c} cannot format a float"))),
            }
            if self.conv.is_ascii_uppercase() {
                body = body.to_uppercase();
            }
        }
        self.pad(out, sign, &body, a.is_finite());
        Ok(())
    }

    pub(crate) fn format_str(&self, v: &str, out: &mut String) -> Result<(), SpecError> {
        let v = match self.precision {
            Some(p) => {
                let end = v.char_indices().nth(p).map(|(i, _)| i).unwrap_or(v.len());
                &v[..end]
            }
            None => v,
        };
        if self.width == 0 {
            out.push_str(v);
        } else {
            self.pad(out, "", v, false);
        }
        Ok(())
    }
}

/// Python-style exponent notation: `1.500000e+00`.
fn py_exp(a: f64, p: usize) -> String {
    let s = format!("{a:.p$e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(spec: &str, v: f64) -> String {
        let mut s = String::new();
        FormatSpec::parse(spec)
            .unwrap()
            .format_f64(v, &mut s)
            .unwrap();
        s
    }
    fn i(spec: &str, v: i64) -> String {
        let mut s = String::new();
        FormatSpec::parse(spec)
            .unwrap()
            .format_i64(v, &mut s)
            .unwrap();
        s
    }

    #[test]
    fn matches_python() {
        assert_eq!(i("%05d", 42), "00042");
        assert_eq!(i("%05d", -42), "-0042");
        assert_eq!(i("%-4d", 7) + "|", "7   |");
        assert_eq!(i("%x", 255), "ff");
        assert_eq!(i("%#X", 255), "0XFF");
        assert_eq!(i("%03o", 8), "010");
        assert_eq!(f("%.2f", 1.005), "1.00");
        assert_eq!(f("%e", 1.5), "1.500000e+00");
        assert_eq!(f("%g", 0.0001), "0.0001");
        assert_eq!(f("%g", 1e-5), "1e-05");
        assert_eq!(f("%g", 123456789.0), "1.23457e+08");
        assert_eq!(f("%g", 2.5), "2.5");
        let mut s = String::new();
        FormatSpec::parse("%5s")
            .unwrap()
            .format_str("ab", &mut s)
            .unwrap();
        assert_eq!(s, "   ab");
        assert!(FormatSpec::parse("%999999d").is_err());
        assert!(FormatSpec::parse("%q").is_err());
    }
}
