//! [`IArchive`]: the archive reader, and [`Exports`] for polymorphic pointers.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use super::error::ArchiveError;
use super::text::xml_unescape;
use super::{
    ArchiveKind, BoostSerialize, ClassInfo, Level, Result, MAX_READ_VERSION, MIN_READ_VERSION,
    SIGNATURE,
};

type PolyLoader<B> =
    Arc<dyn for<'x, 'y> Fn(&'x mut IArchive<'y>, u32) -> Result<Arc<B>> + Send + Sync>;

struct ExportEntry {
    type_id: TypeId,
    loader: Arc<dyn Any + Send + Sync>,
}

/// The classes a reader can create from polymorphic pointers, by export name
/// (C++'s `BOOST_CLASS_EXPORT_GUID`). A value passed to the reader, not a
/// global registry.
#[derive(Default, Clone)]
pub struct Exports {
    map: HashMap<String, Arc<ExportEntry>>,
}

impl Exports {
    /// No exports.
    pub fn new() -> Exports {
        Exports::default()
    }

    /// Registers concrete class `T` under `export`, readable through pointers
    /// to base `B` (`upcast` turns the loaded object into an `Arc<B>`).
    pub fn register<B: ?Sized + 'static, T: BoostSerialize>(
        &mut self,
        export: &str,
        upcast: fn(T) -> Arc<B>,
    ) {
        let loader: PolyLoader<B> = Arc::new(move |ar, version| Ok(upcast(T::load(ar, version)?)));
        self.map.insert(
            export.to_string(),
            Arc::new(ExportEntry {
                type_id: TypeId::of::<T>(),
                loader: Arc::new(loader),
            }),
        );
    }

    fn known(&self) -> String {
        let mut names: Vec<&str> = self.map.keys().map(String::as_str).collect();
        names.sort_unstable();
        names.join(", ")
    }
}

impl std::fmt::Debug for Exports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Exports({})", self.known())
    }
}

#[derive(Clone)]
struct RClass {
    type_id: Option<TypeId>,
    export: Option<Arc<ExportEntry>>,
    /// Whether the preamble (tracking, version) was read; a pointer's
    /// declared class is registered before its preamble appears.
    initialized: bool,
    tracked: bool,
    version: u32,
}

/// Reads a Boost archive (binary, text or XML) from bytes.
///
/// Every length and count is checked against the bytes left before anything
/// is allocated; malformed input is an [`ArchiveError`], never a panic.
pub struct IArchive<'a> {
    data: &'a [u8],
    pos: usize,
    kind: ArchiveKind,
    version: u16,
    header: bool,
    classes: Vec<RClass>,
    by_type: TypeTable,
    objects: Vec<Option<Box<dyn Any>>>,
    exports: Exports,
    attrs: Vec<(String, String)>,
    xml: Vec<(String, bool)>,
}

/// Limits the nesting of XML elements and classes (stack safety on hostile input).
const MAX_DEPTH: usize = 256;

impl<'a> IArchive<'a> {
    /// Opens an archive with a header; the kind is detected.
    pub fn new(data: &'a [u8]) -> Result<IArchive<'a>> {
        let kind = ArchiveKind::detect(data).ok_or_else(|| ArchiveError::Malformed {
            offset: 0,
            message: "not a Boost archive (no binary, text or XML header)".into(),
        })?;
        Self::open(data, kind, true, MAX_READ_VERSION)
    }

    /// Opens an archive of a known kind; `header: false` reads a `no_header`
    /// archive, assumed to be of library `version`.
    pub fn open(
        data: &'a [u8],
        kind: ArchiveKind,
        header: bool,
        version: u16,
    ) -> Result<IArchive<'a>> {
        let mut ar = IArchive {
            data,
            pos: 0,
            kind,
            version,
            header,
            classes: Vec::new(),
            by_type: TypeTable::default(),
            objects: Vec::new(),
            exports: Exports::default(),
            attrs: Vec::new(),
            xml: Vec::new(),
        };
        if header {
            ar.read_header()?;
        }
        Ok(ar)
    }

