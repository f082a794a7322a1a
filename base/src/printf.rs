//! A C-`printf`-compatible formatting engine for one conversion at a time.
//!
//! LogicalLocation templates (`%04d(ccdId)`) and the mappers' Python-style
//! templates (`%(visit)07d`) both use printf conversion specs. This module
//! parses such a spec once into a [`FormatSpec`] and formats values with it,
//! producing exactly what C's `printf` (glibc) prints for the same value.
//!
//! # Supported syntax
//!
//! `%` `[flags]` `[width]` `[.precision]` `[length]` `conversion`
//!
//! * flags: `-` (left-justify), `+` (always a sign), space (a space where the
//!   sign would be), `0` (pad with zeros), `#` (alternate form);
//! * width and precision: decimal numbers up to [`MAX_WIDTH`] (`*` is not
//!   supported); a `.` alone means precision 0;
//! * length modifiers `hh h l ll L q j z t` are accepted and ignored: values
//!   are never truncated to a narrower C type;
//! * conversions: `d i u o x X e E f F g G s c`.
//!
//! # Arguments
//!
//! A [`PrintfArg`] is an integer ([`PrintfArg::Int`], [`PrintfArg::UInt`]),
//! a float, a string or a character. Where C would have undefined behaviour
//! this engine chooses:
//!
//! * `d i` format the value's mathematical value (a `UInt` above `i64::MAX`
//!   prints as it is);
//! * `u o x X` given a negative `Int` print its 64-bit two's complement, as C's
//!   `%llu`/`%llx` do; the `+` and space flags are ignored for them, as in C;
//! * `e E f F g G` given an integer convert it to `f64` first (as Python's `%`
//!   does);
//! * integer conversions given a float, a string or a character are an error
//!   ([`PrintfError::TypeMismatch`]) naming the spec and the argument type;
//! * `s` accepts strings, characters and integers (printed in decimal, as
//!   `boost::format` does); a float is an error. Width and precision count
//!   Unicode characters, not bytes (C counts bytes; the two agree for ASCII);
//! * `c` accepts a character, a one-character string, or an integer that is a
//!   valid Unicode scalar value.
//!
//! One known difference from glibc: with `#`, `%g` of a value that rounds up
//! to a power of ten past the precision (`%#.5g` of 99999.95) gives
//! `1.0000e+05` as the C standard requires, where glibc prints `1.e+05`.
//!
//! Nothing here panics on any input; width and precision are capped at
//! [`MAX_WIDTH`] so a spec cannot ask for an unbounded allocation.
//!
//! # Example
//!
//! ```
//! use daf_base::printf::{sprintf, FormatSpec, PrintfArg};
//!
//! assert_eq!(sprintf("%05.2f", PrintfArg::Float(2.71928)).unwrap(), "02.72");
//! assert_eq!(sprintf("%-6x", PrintfArg::Int(255)).unwrap(), "ff    ");
//!
//! // Parse once, format many times.
//! let spec = FormatSpec::parse("%04d").unwrap();
//! let mut out = String::new();
//! for v in [7, 42] {
//!     spec.format_into(&mut out, PrintfArg::Int(v)).unwrap();
//!     out.push('/');
//! }
//! assert_eq!(out, "0007/0042/");
//! ```

use std::fmt::{self, Write as _};

use thiserror::Error;

/// The largest width or precision a spec may ask for.
pub const MAX_WIDTH: usize = 4096;

/// One value to format.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PrintfArg<'a> {
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Str(&'a str),
    /// A character.
    Char(char),
}

impl PrintfArg<'_> {
    /// The argument's type name, as used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            PrintfArg::Int(_) => "signed integer",
            PrintfArg::UInt(_) => "unsigned integer",
            PrintfArg::Float(_) => "float",
            PrintfArg::Str(_) => "string",
            PrintfArg::Char(_) => "character",
        }
    }
}

