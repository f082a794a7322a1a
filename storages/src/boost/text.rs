//! Number and XML text formatting as Boost's text and XML archives write it.

/// Appends `x` the way `text_oarchive` writes a double since Boost 1.56:
/// `std::scientific` with 17 fraction digits and an exponent of at least two
/// digits (`1.00000000000000006e-01`), correctly rounded (half to even) from
/// the exact binary value, as glibc's printf does.
pub(crate) fn push_f64(out: &mut Vec<u8>, x: f64) {
    if x.is_finite() {
        let bits = x.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i32;
        let frac = bits & ((1 << 52) - 1);
        let (m, e) = if exp == 0 {
            (frac, -1074)
        } else {
            (frac | (1 << 52), exp - 1075)
        };
        if push_sci_fast(out, x.is_sign_negative(), m, e, 18, x.abs()) {
            return;
        }
    }
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
    if x.is_finite() {
        let bits = x.to_bits();
        let exp = ((bits >> 23) & 0xff) as i32;
        let frac = (bits & ((1 << 23) - 1)) as u64;
        let (m, e) = if exp == 0 {
            (frac, -149)
        } else {
            (frac | (1 << 23), exp - 150)
        };
        if push_sci_fast(out, x.is_sign_negative(), m, e, 10, x.abs() as f64) {
            return;
        }
    }
    push_float(
        out,
        x.is_nan(),
        x.is_infinite(),
        x.is_sign_negative(),
        || format!("{x:.9e}"),
    )
}

const POW10: [u128; 39] = {
    let mut t = [1u128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// The `sig` significant digits of m·2^e (> 0) rounded half to even, as an
/// integer D with 10^(sig-1) <= D < 10^sig, and the decimal exponent; None
/// when the exact computation does not fit in 128 bits.
fn sci_digits(m: u64, e: i32, sig: u32, e10: i32) -> Option<u128> {
    let k = sig as i32 - 1 - e10;
    let m = m as u128;
    let round = |q: u128, rem_cmp: std::cmp::Ordering| -> u128 {
        match rem_cmp {
            std::cmp::Ordering::Greater => q + 1,
            std::cmp::Ordering::Equal if q & 1 == 1 => q + 1,
            _ => q,
        }
    };
    if k >= 0 {
        let n = m.checked_mul(*POW10.get(k as usize)?)?;
        if e >= 0 {
            n.checked_mul(1u128.checked_shl(e as u32)?)
                .filter(|v| v.leading_zeros() > 0)
        } else {
            let s = (-e) as u32;
            if s >= 127 {
                return None;
            }
            let q = n >> s;
            let rem = n & ((1u128 << s) - 1);
            let half = 1u128 << (s - 1);
            Some(round(q, rem.cmp(&half)))
        }
    } else {
        if e < 0 {
            return None;
        }
        if m.leading_zeros() <= e as u32 + 1 {
            return None;
        }
        let n = m << e;
        let p = *POW10.get((-k) as usize)?;
        let q = n / p;
        let rem = n % p;
        Some(round(q, (rem * 2).cmp(&p)))
    }
}

fn push_sci_fast(out: &mut Vec<u8>, neg: bool, m: u64, e: i32, sig: u32, abs: f64) -> bool {
    if neg {
        out.push(b'-');
    }
    let start = out.len();
    if m == 0 {
        out.push(b'0');
        out.push(b'.');
        out.extend(std::iter::repeat_n(b'0', sig as usize - 1));
        out.extend_from_slice(b"e+00");
        return true;
    }
    let mut e10 = abs.log10().floor() as i32;
    let mut d = None;
    for _ in 0..3 {
        match sci_digits(m, e, sig, e10) {
            None => break,
            Some(v) if v >= POW10[sig as usize] => e10 += 1,
            Some(v) if v < POW10[sig as usize - 1] => e10 -= 1,
            Some(v) => {
                d = Some(v);
                break;
            }
        }
    }
    let Some(d) = d else {
        if neg {
            out.pop();
        }
        return false;
    };
    let mut digits = [0u8; 20];
    // D < 10^18 fits in a u64, whose division is far cheaper than u128's.
    let mut v = d as u64;
    for i in (0..sig as usize).rev() {
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.push(digits[0]);
    out.push(b'.');
    out.extend_from_slice(&digits[1..sig as usize]);
    out.push(b'e');
    out.push(if e10 < 0 { b'-' } else { b'+' });
    let a = e10.unsigned_abs();
    if a < 10 {
        out.push(b'0');
    }
    push_int(out, a);
    debug_assert!(out.len() > start);
    true
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

/// The reference formatting (Rust's exact `{:.17e}` / `{:.9e}`), for tests.
#[cfg(test)]
fn slow_f64(x: f64) -> Vec<u8> {
    let mut v = Vec::new();
    push_float(
        &mut v,
        x.is_nan(),
        x.is_infinite(),
        x.is_sign_negative(),
        || format!("{x:.17e}"),
    );
    v
}

#[cfg(test)]
fn slow_f32(x: f32) -> Vec<u8> {
    let mut v = Vec::new();
    push_float(
        &mut v,
        x.is_nan(),
        x.is_infinite(),
        x.is_sign_negative(),
        || format!("{x:.9e}"),
    );
    v
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
    fn fast_float_formatting_matches_exact_formatting() {
        // Deterministic pseudo-random bit patterns plus edge values.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut specials: Vec<f64> = vec![
            0.1,
            0.5,
            1.0,
            9.5,
            10.0,
            99.99999999999999,
            1e17,
            1e18,
            123456789.125,
            1e22,
            1e23,
            5e-324,
            2.2250738585072014e-308,
            1.7976931348623157e308,
            0.3,
            2.5,
            0.125,
            1e-5,
        ];
        for i in -30..30 {
            specials.push(10f64.powi(i));
            specials.push(-(10f64.powi(i)) * 1.5);
        }
        for x in specials
            .into_iter()
            .chain((0..200_000).map(|_| f64::from_bits(next())))
        {
            if !x.is_finite() {
                continue;
            }
            let mut fast = Vec::new();
            push_f64(&mut fast, x);
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(slow_f64(x)).unwrap(),
                "{x:e}"
            );
        }
        for i in 0..200_000u32 {
            let x = if i < 1000 {
                i as f32 * 0.37
            } else {
                f32::from_bits(next() as u32)
            };
            if !x.is_finite() {
                continue;
            }
            let mut fast = Vec::new();
            push_f32(&mut fast, x);
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(slow_f32(x)).unwrap(),
                "{x:e}"
            );
        }
        // Moderate magnitudes (the fast path's home ground).
        for _ in 0..200_000 {
            let x = (next() % 1_000_000_007) as f64 / ((next() % 100_000) as f64 + 1.0);
            let mut fast = Vec::new();
            push_f64(&mut fast, x);
            assert_eq!(fast, slow_f64(x), "{x:e}");
        }
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