    /// Reads a whole archive with a header (kind detected): `body` reads the
    /// top-level values.
    pub fn from_bytes<R>(
        data: &'a [u8],
        body: impl FnOnce(&mut IArchive<'a>) -> Result<R>,
    ) -> Result<R> {
        let mut ar = IArchive::new(data)?;
        let r = body(&mut ar)?;
        ar.finish()?;
        Ok(r)
    }

    /// Sets the export names polymorphic pointers may name.
    pub fn set_exports(&mut self, exports: Exports) {
        self.exports = exports;
    }

    /// The archive kind.
    pub fn kind(&self) -> ArchiveKind {
        self.kind
    }

    /// The library version of the archive.
    pub fn library_version(&self) -> u16 {
        self.version
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Checks the end of the archive: the XML closing tag; nothing but
    /// whitespace after the last value of text and XML archives.
    pub fn finish(mut self) -> Result<()> {
        if self.kind == ArchiveKind::Xml && self.header {
            self.skip_ws();
            self.expect_bytes(b"</boost_serialization>")?;
        }
        if self.kind != ArchiveKind::Binary {
            self.skip_ws();
        }
        if self.pos != self.data.len() {
            return Err(self.malformed(format!(
                "{} unexpected bytes after the last value",
                self.remaining()
            )));
        }
        Ok(())
    }

    fn malformed(&self, message: impl Into<String>) -> ArchiveError {
        ArchiveError::Malformed {
            offset: self.pos,
            message: message.into(),
        }
    }

    // ---- raw access ---------------------------------------------------------

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(ArchiveError::Truncated {
                offset: self.pos,
                what: what.to_string(),
            });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn take_arr<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Checks that `n` items of at least `min_bytes` each fit in the bytes left.
    pub fn check_count(&self, n: usize, min_bytes: usize, what: &str) -> Result<()> {
        let need = (n as u128) * (min_bytes as u128);
        if need > self.remaining() as u128 {
            return Err(ArchiveError::LengthTooLarge {
                what: what.to_string(),
                len: n as u64,
                offset: self.pos,
                remaining: self.remaining(),
            });
        }
        Ok(())
    }

    fn skip_ws(&mut self) {
        while self.pos < self.data.len() && self.data[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn expect_bytes(&mut self, b: &[u8]) -> Result<()> {
        if self.data[self.pos..].starts_with(b) {
            self.pos += b.len();
            Ok(())
        } else if self.remaining() < b.len() && b.starts_with(&self.data[self.pos..]) {
            Err(ArchiveError::Truncated {
                offset: self.pos,
                what: String::from_utf8_lossy(b).into_owned(),
            })
        } else {
            Err(self.malformed(format!("expected {:?}", String::from_utf8_lossy(b))))
        }
    }

    // ---- text tokens ----------------------------------------------------------

    fn token(&mut self, what: &str) -> Result<&'a [u8]> {
        let data: &'a [u8] = self.data;
        let rest = &data[self.pos.min(data.len())..];
        let skip = rest
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let start = self.pos + skip;
        let rest = &rest[skip..];
        let len = rest
            .iter()
            .position(|b| b.is_ascii_whitespace())
            .unwrap_or(rest.len());
        self.pos = start + len;
        if len == 0 {
            return Err(ArchiveError::Truncated {
                offset: start,
                what: what.to_string(),
            });
        }
        Ok(&rest[..len])
    }

    fn parse_num<T: std::str::FromStr + TryFrom<i128>>(&self, tok: &[u8], what: &str) -> Result<T> {
        // Fast path for the plain decimal integers C++ writes: no UTF-8
        // check, no trimming. Anything else (a sign other than a leading
        // `-`, `-0`, out of range, over 19 digits) takes the exact path
        // below, which gives the same values and errors as `str::parse`.
        if let Some(v) = parse_ascii_int(tok) {
            if let Ok(v) = T::try_from(v) {
                return Ok(v);
            }
        }
        std::str::from_utf8(tok)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                self.malformed(format!(
                    "{what}: cannot parse {:?}",
                    String::from_utf8_lossy(tok)
                ))
            })
    }

    // ---- XML structure -------------------------------------------------------

    fn xml_name(&mut self) -> &'a [u8] {
        let start = self.pos;
        while self.pos < self.data.len() {
            let c = self.data[self.pos];
            if c.is_ascii_whitespace() || c == b'>' || c == b'/' || c == b'=' {
                break;
            }
            self.pos += 1;
        }
        &self.data[start..self.pos]
    }

    fn xml_open(&mut self, name: &str) -> Result<()> {
        if self.xml.len() >= MAX_DEPTH {
            return Err(self.malformed("XML nesting too deep"));
        }
        self.skip_ws();
        self.expect_bytes(b"<")?;
        if self.data.get(self.pos) == Some(&b'/') {
            return Err(self.malformed(format!("expected element <{name}>, found a closing tag")));
        }
        let found = self.xml_name();
        if found != name.as_bytes() {
            let found = String::from_utf8_lossy(found).into_owned();
            return Err(self.malformed(format!("expected element <{name}>, found <{found}>")));
        }
        self.attrs.clear();
        loop {
            self.skip_ws();
            match self.data.get(self.pos) {
                None => {
                    return Err(ArchiveError::Truncated {
                        offset: self.pos,
                        what: format!("start tag <{name}>"),
                    })
                }
                Some(b'>') => {
                    self.pos += 1;
                    self.xml.push((name.to_string(), false));
                    return Ok(());
                }
                Some(b'/') => {
                    self.pos += 1;
                    self.expect_bytes(b">")?;
                    self.xml.push((name.to_string(), true));
                    return Ok(());
                }
                Some(_) => {
                    let key = String::from_utf8_lossy(self.xml_name()).into_owned();
                    if key.is_empty() {
                        return Err(self.malformed(format!("bad attribute in <{name}>")));
                    }
                    self.skip_ws();
                    self.expect_bytes(b"=")?;
                    self.skip_ws();
                    let quote =
                        *self
                            .data
                            .get(self.pos)
                            .ok_or_else(|| ArchiveError::Truncated {
                                offset: self.pos,
                                what: "attribute value".into(),
                            })?;
                    if quote != b'"' && quote != b'\'' {
                        return Err(self.malformed("attribute value not quoted"));
                    }
                    self.pos += 1;
                    let len = self.data[self.pos..]
                        .iter()
                        .position(|&c| c == quote)
                        .ok_or_else(|| ArchiveError::Truncated {
                            offset: self.pos,
                            what: "attribute value".into(),
                        })?;
                    let raw = &self.data[self.pos..self.pos + len];
                    self.pos += len + 1;
                    let val = xml_unescape(raw).map_err(|m| self.malformed(m))?;
                    self.attrs
                        .push((key, String::from_utf8_lossy(&val).into_owned()));
                }
            }
        }
    }