impl From<i64> for PrintfArg<'_> {
    fn from(v: i64) -> Self {
        PrintfArg::Int(v)
    }
}
impl From<i32> for PrintfArg<'_> {
    fn from(v: i32) -> Self {
        PrintfArg::Int(v.into())
    }
}
impl From<u64> for PrintfArg<'_> {
    fn from(v: u64) -> Self {
        PrintfArg::UInt(v)
    }
}
impl From<u32> for PrintfArg<'_> {
    fn from(v: u32) -> Self {
        PrintfArg::UInt(v.into())
    }
}
impl From<f64> for PrintfArg<'_> {
    fn from(v: f64) -> Self {
        PrintfArg::Float(v)
    }
}
impl<'a> From<&'a str> for PrintfArg<'a> {
    fn from(v: &'a str) -> Self {
        PrintfArg::Str(v)
    }
}
impl From<char> for PrintfArg<'_> {
    fn from(v: char) -> Self {
        PrintfArg::Char(v)
    }
}

/// Errors from parsing a spec or formatting a value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PrintfError {
    /// The text is not one printf conversion spec.
    #[error("invalid printf spec {spec:?}: {reason}")]
    InvalidSpec {
        /// The text that was parsed.
        spec: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Width or precision exceeds [`MAX_WIDTH`].
    #[error("printf spec {spec:?}: {what} exceeds the limit of {max}")]
    TooLarge {
        /// The text that was parsed.
        spec: String,
        /// `"width"` or `"precision"`.
        what: &'static str,
        /// The limit ([`MAX_WIDTH`]).
        max: usize,
    },
    /// The conversion cannot format this kind of argument.
    #[error("printf spec {spec} cannot format a {arg_type} argument")]
    TypeMismatch {
        /// The spec, rebuilt as text (e.g. `%05d`).
        spec: String,
        /// The argument's type name ([`PrintfArg::type_name`]).
        arg_type: &'static str,
    },
    /// `%c` was given an integer that is no Unicode scalar value, or a string
    /// that is not exactly one character long.
    #[error("printf spec {spec} cannot format {value} as a character")]
    InvalidChar {
        /// The spec, rebuilt as text.
        spec: String,
        /// The offending value, as text.
        value: String,
    },
}

/// The flags of a spec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    /// `-`: left-justify within the width.
    pub left: bool,
    /// `+`: always print a sign for signed conversions.
    pub plus: bool,
    /// space: print a space where a `+` would go.
    pub space: bool,
    /// `0`: pad numbers with zeros.
    pub zero: bool,
    /// `#`: alternate form (`0x` prefix, kept decimal point, ...).
    pub alt: bool,
}

/// The conversion letter of a spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Conversion {
    /// `d`: signed decimal.
    D,
    /// `i`: signed decimal (same as `d`).
    I,
    /// `u`: unsigned decimal.
    U,
    /// `o`: unsigned octal.
    O,
    /// `x`: unsigned hexadecimal, lowercase.
    X,
    /// `X`: unsigned hexadecimal, uppercase.
    UpperX,
    /// `e`: scientific notation.
    E,
    /// `E`: scientific notation, uppercase.
    UpperE,
    /// `f`: fixed-point notation.
    F,
    /// `F`: fixed-point notation, uppercase `INF`/`NAN`.
    UpperF,
    /// `g`: shortest of `e` and `f`.
    G,
    /// `G`: shortest of `E` and `F`.
    UpperG,
    /// `s`: string.
    S,
    /// `c`: character.
    C,
}

impl Conversion {
    /// The conversion for a letter, if it is one.
    pub fn from_char(c: char) -> Option<Conversion> {
        Some(match c {
            'd' => Conversion::D,
            'i' => Conversion::I,
            'u' => Conversion::U,
            'o' => Conversion::O,
            'x' => Conversion::X,
            'X' => Conversion::UpperX,
            'e' => Conversion::E,
            'E' => Conversion::UpperE,
            'f' => Conversion::F,
            'F' => Conversion::UpperF,
            'g' => Conversion::G,
            'G' => Conversion::UpperG,
            's' => Conversion::S,
            'c' => Conversion::C,
            _ => return None,
        })
    }

