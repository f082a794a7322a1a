//! Number and XML text formatting as Boost's text and XML archives write it.

/// Appends `x` the way `text_oarchive` writes a double since Boost 1.56:
/// `std::scientific` with 17 fraction digits and an exponent of at least two
/// digits (`1.00000000000000006e-01`).
pub(crate) fn push_f64(out: &mut Vec<u8>, x: f64) {
    push_float(
        out,
        x.is_nan(),
        x.is_infinite(),
        x.is_sign_negative(),
        || format!("{x:.17e}"),
    )
}

/// Appends a float with 9 fraction digits (`1.500000000e+00`).
pub(crate) fn push_f32(out: &mut Vec<u8>, x: f32) {
    push_float(
        out,
        x.is_nan(),
        x.is_infinite(),
        x.is_sign_negative(),
        || format!("{x:.9e}"),
    )
}

fn push_float(out: &mut Vec<u8>, nan: bool, inf: bool, neg: bool, fmt: impl FnOnce() -> String) {
    if nan {
        out.extend_from_slice(if neg { b"-nan" } else { b"nan" });
        return;
    }
    if inf {
        out.extend_from_slice(if neg { b"-inf" } else { b"inf" });
        return;
    }
    let s = fmt();
    let (mant, exp) = s
        .split_once('e')
        .expect("scientific format has an exponent");
    out.extend_from_slice(mant.as_bytes());
    out.push(b'e');
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => (b'-', d),
        None => (b'+', exp),
    };
    out.push(sign);
    if digits.len() < 2 {
        out.push(b'0');
    }
    out.extend_from_slice(digits.as_bytes());
}

/// Appends an integer in decimal.
pub(crate) fn push_int(out: &mut Vec<u8>, v: impl itoa_like::Int) {
    v.push_to(out)
}

pub(crate) mod itoa_like {
    /// Integers written in decimal without allocation.
    pub trait Int: Copy {
        /// Appends the decimal form.
        fn push_to(self, out: &mut Vec<u8>);
    }
    macro_rules! int_impl {
        ($($t:ty),*) => {$(
            impl Int for $t {
                fn push_to(self, out: &mut Vec<u8>) {
                    let _ = write!(out, "{}", self);
                }
            }
        )*};
    }
    use std::io::Write;
    int_impl!(i8, u8, i16, u16, i32, u32, i64, u64, usize);
}

/// Appends `s` escaped for XML content (`< > & " '`).
pub(crate) fn push_xml_escaped(out: &mut Vec<u8>, s: &[u8]) {
    for &c in s {
        match c {
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            b'\'' => out.extend_from_slice(b"&apos;"),
            _ => out.push(c),
        }
    }
}

/// Decodes XML character and entity references.
pub(crate) fn xml_unescape(s: &[u8]) -> Result<Vec<u8>, String> {
    if !s.contains(&b'&') {
        return Ok(s.to_vec());
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'&' {
            out.push(s[i]);
            i += 1;
            continue;
        }
        let end = s[i..]
            .iter()
            .position(|&c| c == b';')
            .ok_or_else(|| "unterminated entity reference".to_string())?;
        let ent = &s[i + 1..i + end];
        match ent {
            b"lt" => out.push(b'<'),
            b"gt" => out.push(b'>'),
            b"amp" => out.push(b'&'),
            b"quot" => out.push(b'"'),
            b"apos" => out.push(b'\''),
            _ if ent.first() == Some(&b'#') => {
                let txt = std::str::from_utf8(&ent[1..]).map_err(|e| e.to_string())?;
                let code = if let Some(h) = txt.strip_prefix('x') {
                    u32::from_str_radix(h, 16)
                } else {
                    txt.parse()
                }
                .map_err(|_| format!("bad character reference &{txt};"))?;
                let ch = char::from_u32(code)
                    .ok_or_else(|| format!("bad character reference &{txt};"))?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            _ => return Err(format!("unknown entity &{};", String::from_utf8_lossy(ent))),
        }
        i += end + 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: f64) -> String {
        let mut v = Vec::new();
        push_f64(&mut v, x);
        String::from_utf8(v).unwrap()
    }
    fn g(x: f32) -> String {
        let mut v = Vec::new();
        push_f32(&mut v, x);
        String::from_utf8(v).unwrap()
    }

    #[test]
    #[allow(clippy::excessive_precision)]
    fn floats_like_boost() {
        assert_eq!(f(0.1), "1.00000000000000006e-01");
        assert_eq!(f(-2.5e300), "-2.50000000000000013e+300");
        assert_eq!(f(0.0), "0.00000000000000000e+00");
        assert_eq!(f(-0.0), "-0.00000000000000000e+00");
        assert_eq!(f(4.9406564584124654e-324), "4.94065645841246544e-324");
        assert_eq!(g(1.5), "1.500000000e+00");
        assert_eq!(g(0.1), "1.000000015e-01");
        assert_eq!(f(f64::NAN), "nan");
        assert_eq!(f(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn xml_escapes_round_trip() {
        let mut v = Vec::new();
        push_xml_escaped(&mut v, b"a<b>&\"'");
        assert_eq!(v, b"a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(xml_unescape(&v).unwrap(), b"a<b>&\"'");
        assert_eq!(xml_unescape(b"&#233;&#x41;").unwrap(), "éA".as_bytes());
        assert!(xml_unescape(b"&bogus;").is_err());
    }
}