    fn xml_close(&mut self) -> Result<()> {
        let (name, self_closed) = self
            .xml
            .pop()
            .ok_or_else(|| self.malformed("unbalanced XML"))?;
        if self_closed {
            return Ok(());
        }
        self.skip_ws();
        self.expect_bytes(b"</")?;
        let found = self.xml_name();
        if found != name.as_bytes() {
            let found = String::from_utf8_lossy(found).into_owned();
            return Err(self.malformed(format!("expected </{name}>, found </{found}>")));
        }
        self.skip_ws();
        self.expect_bytes(b">")
    }

    fn xml_text(&mut self) -> Result<Vec<u8>> {
        match self.xml.last() {
            Some((_, true)) => return Ok(Vec::new()),
            Some(_) => {}
            None => return Err(self.malformed("XML value outside an element")),
        }
        let len = self.data[self.pos..]
            .iter()
            .position(|&c| c == b'<')
            .ok_or_else(|| ArchiveError::Truncated {
                offset: self.pos,
                what: "element text".into(),
            })?;
        let raw = &self.data[self.pos..self.pos + len];
        let start = self.pos;
        self.pos += len;
        xml_unescape(raw).map_err(|m| ArchiveError::Malformed {
            offset: start,
            message: m,
        })
    }

    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn attr_num<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>> {
        match self.attr(key) {
            None => Ok(None),
            Some(v) => {
                let v = v.strip_prefix('_').unwrap_or(v);
                v.parse()
                    .map(Some)
                    .map_err(|_| self.malformed(format!("bad {key} attribute {v:?}")))
            }
        }
    }

    fn xml_leaf_num<T: std::str::FromStr + TryFrom<i128>>(&mut self, name: &str) -> Result<T> {
        self.xml_open(name)?;
        let t = self.xml_text()?;
        let v = self.parse_num(&t, name)?;
        self.xml_close()?;
        Ok(v)
    }

    // ---- header --------------------------------------------------------------

    fn check_version(&self, v: u16) -> Result<()> {
        if v > MAX_READ_VERSION {
            return Err(ArchiveError::UnsupportedVersion {
                found: v,
                supported: MAX_READ_VERSION,
            });
        }
        if v < MIN_READ_VERSION {
            return Err(ArchiveError::VersionNotSupported {
                found: v,
                supported: format!("{MIN_READ_VERSION} to {MAX_READ_VERSION}"),
            });
        }
        Ok(())
    }

    /// The binary header's library version. Boost 1.45 and later (8 on)
    /// write a little-endian `u16`; older ones wrote one byte for 3 to 5,
    /// one byte and a zero for 6, and for 7 one byte, maybe followed by a
    /// zero (Boost's own reader skips a zero there, as done here).
    fn read_binary_library_version(&mut self) -> Result<u16> {
        let v = self.take(1, "library version")?[0] as u16;
        let zero_follows = self.data.get(self.pos) == Some(&0);
        match v {
            0..=5 => {}
            6 => {
                self.take(1, "library version")?;
            }
            7 => {
                if zero_follows {
                    self.pos += 1;
                }
            }
            _ => {
                let hi = self.take(1, "library version")?[0] as u16;
                return Ok(v | (hi << 8));
            }
        }
        Ok(v)
    }

    /// Whether collections carry an item_version after their count: not in
    /// library version 3 archives (Boost 1.34), in every later one.
    pub fn has_item_version(&self) -> bool {
        self.version > 3
    }