    /// The conversion's letter.
    pub fn as_char(self) -> char {
        match self {
            Conversion::D => 'd',
            Conversion::I => 'i',
            Conversion::U => 'u',
            Conversion::O => 'o',
            Conversion::X => 'x',
            Conversion::UpperX => 'X',
            Conversion::E => 'e',
            Conversion::UpperE => 'E',
            Conversion::F => 'f',
            Conversion::UpperF => 'F',
            Conversion::G => 'g',
            Conversion::UpperG => 'G',
            Conversion::S => 's',
            Conversion::C => 'c',
        }
    }

    /// True for `d i u o x X`.
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            Conversion::D
                | Conversion::I
                | Conversion::U
                | Conversion::O
                | Conversion::X
                | Conversion::UpperX
        )
    }

    /// True for `e E f F g G`.
    pub fn is_float(self) -> bool {
        matches!(
            self,
            Conversion::E
                | Conversion::UpperE
                | Conversion::F
                | Conversion::UpperF
                | Conversion::G
                | Conversion::UpperG
        )
    }

    fn is_upper(self) -> bool {
        matches!(
            self,
            Conversion::UpperX | Conversion::UpperE | Conversion::UpperF | Conversion::UpperG
        )
    }
}

/// A parsed printf conversion spec such as `%-08.3f`.
///
/// Parse once with [`FormatSpec::parse`], then format many values with
/// [`FormatSpec::format`] or [`FormatSpec::format_into`]. `Display` rebuilds
/// the spec's text (without any length modifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FormatSpec {
    /// The flags.
    pub flags: Flags,
    /// The minimum field width, if given.
    pub width: Option<usize>,
    /// The precision, if given.
    pub precision: Option<usize>,
    /// The conversion.
    pub conversion: Conversion,
}