    fn read_header(&mut self) -> Result<()> {
        match self.kind {
            ArchiveKind::Binary => {
                let len = u64::from_le_bytes(self.take_arr("signature length")?);
                if len != SIGNATURE.len() as u64 {
                    return Err(self.malformed("not a Boost binary archive (bad signature length)"));
                }
                if self.take(SIGNATURE.len(), "signature")? != SIGNATURE.as_bytes() {
                    return Err(self.malformed("not a Boost binary archive (bad signature)"));
                }
                let v = self.read_binary_library_version()?;
                self.check_version(v)?;
                self.version = v;
                let sizes: [u8; 4] = self.take_arr("native sizes")?;
                if sizes != [4, 8, 4, 8] {
                    return Err(self.malformed(format!(
                        "incompatible native format: sizes of int/long/float/double are {sizes:?}, expected [4, 8, 4, 8]"
                    )));
                }
                if i32::from_le_bytes(self.take_arr("endianness probe")?) != 1 {
                    return Err(self.malformed("incompatible native format: endian setting"));
                }
            }
            ArchiveKind::Text => {
                let s = self.read_string_raw()?;
                if s != SIGNATURE.as_bytes() {
                    return Err(self.malformed("not a Boost text archive (bad signature)"));
                }
                let tok = self.token("library version")?;
                let v: u16 = self.parse_num(tok, "library version")?;
                self.check_version(v)?;
                self.version = v;
            }
            ArchiveKind::Xml => {
                self.skip_ws();
                if self.data[self.pos..].starts_with(&[0xEF, 0xBB, 0xBF]) {
                    self.pos += 3;
                }
                self.skip_ws();
                if self.data[self.pos..].starts_with(b"<?") {
                    let end = find(&self.data[self.pos..], b"?>").ok_or_else(|| {
                        ArchiveError::Truncated {
                            offset: self.pos,
                            what: "XML declaration".into(),
                        }
                    })?;
                    self.pos += end + 2;
                }
                self.skip_ws();
                if self.data[self.pos..].starts_with(b"<!") {
                    let end = find(&self.data[self.pos..], b">").ok_or_else(|| {
                        ArchiveError::Truncated {
                            offset: self.pos,
                            what: "DOCTYPE".into(),
                        }
                    })?;
                    self.pos += end + 1;
                }
                self.xml_open("boost_serialization")?;
                self.xml.pop();
                if self.attr("signature") != Some(SIGNATURE) {
                    return Err(self.malformed("not a Boost XML archive (bad signature)"));
                }
                let v: u16 = self
                    .attr_num("version")?
                    .ok_or_else(|| self.malformed("XML archive without a version"))?;
                self.check_version(v)?;
                self.version = v;
                self.attrs.clear();
            }
        }
        Ok(())
    }

    // ---- primitives ----------------------------------------------------------