impl FormatSpec {
    /// Parses exactly one conversion spec, e.g. `"%05.2f"`.
    ///
    /// ```
    /// use daf_base::printf::{Conversion, FormatSpec};
    /// let s = FormatSpec::parse("%-8.3e").unwrap();
    /// assert!(s.flags.left);
    /// assert_eq!((s.width, s.precision, s.conversion), (Some(8), Some(3), Conversion::E));
    /// assert!(FormatSpec::parse("%q").is_err());
    /// ```
    pub fn parse(spec: &str) -> Result<FormatSpec, PrintfError> {
        let invalid = |reason| PrintfError::InvalidSpec {
            spec: spec.to_string(),
            reason,
        };
        let b = spec.as_bytes();
        if b.first() != Some(&b'%') {
            return Err(invalid("a spec starts with '%'"));
        }
        let mut i = 1;
        let mut flags = Flags::default();
        while let Some(&c) = b.get(i) {
            match c {
                b'-' => flags.left = true,
                b'+' => flags.plus = true,
                b' ' => flags.space = true,
                b'0' => flags.zero = true,
                b'#' => flags.alt = true,
                _ => break,
            }
            i += 1;
        }
        let number = |i: &mut usize, what: &'static str| -> Result<Option<usize>, PrintfError> {
            let start = *i;
            let mut n: usize = 0;
            while let Some(&c) = b.get(*i) {
                if !c.is_ascii_digit() {
                    break;
                }
                n = n * 10 + usize::from(c - b'0');
                if n > MAX_WIDTH {
                    return Err(PrintfError::TooLarge {
                        spec: spec.to_string(),
                        what,
                        max: MAX_WIDTH,
                    });
                }
                *i += 1;
            }
            Ok((*i > start).then_some(n))
        };
        if b.get(i) == Some(&b'*') {
            return Err(invalid("'*' width is not supported"));
        }
        let width = number(&mut i, "width")?;
        let mut precision = None;
        if b.get(i) == Some(&b'.') {
            i += 1;
            if b.get(i) == Some(&b'*') {
                return Err(invalid("'*' precision is not supported"));
            }
            precision = Some(number(&mut i, "precision")?.unwrap_or(0));
        }
        // Length modifiers: accepted, ignored.
        while let Some(&c) = b.get(i) {
            if matches!(c, b'h' | b'l' | b'L' | b'q' | b'j' | b'z' | b't') {
                i += 1;
            } else {
                break;
            }
        }
        let conv = match b.get(i) {
            None => return Err(invalid("missing conversion letter")),
            Some(&c) => Conversion::from_char(char::from(c)).ok_or_else(|| {
                invalid("unknown conversion letter (expected one of diuoxXeEfFgGsc)")
            })?,
        };
        if i + 1 != b.len() {
            return Err(invalid("text after the conversion letter"));
        }
        Ok(FormatSpec {
            flags,
            width,
            precision,
            conversion: conv,
        })
    }

    /// A spec with no flags, width or precision.
    pub fn plain(conversion: Conversion) -> FormatSpec {
        FormatSpec {
            flags: Flags::default(),
            width: None,
            precision: None,
            conversion,
        }
    }

    /// Formats one value into a new string.
    pub fn format(&self, arg: PrintfArg<'_>) -> Result<String, PrintfError> {
        let mut out = String::new();
        self.format_into(&mut out, arg)?;
        Ok(out)
    }

    /// Formats one value, appending to `out`. On error `out` is unchanged.
    pub fn format_into(&self, out: &mut String, arg: PrintfArg<'_>) -> Result<(), PrintfError> {
        let conv = self.conversion;
        if conv.is_integer() {
            let (neg, mag) = match (arg, conv) {
                (PrintfArg::Int(v), Conversion::D | Conversion::I) => (v < 0, v.unsigned_abs()),
                (PrintfArg::Int(v), _) => (false, v as u64),
                (PrintfArg::UInt(v), _) => (false, v),
                _ => return Err(self.mismatch(&arg)),
            };
            self.format_int(out, neg, mag);
            Ok(())
        } else if conv.is_float() {
            let v = match arg {
                PrintfArg::Float(v) => v,
                PrintfArg::Int(v) => v as f64,
                PrintfArg::UInt(v) => v as f64,
                _ => return Err(self.mismatch(&arg)),
            };
            self.format_float(out, v);
            Ok(())
        } else if conv == Conversion::S {
            let mut buf = [0u8; 24];
            let text: &str = match arg {
                PrintfArg::Str(s) => s,
                PrintfArg::Char(c) => c.encode_utf8(&mut buf),
                PrintfArg::Int(v) => write_decimal(&mut buf, v.unsigned_abs(), v < 0),
                PrintfArg::UInt(v) => write_decimal(&mut buf, v, false),
                PrintfArg::Float(_) => return Err(self.mismatch(&arg)),
            };
            let text = match self.precision {
                Some(p) => match text.char_indices().nth(p) {
                    Some((cut, _)) => &text[..cut],
                    None => text,
                },
                None => text,
            };
            self.pad_text(out, text);
            Ok(())
        } else {
            let c = match arg {
                PrintfArg::Char(c) => c,
                PrintfArg::Str(s) => {
                    let mut it = s.chars();
                    match (it.next(), it.next()) {
                        (Some(c), None) => c,
                        _ => return Err(self.bad_char(format!("{s:?}"))),
                    }
                }
                PrintfArg::Int(v) => u32::try_from(v)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| self.bad_char(v.to_string()))?,
                PrintfArg::UInt(v) => u32::try_from(v)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| self.bad_char(v.to_string()))?,
                PrintfArg::Float(_) => return Err(self.mismatch(&arg)),
            };
            let mut buf = [0u8; 4];
            self.pad_text(out, c.encode_utf8(&mut buf));
            Ok(())
        }
    }

    fn mismatch(&self, arg: &PrintfArg<'_>) -> PrintfError {
        PrintfError::TypeMismatch {
            spec: self.to_string(),
            arg_type: arg.type_name(),
        }
    }

    fn bad_char(&self, value: String) -> PrintfError {
        PrintfError::InvalidChar {
            spec: self.to_string(),
            value,
        }
    }

    /// Pads `text` with spaces to the width (strings and characters).
    fn pad_text(&self, out: &mut String, text: &str) {
        let len = text.chars().count();
        let pad = self.width.unwrap_or(0).saturating_sub(len);
        if self.flags.left {
            out.push_str(text);
            push_n(out, ' ', pad);
        } else {
            push_n(out, ' ', pad);
            out.push_str(text);
        }
    }

    /// Emits `prefix` + `body` padded to the width; `zero_ok` allows zero
    /// padding between prefix and body.
    fn emit(&self, out: &mut String, prefix: &str, body: &str, zero_ok: bool) {
        let len = prefix.len() + body.len();
        let pad = self.width.unwrap_or(0).saturating_sub(len);
        if self.flags.left {
            out.push_str(prefix);
            out.push_str(body);
            push_n(out, ' ', pad);
        } else if zero_ok && self.flags.zero {
            out.push_str(prefix);
            push_n(out, '0', pad);
            out.push_str(body);
        } else {
            push_n(out, ' ', pad);
            out.push_str(prefix);
            out.push_str(body);
        }
    }

    fn sign_prefix(&self, neg: bool) -> &'static str {
        if neg {
            "-"
        } else if self.flags.plus {
            "+"
        } else if self.flags.space {
            " "
        } else {
            ""
        }
    }

    fn format_int(&self, out: &mut String, neg: bool, mag: u64) {
        let conv = self.conversion;
        // Digits, right-aligned in a buffer large enough for octal u64 (22).
        let mut buf = [0u8; 24];
        let mut pos = buf.len();
        let (base, digits): (u64, &[u8; 16]) = match conv {
            Conversion::O => (8, b"0123456789abcdef"),
            Conversion::X => (16, b"0123456789abcdef"),
            Conversion::UpperX => (16, b"0123456789ABCDEF"),
            _ => (10, b"0123456789abcdef"),
        };
        // One loop per base so each divides by a constant (cheap).
        let mut m = mag;
        match base {
            10 => {
                while m != 0 {
                    pos -= 1;
                    buf[pos] = b'0' + (m % 10) as u8;
                    m /= 10;
                }
            }
            16 => {
                while m != 0 {
                    pos -= 1;
                    buf[pos] = digits[(m & 15) as usize];
                    m >>= 4;
                }
            }
            _ => {
                while m != 0 {
                    pos -= 1;
                    buf[pos] = digits[(m & 7) as usize];
                    m >>= 3;
                }
            }
        }
        if mag == 0 && self.precision != Some(0) {
            pos -= 1;
            buf[pos] = b'0';
        }
        let ndigits = buf.len() - pos;
        // Digits are ASCII, so this cannot fail; an empty string is the safe fallback.
        let digit_str = std::str::from_utf8(&buf[pos..]).unwrap_or("");
        let mut zeros = self.precision.unwrap_or(0).saturating_sub(ndigits);
        if conv == Conversion::O && self.flags.alt && zeros == 0 && !digit_str.starts_with('0') {
            zeros = 1;
        }
        let prefix = match conv {
            Conversion::D | Conversion::I => self.sign_prefix(neg),
            Conversion::X if self.flags.alt && mag != 0 => "0x",
            Conversion::UpperX if self.flags.alt && mag != 0 => "0X",
            _ => "",
        };
        let len = prefix.len() + zeros + ndigits;
        let pad = self.width.unwrap_or(0).saturating_sub(len);
        out.reserve(len + pad);
        if self.flags.left {
            out.push_str(prefix);
            push_n(out, '0', zeros);
            out.push_str(digit_str);
            push_n(out, ' ', pad);
        } else if self.flags.zero && self.precision.is_none() {
            out.push_str(prefix);
            push_n(out, '0', zeros + pad);
            out.push_str(digit_str);
        } else {
            push_n(out, ' ', pad);
            out.push_str(prefix);
            push_n(out, '0', zeros);
            out.push_str(digit_str);
        }
    }

    fn format_float(&self, out: &mut String, v: f64) {
        let conv = self.conversion;
        let upper = conv.is_upper();
        let prefix = self.sign_prefix(v.is_sign_negative());
        if !v.is_finite() {
            let body = match (v.is_nan(), upper) {
                (true, false) => "nan",
                (true, true) => "NAN",
                (false, false) => "inf",
                (false, true) => "INF",
            };
            self.emit(out, prefix, body, false);
            return;
        }
        let a = v.abs();
        let p = self.precision.unwrap_or(6);
        let alt = self.flags.alt;
        let mut body = String::new();
        match conv {
            Conversion::F | Conversion::UpperF => {
                let _ = write!(body, "{a:.p$}");
                if alt && p == 0 {
                    body.push('.');
                }
            }
            Conversion::E | Conversion::UpperE => {
                let _ = write!(body, "{a:.p$e}");
                fix_exponent(&mut body, alt && p == 0, upper);
            }
            _ => {
                // %g: P significant digits; choose the style by the exponent
                // of the value rounded to P digits.
                let sig = if p == 0 { 1 } else { p };
                let _ = write!(body, "{:.*e}", sig - 1, a);
                let x = exponent_of(&body);
                if x >= -4 && x < sig as i64 {
                    body.clear();
                    // 0 <= sig - 1 - x <= sig + 3, never negative here.
                    let fp = usize::try_from(sig as i64 - 1 - x).unwrap_or(0);
                    let _ = write!(body, "{a:.fp$}");
                    if alt {
                        if !body.contains('.') {
                            body.push('.');
                        }
                    } else {
                        strip_fraction_zeros(&mut body);
                    }
                } else {
                    if !alt {
                        if let Some(epos) = body.find('e') {
                            let mut mant = body[..epos].to_string();
                            strip_fraction_zeros(&mut mant);
                            body.replace_range(..epos, &mant);
                        }
                    }
                    fix_exponent(&mut body, alt && sig == 1, upper);
                }
            }
        }
        self.emit(out, prefix, &body, true);
    }
}