    /// Reads a boolean.
    pub fn read_bool(&mut self) -> Result<bool> {
        let v: u8 = match self.kind {
            ArchiveKind::Binary => self.take(1, "bool")?[0],
            ArchiveKind::Text => {
                let t = self.token("bool")?;
                self.parse_num(t, "bool")?
            }
            ArchiveKind::Xml => {
                let t = self.xml_text()?;
                self.parse_num(&t, "bool")?
            }
        };
        match v {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.malformed(format!("bool value {v} is neither 0 nor 1"))),
        }
    }

    pub(crate) fn read_int<T: std::str::FromStr + FromLe + TryFrom<i128>>(
        &mut self,
        what: &str,
    ) -> Result<T> {
        match self.kind {
            ArchiveKind::Binary => {
                let b = self.take(T::SIZE, what)?;
                Ok(T::from_le(b))
            }
            ArchiveKind::Text => {
                let t = self.token(what)?;
                self.parse_num(t, what)
            }
            ArchiveKind::Xml => {
                let t = self.xml_text()?;
                self.parse_num(&t, what)
            }
        }
    }

    fn parse_float<T: std::str::FromStr>(&self, t: &[u8], what: &str) -> Result<T> {
        // C++ writes nan/inf as "nan", "-nan", "inf", "-inf".
        let s = std::str::from_utf8(t).map_err(|_| self.malformed(format!("{what}: not UTF-8")))?;
        // Text tokens hold no whitespace; XML text may.
        let s = if self.kind == ArchiveKind::Text {
            s
        } else {
            s.trim()
        };
        let s = match s {
            "-nan" => "NaN",
            "nan" => "NaN",
            other => other,
        };
        s.parse()
            .map_err(|_| self.malformed(format!("{what}: cannot parse {s:?}")))
    }

    /// Reads a double.
    pub fn read_f64(&mut self) -> Result<f64> {
        match self.kind {
            ArchiveKind::Binary => Ok(f64::from_le_bytes(self.take_arr("double")?)),
            ArchiveKind::Text => {
                let t = self.token("double")?;
                self.parse_float(t, "double")
            }
            ArchiveKind::Xml => {
                let t = self.xml_text()?;
                self.parse_float(&t, "double")
            }
        }
    }

    /// Reads a float.
    pub fn read_f32(&mut self) -> Result<f32> {
        match self.kind {
            ArchiveKind::Binary => Ok(f32::from_le_bytes(self.take_arr("float")?)),
            ArchiveKind::Text => {
                let t = self.token("float")?;
                self.parse_float(t, "float")
            }
            ArchiveKind::Xml => {
                let t = self.xml_text()?;
                self.parse_float(&t, "float")
            }
        }
    }

    fn read_len(&mut self, what: &str) -> Result<usize> {
        let off = self.pos;
        let n: u64 = match self.kind {
            ArchiveKind::Binary => u64::from_le_bytes(self.take_arr(what)?),
            _ => {
                let t = self.token(what)?;
                self.parse_num(t, what)?
            }
        };
        if n > self.remaining() as u64 {
            return Err(ArchiveError::LengthTooLarge {
                what: what.to_string(),
                len: n,
                offset: off,
                remaining: self.remaining(),
            });
        }
        Ok(n as usize)
    }

    fn read_string_raw(&mut self) -> Result<&'a [u8]> {
        let n = self.read_len("string length")?;
        if self.kind == ArchiveKind::Text {
            // One separator character follows the length.
            if self.pos < self.data.len() {
                self.pos += 1;
            }
        }
        self.take(n, "string bytes")
    }

    /// Reads a `std::string` as bytes.
    pub fn read_string(&mut self) -> Result<Vec<u8>> {
        match self.kind {
            ArchiveKind::Xml => self.xml_text(),
            _ => Ok(self.read_string_raw()?.to_vec()),
        }
    }

    /// Reads `n` raw bytes (binary archives: the array optimisation); the
    /// count was already checked against the bytes left.
    pub(crate) fn raw_block(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        self.take(n, what)
    }

    /// Reads a collection count.
    pub fn read_count(&mut self) -> Result<usize> {
        let off = self.pos;
        let n: u64 = match self.kind {
            // Library versions 3 to 5 wrote an `unsigned int` count.
            ArchiveKind::Binary if self.version <= 5 => {
                u32::from_le_bytes(self.take_arr("collection count")?) as u64
            }
            ArchiveKind::Binary => u64::from_le_bytes(self.take_arr("collection count")?),
            ArchiveKind::Text => {
                let t = self.token("collection count")?;
                self.parse_num(t, "collection count")?
            }
            ArchiveKind::Xml => self.xml_leaf_num("count")?,
        };
        usize::try_from(n).map_err(|_| ArchiveError::LengthTooLarge {
            what: "collection count".into(),
            len: n,
            offset: off,
            remaining: self.remaining(),
        })
    }

    /// Reads a collection's item_version.
    pub fn read_item_version(&mut self) -> Result<u32> {
        match self.kind {
            ArchiveKind::Binary => Ok(u32::from_le_bytes(self.take_arr("item_version")?)),
            ArchiveKind::Text => {
                let t = self.token("item_version")?;
                self.parse_num(t, "item_version")
            }
            ArchiveKind::Xml => self.xml_leaf_num("item_version"),
        }
    }

    // ---- class bookkeeping ---------------------------------------------------

    fn read_preamble(&mut self) -> Result<(bool, u32)> {
        match self.kind {
            ArchiveKind::Binary => {
                let t = self.take(1, "tracking level")?[0];
                // The class version's width by library version (Boost's
                // binary reader keeps these cases): u32 from 8 on, one byte
                // at 7, two bytes at 6, one byte at 3 to 5.
                let v = match self.version {
                    8.. => u32::from_le_bytes(self.take_arr("class version")?),
                    6 => u16::from_le_bytes(self.take_arr("class version")?) as u32,
                    _ => self.take(1, "class version")?[0] as u32,
                };
                if t > 1 {
                    return Err(self.malformed(format!("tracking level {t} is neither 0 nor 1")));
                }
                Ok((t == 1, v))
            }
            ArchiveKind::Text => {
                let t = self.token("tracking level")?;
                let t: u8 = self.parse_num(t, "tracking level")?;
                let v = self.token("class version")?;
                let v: u32 = self.parse_num(v, "class version")?;
                if t > 1 {
                    return Err(self.malformed(format!("tracking level {t} is neither 0 nor 1")));
                }
                Ok((t == 1, v))
            }
            ArchiveKind::Xml => {
                let t: u8 = self
                    .attr_num("tracking_level")?
                    .ok_or_else(|| self.malformed("missing tracking_level attribute"))?;
                let v: u32 = self
                    .attr_num("version")?
                    .ok_or_else(|| self.malformed("missing version attribute"))?;
                if t > 1 {
                    return Err(self.malformed(format!("tracking level {t} is neither 0 nor 1")));
                }
                Ok((t == 1, v))
            }
        }
    }

    fn push_class(
        &mut self,
        type_id: Option<TypeId>,
        export: Option<Arc<ExportEntry>>,
        tracked: bool,
        version: u32,
    ) -> Result<usize> {
        if self.classes.len() >= i16::MAX as usize {
            return Err(self.malformed("too many classes"));
        }
        let cid = self.classes.len();
        if let Some(t) = type_id {
            if self.by_type.insert(t, cid).is_some() {
                return Err(self.malformed("a class was introduced twice"));
            }
        }
        self.classes.push(RClass {
            type_id,
            export,
            initialized: true,
            tracked,
            version,
        });
        Ok(cid)
    }

    fn register_serializable(&mut self, tid: TypeId) -> Result<()> {
        if !self.by_type.contains_key(&tid) {
            self.push_class(Some(tid), None, false, 0)?;
        }
        Ok(())
    }

    /// Registers a pointer's declared (non-abstract) class before the
    /// pointer is read, as C++ does: it takes the next class id, and its
    /// preamble is read where an object of it first appears.
    fn preregister(&mut self, tid: TypeId) -> Result<()> {
        if !self.by_type.contains_key(&tid) {
            let cid = self.push_class(Some(tid), None, false, 0)?;
            self.classes[cid].initialized = false;
        }
        Ok(())
    }

    /// Reads the preamble of class `cid` if it has not been read yet.
    fn initialize_class(&mut self, cid: usize) -> Result<()> {
        if !self.classes[cid].initialized {
            let (tracked, version) = self.read_preamble()?;
            let c = &mut self.classes[cid];
            c.tracked = tracked;
            c.version = version;
            c.initialized = true;
        }
        Ok(())
    }

    /// Reads an object id; true when it refers to an object already read.
    fn read_object_id(&mut self) -> Result<(usize, bool)> {
        let (oid, reference): (u64, Option<bool>) = match self.kind {
            ArchiveKind::Binary => (u32::from_le_bytes(self.take_arr("object id")?) as u64, None),
            ArchiveKind::Text => {
                let t = self.token("object id")?;
                (self.parse_num(t, "object id")?, None)
            }
            ArchiveKind::Xml => {
                if let Some(r) = self.attr_num::<u64>("object_id_reference")? {
                    (r, Some(true))
                } else if let Some(o) = self.attr_num::<u64>("object_id")? {
                    (o, Some(false))
                } else {
                    return Err(self.malformed("tracked object without object_id"));
                }
            }
        };
        let n = self.objects.len() as u64;
        let is_ref = match reference {
            Some(r) => r,
            None => oid < n,
        };
        if (is_ref && oid >= n) || (!is_ref && oid != n) {
            return Err(self.malformed(format!("object id {oid} out of sequence (expected {n})")));
        }
        Ok((oid as usize, is_ref))
    }

    fn check_class_version(&self, info: &ClassInfo, version: u32) -> Result<()> {
        if version > info.version {
            return Err(self.malformed(format!(
                "class {} has version {version} in the archive, newer than {} known here",
                info.name, info.version
            )));
        }
        Ok(())
    }

    /// Reads a class object: its preamble the first time the class appears,
    /// its object id when tracked, then `body` with the stored class version.
    /// Returns the value and its object id (when tracked).
    pub fn load_class_object<R>(
        &mut self,
        tid: TypeId,
        info: &ClassInfo,
        body: impl FnOnce(&mut Self, u32) -> Result<R>,
    ) -> Result<(R, Option<usize>)> {
        if self.xml.len() >= MAX_DEPTH || self.objects.len() > self.data.len() {
            return Err(self.malformed("nesting too deep"));
        }
        let cid = match self.by_type.get(&tid) {
            Some(&c) => {
                self.initialize_class(c)?;
                c
            }
            None => {
                let (tracked, version) = self.read_preamble()?;
                self.push_class(Some(tid), None, tracked, version)?
            }
        };
        let (tracked, version) = {
            let c = &self.classes[cid];
            (c.tracked, c.version)
        };
        self.check_class_version(info, version)?;
        let mut oid = None;
        if tracked {
            let (id, is_ref) = self.read_object_id()?;
            if is_ref {
                return Err(self.malformed(format!(
                    "a {} read by value refers to object {id} read earlier; not supported",
                    info.name
                )));
            }
            self.objects.push(None);
            oid = Some(id);
        }
        let depth_guard = self.xml.len();
        let _ = depth_guard;
        Ok((body(self, version)?, oid))
    }

    fn read_class_id(&mut self) -> Result<i64> {
        match self.kind {
            ArchiveKind::Binary => Ok(i16::from_le_bytes(self.take_arr("class id")?) as i64),
            ArchiveKind::Text => {
                let t = self.token("class id")?;
                let v: i16 = self.parse_num(t, "class id")?;
                Ok(v as i64)
            }
            ArchiveKind::Xml => {
                if let Some(c) = self.attr_num::<i64>("class_id")? {
                    Ok(c)
                } else if let Some(c) = self.attr_num::<i64>("class_id_reference")? {
                    Ok(c)
                } else {
                    Err(self.malformed("pointer without class_id"))
                }
            }
        }
    }

    fn read_class_name(&mut self) -> Result<String> {
        let raw = match self.kind {
            ArchiveKind::Xml => self
                .attr("class_name")
                .ok_or_else(|| self.malformed("new polymorphic class without class_name"))?
                .as_bytes()
                .to_vec(),
            _ => self.read_string_raw()?.to_vec(),
        };
        String::from_utf8(raw).map_err(|_| self.malformed("class name is not UTF-8"))
    }

    fn load_pointer_with<P: ?Sized + 'static>(
        &mut self,
        expected: Option<(TypeId, &ClassInfo)>,
        declared: Option<TypeId>,
        make: impl FnOnce(&mut Self, &RClass) -> Result<Arc<P>>,
    ) -> Result<Option<Arc<P>>> {
        if let Some((tid, _)) = expected {
            self.preregister(tid)?;
        }
        if let Some(tid) = declared {
            self.preregister(tid)?;
        }
        let off = self.pos;
        let cid = self.read_class_id()?;
        if cid == -1 {
            return Ok(None);
        }
        if cid < 0
            || cid as usize > self.classes.len()
            || (cid as usize == self.classes.len() && expected.is_some())
        {
            return Err(ArchiveError::UnknownClassId {
                class_id: cid,
                offset: off,
            });
        }
        let cid = cid as usize;
        if cid == self.classes.len() {
            let name = self.read_class_name()?;
            let entry = self.exports.map.get(&name).cloned().ok_or_else(|| {
                ArchiveError::UnknownExport {
                    name: name.clone(),
                    known: self.exports.known(),
                }
            })?;
            let (tracked, version) = self.read_preamble()?;
            self.push_class(Some(entry.type_id), Some(entry), tracked, version)?;
        } else {
            self.initialize_class(cid)?;
            if let Some((tid, info)) = expected {
                if self.classes[cid].type_id != Some(tid) {
                    return Err(self.malformed(format!("class id {cid} is not a {}", info.name)));
                }
            } else if self.classes[cid].export.is_none() {
                // A pointer to an object of the declared concrete class
                // itself: it carries no name; its loader is the export
                // registered for that type.
                let tid = self.classes[cid].type_id;
                let entry = (tid.is_some() && tid == declared)
                    .then(|| {
                        self.exports
                            .map
                            .values()
                            .find(|e| Some(e.type_id) == tid)
                            .cloned()
                    })
                    .flatten();
                match entry {
                    Some(e) => self.classes[cid].export = Some(e),
                    None if tid.is_some() && tid == declared => {
                        return Err(self.malformed(format!(
                            "class id {cid} is the pointer's declared class; register it in the Exports to read such objects"
                        )))
                    }
                    None => {
                        return Err(self.malformed(format!("class id {cid} is not an exported class")))
                    }
                }
            }
        }
        let class = self.classes[cid].clone();
        if let Some((_, info)) = expected {
            self.check_class_version(info, class.version)?;
        }
        if class.tracked {
            let (oid, is_ref) = self.read_object_id()?;
            if is_ref {
                return match &self.objects[oid] {
                    Some(b) => b
                        .downcast_ref::<Arc<P>>()
                        .cloned()
                        .map(Some)
                        .ok_or_else(|| self.malformed(format!("object {oid} has another type than this pointer"))),
                    None => Err(self.malformed(format!(
                        "pointer to object {oid}, which was read by value (read it with field_shared)"
                    ))),
                };
            }
            self.objects.push(None);
            let obj = make(self, &class)?;
            self.objects[oid] = Some(Box::new(obj.clone()));
            Ok(Some(obj))
        } else {
            Ok(Some(make(self, &class)?))
        }
    }

    // ---- the public member API ----------------------------------------------

    /// Reads a value (without an XML element around it).
    pub fn value<T: BoostSerialize>(&mut self) -> Result<T> {
        self.value_as(TypeId::of::<T>())
    }

    fn value_as<T: BoostSerialize>(&mut self, class: TypeId) -> Result<T> {
        match T::LEVEL {
            Level::Primitive => T::load(self, 0),
            Level::Serializable => {
                self.register_serializable(class)?;
                T::load(self, 0)
            }
            Level::ClassInfo => Ok(self
                .load_class_object(class, &T::class_info(), |ar, v| T::load(ar, v))?
                .0),
        }
    }

    /// Reads member `name` written as the C++ class identified by `class`
    /// (the counterpart of [`super::OArchive::field_as`]).
    pub fn field_as<T: BoostSerialize>(&mut self, name: &str, class: TypeId) -> Result<T> {
        self.in_element(name, |ar| ar.value_as(class))
    }

    fn in_element<R>(&mut self, name: &str, f: impl FnOnce(&mut Self) -> Result<R>) -> Result<R> {
        if self.kind == ArchiveKind::Xml {
            self.xml_open(name)?;
            let r = f(self)?;
            self.xml_close()?;
            Ok(r)
        } else {
            f(self)
        }
    }

    /// Reads member `name` (the element name is checked in XML archives).
    pub fn field<T: BoostSerialize>(&mut self, name: &str) -> Result<T> {
        self.in_element(name, |ar| ar.value())
    }

    /// Reads a class object by value and keeps it shareable: later pointers
    /// to it (object references) get the same `Arc`.
    pub fn field_shared<T: BoostSerialize + Send + Sync>(&mut self, name: &str) -> Result<Arc<T>> {
        self.in_element(name, |ar| {
            let (v, oid) =
                ar.load_class_object(TypeId::of::<T>(), &T::class_info(), |ar, v| T::load(ar, v))?;
            let a = Arc::new(v);
            if let Some(oid) = oid {
                ar.objects[oid] = Some(Box::new(a.clone()));
            }
            Ok(a)
        })
    }

    /// Reads member `name` as a class object identified by `tid` (the
    /// counterpart of [`super::OArchive::class_field`]).
    pub fn class_field<R>(
        &mut self,
        name: &str,
        tid: TypeId,
        info: &ClassInfo,
        body: impl FnOnce(&mut Self, u32) -> Result<R>,
    ) -> Result<R> {
        self.in_element(name, |ar| Ok(ar.load_class_object(tid, info, body)?.0))
    }

    /// Reads base class `B` of the object being read (`base_object<B>`).
    pub fn base<B: BoostSerialize>(&mut self, name: &str) -> Result<B> {
        self.in_element(name, |ar| {
            Ok(ar
                .load_class_object(TypeId::of::<B>(), &B::class_info(), |ar, v| B::load(ar, v))?
                .0)
        })
    }

    /// Reads a pointer to `T` (null → `None`; references share the `Arc`).
    pub fn pointer<T: BoostSerialize>(&mut self, name: &str) -> Result<Option<Arc<T>>> {
        let info = T::class_info();
        self.in_element(name, |ar| {
            ar.load_pointer_with(Some((TypeId::of::<T>(), &info)), None, |ar, class| {
                Ok(Arc::new(T::load(ar, class.version)?))
            })
        })
    }

    /// Reads a polymorphic pointer whose declared type is an abstract class
    /// (the counterpart of [`super::OArchive::poly_pointer`]): the concrete
    /// class is found by its export name among the exports given with
    /// [`IArchive::set_exports`].
    pub fn poly_pointer<B: ?Sized + 'static>(&mut self, name: &str) -> Result<Option<Arc<B>>> {
        self.poly_pointer_impl(name, None)
    }

    /// Reads a polymorphic pointer whose declared type `P*` is a concrete
    /// class (the counterpart of [`super::OArchive::poly_pointer_concrete`]):
    /// `P` is registered first, as C++ does. To read pointers to objects of
    /// class `P` itself, register `P` in the exports too.
    pub fn poly_pointer_concrete<P: BoostSerialize, B: ?Sized + 'static>(
        &mut self,
        name: &str,
    ) -> Result<Option<Arc<B>>> {
        self.poly_pointer_impl(name, Some(TypeId::of::<P>()))
    }

    fn poly_pointer_impl<B: ?Sized + 'static>(
        &mut self,
        name: &str,
        declared: Option<TypeId>,
    ) -> Result<Option<Arc<B>>> {
        self.in_element(name, |ar| {
            ar.load_pointer_with::<B>(None, declared, |ar, class| {
                let entry = class
                    .export
                    .as_ref()
                    .ok_or_else(|| ar.malformed("class without export"))?;
                let loader = entry
                    .loader
                    .downcast_ref::<PolyLoader<B>>()
                    .cloned()
                    .ok_or_else(|| {
                        ar.malformed("exported class is not derived from this pointer's base")
                    })?;
                loader(ar, class.version)
            })
        })
    }
}