/// Rust's `1.5e3` → C's `1.5e+03` (and `E` when `upper`); `add_point` turns
/// `1e+03` into `1.e+03` (the `#` flag with no fraction digits).
fn fix_exponent(s: &mut String, add_point: bool, upper: bool) {
    let Some(epos) = s.find('e') else { return };
    let exp = exponent_of(s);
    s.truncate(epos);
    if add_point {
        s.push('.');
    }
    s.push(if upper { 'E' } else { 'e' });
    s.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        s.push('0');
    }
    let _ = write!(s, "{e}");
}

/// The exponent of Rust's `{:e}` output (`"1.5e-3"` → -3).
fn exponent_of(s: &str) -> i64 {
    s.find('e')
        .and_then(|i| s[i + 1..].parse::<i64>().ok())
        .unwrap_or(0)
}

/// Removes trailing zeros of a fraction, and the point if nothing follows it.
fn strip_fraction_zeros(s: &mut String) {
    if s.contains('.') {
        let keep = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(keep);
    }
}

fn push_n(out: &mut String, c: char, n: usize) {
    out.extend(std::iter::repeat_n(c, n));
}

/// Writes `mag` in decimal (with a leading `-` when `neg`) at the end of `buf`.
fn write_decimal(buf: &mut [u8; 24], mag: u64, neg: bool) -> &str {
    let mut pos = buf.len();
    let mut m = mag;
    loop {
        pos -= 1;
        buf[pos] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if neg {
        pos -= 1;
        buf[pos] = b'-';
    }
    std::str::from_utf8(&buf[pos..]).unwrap_or("")
}

impl fmt::Display for FormatSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('%')?;
        for (on, c) in [
            (self.flags.left, '-'),
            (self.flags.plus, '+'),
            (self.flags.space, ' '),
            (self.flags.zero, '0'),
            (self.flags.alt, '#'),
        ] {
            if on {
                f.write_char(c)?;
            }
        }
        if let Some(w) = self.width {
            write!(f, "{w}")?;
        }
        if let Some(p) = self.precision {
            write!(f, ".{p}")?;
        }
        f.write_char(self.conversion.as_char())
    }
}

/// Formats one value with one spec: `sprintf("%05.2f", PrintfArg::Float(2.71928))`
/// gives `"02.72"`.
pub fn sprintf(spec: &str, arg: PrintfArg<'_>) -> Result<String, PrintfError> {
    FormatSpec::parse(spec)?.format(arg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(spec: &str, arg: PrintfArg<'_>) -> String {
        sprintf(spec, arg).unwrap()
    }

    #[test]
    fn integers() {
        assert_eq!(f("%d", PrintfArg::Int(-42)), "-42");
        assert_eq!(f("%05d", PrintfArg::Int(-42)), "-0042");
        assert_eq!(f("%-5d", PrintfArg::Int(42)), "42   ");
        assert_eq!(f("%+d", PrintfArg::Int(42)), "+42");
        assert_eq!(f("% d", PrintfArg::Int(42)), " 42");
        assert_eq!(f("%.3d", PrintfArg::Int(7)), "007");
        assert_eq!(f("%08.3d", PrintfArg::Int(7)), "     007");
        assert_eq!(f("%.0d", PrintfArg::Int(0)), "");
        assert_eq!(f("%#o", PrintfArg::Int(8)), "010");
        assert_eq!(f("%#.0o", PrintfArg::Int(0)), "0");
        assert_eq!(f("%#x", PrintfArg::Int(255)), "0xff");
        assert_eq!(f("%#X", PrintfArg::Int(255)), "0XFF");
        assert_eq!(f("%#x", PrintfArg::Int(0)), "0");
        assert_eq!(f("%#010x", PrintfArg::Int(255)), "0x000000ff");
        assert_eq!(f("%x", PrintfArg::Int(-1)), "ffffffffffffffff");
        assert_eq!(f("%+u", PrintfArg::Int(5)), "5");
        assert_eq!(f("%d", PrintfArg::UInt(u64::MAX)), "18446744073709551615");
        assert_eq!(f("%d", PrintfArg::Int(i64::MIN)), "-9223372036854775808");
        assert_eq!(f("%lld", PrintfArg::Int(3)), "3");
    }

    #[test]
    fn floats() {
        assert_eq!(f("%f", PrintfArg::Float(1.5)), "1.500000");
        assert_eq!(f("%.2f", PrintfArg::Float(0.125)), "0.12");
        assert_eq!(f("%.0f", PrintfArg::Float(0.5)), "0");
        assert_eq!(f("%#.0f", PrintfArg::Float(2.0)), "2.");
        assert_eq!(f("%e", PrintfArg::Float(12345.678)), "1.234568e+04");
        assert_eq!(f("%E", PrintfArg::Float(1e-300)), "1.000000E-300");
        assert_eq!(f("%#.0e", PrintfArg::Float(2.0)), "2.e+00");
        assert_eq!(f("%g", PrintfArg::Float(100000.0)), "100000");
        assert_eq!(f("%g", PrintfArg::Float(1000000.0)), "1e+06");
        assert_eq!(f("%g", PrintfArg::Float(0.0001)), "0.0001");
        assert_eq!(f("%g", PrintfArg::Float(0.00001)), "1e-05");
        assert_eq!(f("%#g", PrintfArg::Float(1.0)), "1.00000");
        assert_eq!(f("%#5.0g", PrintfArg::Float(3.0)), "   3.");
        assert_eq!(f("%#.5g", PrintfArg::Float(99999.95)), "1.0000e+05");
        assert_eq!(f("%#.5g", PrintfArg::Float(9.999995)), "10.000");
        assert_eq!(f("%G", PrintfArg::Float(1.5e-10)), "1.5E-10");
        assert_eq!(f("%05f", PrintfArg::Float(f64::NEG_INFINITY)), " -inf");
        assert_eq!(f("%F", PrintfArg::Float(f64::NAN)), "NAN");
        assert_eq!(f("%+.3e", PrintfArg::Float(-0.0)), "-0.000e+00");
        assert_eq!(f("%08.2f", PrintfArg::Float(-2.71928)), "-0002.72");
        assert_eq!(f("%.2f", PrintfArg::Int(3)), "3.00");
    }

    #[test]
    fn strings_and_chars() {
        assert_eq!(f("%s", PrintfArg::Str("abc")), "abc");
        assert_eq!(f("%5s", PrintfArg::Str("ab")), "   ab");
        assert_eq!(f("%-5s", PrintfArg::Str("ab")), "ab   ");
        assert_eq!(f("%.2s", PrintfArg::Str("abc")), "ab");
        assert_eq!(f("%05s", PrintfArg::Str("ab")), "   ab");
        assert_eq!(f("%s", PrintfArg::Int(-12)), "-12");
        assert_eq!(f("%3c", PrintfArg::Char('q')), "  q");
        assert_eq!(f("%c", PrintfArg::Int(65)), "A");
        assert_eq!(f("%c", PrintfArg::Str("é")), "é");
    }

    #[test]
    fn errors() {
        assert!(matches!(
            sprintf("%d", PrintfArg::Float(1.0)),
            Err(PrintfError::TypeMismatch { ref spec, arg_type: "float" }) if spec == "%d"
        ));
        assert!(matches!(
            sprintf("%05.2f", PrintfArg::Str("x")),
            Err(PrintfError::TypeMismatch { ref spec, arg_type: "string" }) if spec == "%05.2f"
        ));
        assert!(matches!(
            sprintf("%s", PrintfArg::Float(1.0)),
            Err(PrintfError::TypeMismatch { .. })
        ));
        assert!(matches!(
            sprintf("%c", PrintfArg::Int(-1)),
            Err(PrintfError::InvalidChar { .. })
        ));
        assert!(matches!(
            sprintf("%c", PrintfArg::Str("ab")),
            Err(PrintfError::InvalidChar { .. })
        ));
        for bad in ["", "d", "%", "%5", "%y", "%dd", "%*d", "%.*d", "x%d"] {
            assert!(
                matches!(FormatSpec::parse(bad), Err(PrintfError::InvalidSpec { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            FormatSpec::parse("%4097d"),
            Err(PrintfError::TooLarge { what: "width", .. })
        ));
        assert!(matches!(
            FormatSpec::parse("%.99999999999999999999999f"),
            Err(PrintfError::TooLarge {
                what: "precision",
                ..
            })
        ));
        assert!(FormatSpec::parse("%4096.4096f").is_ok());
        let e = sprintf("%x", PrintfArg::Str("a")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "printf spec %x cannot format a string argument"
        );
    }

    #[test]
    fn display_round_trips() {
        for s in ["%d", "%-+ 0#12.5e", "%.0s", "%X", "%G"] {
            assert_eq!(FormatSpec::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(FormatSpec::parse("%lld").unwrap().to_string(), "%d");
    }

    #[test]
    fn error_leaves_output_unchanged() {
        let spec = FormatSpec::parse("%d").unwrap();
        let mut out = String::from("keep");
        assert!(spec.format_into(&mut out, PrintfArg::Str("x")).is_err());
        assert_eq!(out, "keep");
    }
}