impl std::fmt::Debug for IArchive<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IArchive")
            .field("kind", &self.kind)
            .field("version", &self.version)
            .field("pos", &self.pos)
            .finish()
    }
}

/// Class ids by Rust type: a short list searched linearly (archives hold a
/// handful of classes, and this beats hashing on the per-object path).
#[derive(Debug, Default)]
pub(crate) struct TypeTable(Vec<(TypeId, usize)>);

impl TypeTable {
    pub(crate) fn get(&self, t: &TypeId) -> Option<&usize> {
        self.0.iter().find(|(k, _)| k == t).map(|(_, v)| v)
    }
    pub(crate) fn contains_key(&self, t: &TypeId) -> bool {
        self.get(t).is_some()
    }
    pub(crate) fn insert(&mut self, t: TypeId, v: usize) -> Option<usize> {
        if let Some(e) = self.0.iter_mut().find(|(k, _)| *k == t) {
            return Some(std::mem::replace(&mut e.1, v));
        }
        self.0.push((t, v));
        None
    }
}

/// A plain decimal integer token: an optional leading `-` and 1 to 19
/// ASCII digits; `None` for anything else (and for `-0`, which unsigned
/// types refuse), left to `str::parse`.
fn parse_ascii_int(tok: &[u8]) -> Option<i128> {
    let (neg, digits) = match tok.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, tok),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as u64;
    }
    match (neg, v) {
        (true, 0) => None,
        (true, v) => Some(-(v as i128)),
        (false, v) => Some(v as i128),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Integers readable from little-endian bytes.
pub(crate) trait FromLe: Sized {
    const SIZE: usize;
    fn from_le(b: &[u8]) -> Self;
}

macro_rules! from_le_impl {
    ($($t:ty),*) => {$(
        impl FromLe for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn from_le(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(b);
                <$t>::from_le_bytes(a)
            }
        }
    )*};
}
from_le_impl!(i8, u8, i16, u16, i32, u32, i64, u64);
