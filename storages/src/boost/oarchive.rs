//! [`OArchive`]: the archive writer.

use std::any::TypeId;
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use super::error::ArchiveError;
use super::text::{push_f32, push_f64, push_int, push_xml_escaped};
use super::{
    ArchiveKind, BoostSerialize, ClassInfo, Level, PolyBase, Result, SIGNATURE, WRITE_VERSIONS,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delim {
    None,
    Space,
    Eol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum XmlState {
    /// `<name attrs` written, `>` not yet.
    Open,
    /// Text content written.
    Text,
    /// Child elements written.
    Children,
}

#[derive(Debug)]
struct XmlFrame {
    name: String,
    state: XmlState,
}

/// Writes a Boost archive (binary, text or XML) to a byte sink.
///
/// Build one with [`OArchive::new`] (or [`OArchive::to_bytes`]), write the
/// top-level values with [`OArchive::field`] (the name is the XML element
/// name; binary and text archives ignore it), then call [`OArchive::finish`].
pub struct OArchive<'a> {
    kind: ArchiveKind,
    version: u16,
    header: bool,
    buf: Vec<u8>,
    sink: Option<&'a mut dyn Write>,
    delim: Delim,
    xml: Vec<XmlFrame>,
    /// Registered classes: type, class id, and whether the class's
    /// preamble was written (C++ `cobject_type::m_initialized`).
    classes: Vec<(TypeId, i16, bool)>,
    next_cid: i16,
    objects: HashMap<(usize, TypeId), (u32, bool)>,
    next_oid: u32,
    tracking: HashMap<TypeId, bool>,
    finite_only: bool,
}

const FLUSH_AT: usize = 1 << 20;

impl<'a> OArchive<'a> {
    /// Starts an archive of `kind` at library `version` (18 or 19) on `sink`,
    /// writing the header.
    pub fn new(sink: &'a mut dyn Write, kind: ArchiveKind, version: u16) -> Result<OArchive<'a>> {
        Self::with_header(Some(sink), kind, version, true)
    }

    /// Like [`OArchive::new`], but `header: false` is Boost's `no_header` flag.
    pub fn with_header(
        sink: Option<&'a mut dyn Write>,
        kind: ArchiveKind,
        version: u16,
        header: bool,
    ) -> Result<OArchive<'a>> {
        if !WRITE_VERSIONS.contains(&version) {
            return Err(ArchiveError::VersionNotSupported {
                found: version,
                supported: format!("{WRITE_VERSIONS:?} for writing"),
            });
        }
        let mut ar = OArchive {
            kind,
            version,
            header,
            buf: Vec::with_capacity(if sink.is_some() { FLUSH_AT + 4096 } else { 256 }),
            sink,
            delim: Delim::None,
            xml: Vec::new(),
            classes: Vec::new(),
            next_cid: 0,
            objects: HashMap::new(),
            next_oid: 0,
            tracking: HashMap::new(),
            finite_only: false,
        };
        if header {
            ar.write_header();
        }
        Ok(ar)
    }

    /// Writes a whole archive into memory: `body` writes the top-level values.
    pub fn to_bytes(
        kind: ArchiveKind,
        version: u16,
        body: impl FnOnce(&mut OArchive<'_>) -> Result<()>,
    ) -> Result<Vec<u8>> {
        Self::to_bytes_with(kind, version, true, |ar| body(ar))
    }

    /// [`OArchive::to_bytes`] with the header optional (`no_header`).
    pub fn to_bytes_with(
        kind: ArchiveKind,
        version: u16,
        header: bool,
        body: impl FnOnce(&mut OArchive<'_>) -> Result<()>,
    ) -> Result<Vec<u8>> {
        let mut ar = OArchive::with_header(None, kind, version, header)?;
        body(&mut ar)?;
        ar.write_trailer();
        Ok(std::mem::take(&mut ar.buf))
    }

    /// Overrides whether class `T` is tracked in this archive (C++ decides
    /// this from the whole program; see the module docs).
    pub fn set_tracking<T: BoostSerialize>(&mut self, tracked: bool) {
        self.tracking.insert(TypeId::of::<T>(), tracked);
    }

    /// Refuses NaN and ±infinity in text and XML archives
    /// ([`ArchiveError::NonFinite`]): Boost 1.74's text and XML readers
    /// cannot read them back (binary archives hold them exactly and are not
    /// affected). For archives meant for C++ programs.
    pub fn set_finite_only(&mut self, on: bool) {
        self.finite_only = on;
    }

    fn check_finite(&self, finite: bool, value: impl FnOnce() -> String) -> Result<()> {
        if self.finite_only && !finite && self.kind != ArchiveKind::Binary {
            return Err(ArchiveError::NonFinite {
                value: value(),
                kind: self.kind.name().to_string(),
            });
        }
        Ok(())
    }

    /// The archive kind.
    pub fn kind(&self) -> ArchiveKind {
        self.kind
    }

    /// The library version written.
    pub fn library_version(&self) -> u16 {
        self.version
    }

    /// Writes the trailer and flushes everything to the sink.
    pub fn finish(mut self) -> Result<()> {
        self.write_trailer();
        self.flush_buf()?;
        if let Some(s) = self.sink.as_mut() {
            s.flush()?;
        }
        Ok(())
    }

    fn write_header(&mut self) {
        match self.kind {
            ArchiveKind::Binary => {
                self.buf
                    .extend_from_slice(&(SIGNATURE.len() as u64).to_le_bytes());
                self.buf.extend_from_slice(SIGNATURE.as_bytes());
                self.buf.extend_from_slice(&self.version.to_le_bytes());
                self.buf.extend_from_slice(&[4, 8, 4, 8]);
                self.buf.extend_from_slice(&1i32.to_le_bytes());
            }
            ArchiveKind::Text => {
                self.text_str(SIGNATURE.as_bytes());
                let v = self.version;
                self.text_int(v);
            }
            ArchiveKind::Xml => {
                self.buf.extend_from_slice(
                    b"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\" ?>\n<!DOCTYPE boost_serialization>\n",
                );
                let _ = writeln!(
                    self.buf,
                    "<boost_serialization signature=\"{SIGNATURE}\" version=\"{}\">",
                    self.version
                );
            }
        }
    }

    fn write_trailer(&mut self) {
        match self.kind {
            ArchiveKind::Binary => {}
            ArchiveKind::Text => self.buf.push(b'\n'),
            ArchiveKind::Xml => {
                if self.header {
                    self.buf.extend_from_slice(b"</boost_serialization>\n\n");
                }
            }
        }
    }

    fn flush_buf(&mut self) -> Result<()> {
        if let Some(s) = self.sink.as_mut() {
            if !self.buf.is_empty() {
                s.write_all(&self.buf)?;
                self.buf.clear();
            }
        }
        Ok(())
    }

    fn maybe_flush(&mut self) -> Result<()> {
        if self.sink.is_some() && self.buf.len() >= FLUSH_AT {
            self.flush_buf()?;
        }
        Ok(())
    }

    // ---- text tokens -------------------------------------------------------

    fn newtoken(&mut self) {
        match self.delim {
            Delim::None => self.delim = Delim::Space,
            Delim::Space => self.buf.push(b' '),
            Delim::Eol => {
                self.buf.push(b'\n');
                self.delim = Delim::Space;
            }
        }
    }

    fn text_int(&mut self, v: impl super::text::itoa_like::Int) {
        self.newtoken();
        push_int(&mut self.buf, v);
    }

    fn text_str(&mut self, s: &[u8]) {
        self.text_int(s.len() as u64);
        self.newtoken();
        self.buf.extend_from_slice(s);
    }

    // ---- XML structure ----------------------------------------------------

    fn indent(&mut self, depth: usize) {
        for _ in 0..depth {
            self.buf.push(b'\t');
        }
    }

    fn xml_start(&mut self, name: &str) {
        if let Some(top) = self.xml.last_mut() {
            if top.state == XmlState::Open {
                self.buf.extend_from_slice(b">\n");
            }
            top.state = XmlState::Children;
        }
        let depth = self.xml.len();
        self.indent(depth);
        self.buf.push(b'<');
        self.buf.extend_from_slice(name.as_bytes());
        self.xml.push(XmlFrame {
            name: name.to_string(),
            state: XmlState::Open,
        });
    }

    fn xml_end(&mut self) {
        let frame = self.xml.pop().expect("xml_end matches xml_start");
        match frame.state {
            XmlState::Open => self.buf.push(b'>'),
            XmlState::Text => {}
            XmlState::Children => {
                let depth = self.xml.len();
                self.indent(depth);
            }
        }
        self.buf.extend_from_slice(b"</");
        self.buf.extend_from_slice(frame.name.as_bytes());
        self.buf.extend_from_slice(b">\n");
    }

    fn xml_text_begin(&mut self) -> Result<()> {
        match self.xml.last_mut() {
            Some(top) if top.state == XmlState::Open => {
                top.state = XmlState::Text;
                self.buf.push(b'>');
                Ok(())
            }
            Some(top) if top.state == XmlState::Text => Ok(()),
            _ => Err(ArchiveError::Unsupported(
                "XML archives need every value inside a named field".into(),
            )),
        }
    }

    fn xml_attr(&mut self, name: &str, value: impl std::fmt::Display) -> Result<()> {
        match self.xml.last() {
            Some(top) if top.state == XmlState::Open => {
                let _ = write!(self.buf, " {name}=\"{value}\"");
                Ok(())
            }
            _ => Err(ArchiveError::Unsupported(format!(
                "XML attribute {name} outside an open element"
            ))),
        }
    }

    fn xml_leaf(&mut self, name: &str, value: u64) {
        self.xml_start(name);
        self.xml.last_mut().expect("just pushed").state = XmlState::Text;
        self.buf.push(b'>');
        push_int(&mut self.buf, value);
        self.xml_end();
    }

    // ---- primitives (used by the BoostSerialize impls) --------------------

    /// Writes a boolean (`1`/`0`).
    pub fn write_bool(&mut self, v: bool) -> Result<()> {
        match self.kind {
            ArchiveKind::Binary => self.buf.push(v as u8),
            ArchiveKind::Text => self.text_int(v as u8),
            ArchiveKind::Xml => {
                self.xml_text_begin()?;
                self.buf.push(if v { b'1' } else { b'0' });
            }
        }
        self.maybe_flush()
    }

    /// Writes an integer of the width of `T` (`i8` for C `char`, `i64` for `long` ...).
    pub(crate) fn write_int<T: super::text::itoa_like::Int + LeBytes>(
        &mut self,
        v: T,
    ) -> Result<()> {
        match self.kind {
            ArchiveKind::Binary => v.push_le(&mut self.buf),
            ArchiveKind::Text => self.text_int(v),
            ArchiveKind::Xml => {
                self.xml_text_begin()?;
                push_int(&mut self.buf, v);
            }
        }
        self.maybe_flush()
    }

    /// Writes a double.
    pub fn write_f64(&mut self, v: f64) -> Result<()> {
        self.check_finite(v.is_finite(), || v.to_string())?;
        match self.kind {
            ArchiveKind::Binary => self.buf.extend_from_slice(&v.to_le_bytes()),
            ArchiveKind::Text => {
                self.newtoken();
                push_f64(&mut self.buf, v);
            }
            ArchiveKind::Xml => {
                self.xml_text_begin()?;
                push_f64(&mut self.buf, v);
            }
        }
        self.maybe_flush()
    }

    /// Writes a float.
    pub fn write_f32(&mut self, v: f32) -> Result<()> {
        self.check_finite(v.is_finite(), || v.to_string())?;
        match self.kind {
            ArchiveKind::Binary => self.buf.extend_from_slice(&v.to_le_bytes()),
            ArchiveKind::Text => {
                self.newtoken();
                push_f32(&mut self.buf, v);
            }
            ArchiveKind::Xml => {
                self.xml_text_begin()?;
                push_f32(&mut self.buf, v);
            }
        }
        self.maybe_flush()
    }

    /// Writes a `std::string` (bytes; no encoding is imposed).
    pub fn write_string(&mut self, s: &[u8]) -> Result<()> {
        match self.kind {
            ArchiveKind::Binary => {
                self.buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
                self.raw_block(s)?;
            }
            ArchiveKind::Text => self.text_str(s),
            ArchiveKind::Xml => {
                self.xml_text_begin()?;
                push_xml_escaped(&mut self.buf, s);
            }
        }
        self.maybe_flush()
    }

    /// Appends raw bytes (binary archives only: the array optimisation).
    pub(crate) fn raw_block(&mut self, bytes: &[u8]) -> Result<()> {
        if self.sink.is_some() && bytes.len() >= 1 << 16 {
            self.flush_buf()?;
            self.sink.as_mut().expect("checked").write_all(bytes)?;
        } else {
            self.buf.extend_from_slice(bytes);
            self.maybe_flush()?;
        }
        Ok(())
    }

    /// Writes a collection count (`collection_size_type`, 8 bytes in binary).
    pub fn write_count(&mut self, n: usize) -> Result<()> {
        match self.kind {
            ArchiveKind::Binary => self.buf.extend_from_slice(&(n as u64).to_le_bytes()),
            ArchiveKind::Text => self.text_int(n as u64),
            ArchiveKind::Xml => self.xml_leaf("count", n as u64),
        }
        Ok(())
    }

    /// Writes a collection's `item_version` (4 bytes in binary).
    pub fn write_item_version(&mut self, v: u32) -> Result<()> {
        match self.kind {
            ArchiveKind::Binary => self.buf.extend_from_slice(&v.to_le_bytes()),
            ArchiveKind::Text => self.text_int(v),
            ArchiveKind::Xml => self.xml_leaf("item_version", v as u64),
        }
        Ok(())
    }

    // ---- class bookkeeping -----------------------------------------------

    /// Registers class `tid` (C++ `basic_oarchive::register_type`): gives it
    /// the next class id if it has none. Returns its index in `classes` and
    /// whether this call registered it.
    fn register(&mut self, tid: TypeId) -> (usize, bool) {
        if let Some(i) = self.classes.iter().position(|(t, _, _)| *t == tid) {
            return (i, false);
        }
        let cid = self.next_cid;
        self.next_cid = self.next_cid.wrapping_add(1);
        self.classes.push((tid, cid, false));
        (self.classes.len() - 1, true)
    }

    /// Registers the class of a pointer's declared type before the pointer
    /// is written, as C++ does for every non-abstract pointee type (even for
    /// a null pointer): that class takes the next class id although its
    /// preamble comes later, when an object of it is first written.
    fn preregister(&mut self, tid: TypeId) {
        self.register(tid);
    }

    fn is_tracked(&self, tid: TypeId, info: &ClassInfo) -> bool {
        if self.tracking.is_empty() {
            return info.tracked;
        }
        self.tracking.get(&tid).copied().unwrap_or(info.tracked)
    }

    fn class_header(
        &mut self,
        cid: i16,
        pointer: bool,
        name: Option<&str>,
        tracked: bool,
        version: u32,
    ) -> Result<()> {
        match self.kind {
            ArchiveKind::Binary => {
                if pointer {
                    self.buf.extend_from_slice(&cid.to_le_bytes());
                    if let Some(n) = name {
                        self.buf.extend_from_slice(&(n.len() as u64).to_le_bytes());
                        self.buf.extend_from_slice(n.as_bytes());
                    }
                }
                self.buf.push(tracked as u8);
                self.buf.extend_from_slice(&version.to_le_bytes());
            }
            ArchiveKind::Text => {
                if pointer {
                    self.text_int(cid);
                    if let Some(n) = name {
                        self.text_str(n.as_bytes());
                    }
                }
                self.text_int(tracked as u8);
                self.text_int(version);
            }
            ArchiveKind::Xml => {
                self.xml_attr("class_id", cid)?;
                if let Some(n) = name {
                    let mut esc = Vec::new();
                    push_xml_escaped(&mut esc, n.as_bytes());
                    self.xml_attr("class_name", String::from_utf8_lossy(&esc))?;
                }
                self.xml_attr("tracking_level", tracked as u8)?;
                self.xml_attr("version", version)?;
            }
        }
        Ok(())
    }

    fn class_id_reference(&mut self, cid: i16) -> Result<()> {
        match self.kind {
            ArchiveKind::Binary => self.buf.extend_from_slice(&cid.to_le_bytes()),
            ArchiveKind::Text => self.text_int(cid),
            ArchiveKind::Xml => self.xml_attr("class_id_reference", cid)?,
        }
        Ok(())
    }

    fn object_id(&mut self, oid: u32) -> Result<()> {
        match self.kind {
            ArchiveKind::Binary => self.buf.extend_from_slice(&oid.to_le_bytes()),
            ArchiveKind::Text => {
                self.delim = Delim::Eol;
                self.text_int(oid);
            }
            ArchiveKind::Xml => self.xml_attr("object_id", format_args!("_{oid}"))?,
        }
        Ok(())
    }

    fn object_reference(&mut self, oid: u32) -> Result<()> {
        match self.kind {
            ArchiveKind::Binary => self.buf.extend_from_slice(&oid.to_le_bytes()),
            ArchiveKind::Text => self.text_int(oid),
            ArchiveKind::Xml => self.xml_attr("object_id_reference", format_args!("_{oid}"))?,
        }
        Ok(())
    }

    fn new_object(&mut self, addr: usize, tid: TypeId, via_pointer: bool) -> u32 {
        let oid = self.next_oid;
        self.next_oid += 1;
        self.objects.insert((addr, tid), (oid, via_pointer));
        oid
    }

    /// Writes a class object: the preamble the first time the class appears,
    /// the object id (or a reference) when tracked, then `body`.
    /// `addr` identifies the object for tracking.
    pub fn save_class_object(
        &mut self,
        tid: TypeId,
        info: &ClassInfo,
        addr: usize,
        body: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()> {
        let tracked = self.is_tracked(tid, info);
        let (idx, _) = self.register(tid);
        let (_, cid, initialized) = self.classes[idx];
        if !initialized {
            self.class_header(cid, false, None, tracked, info.version)?;
            self.classes[idx].2 = true;
        }
        if tracked {
            if let Some(&(oid, via_pointer)) = self.objects.get(&(addr, tid)) {
                if via_pointer {
                    return Err(ArchiveError::PointerConflict {
                        class: info.name.to_string(),
                    });
                }
                return self.object_reference(oid);
            }
            let oid = self.new_object(addr, tid, false);
            self.object_id(oid)?;
        }
        body(self)
    }

    fn save_pointer_object(
        &mut self,
        tid: TypeId,
        info: &ClassInfo,
        polymorphic: bool,
        addr: usize,
        body: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()> {
        let tracked = self.is_tracked(tid, info);
        let (idx, new) = self.register(tid);
        let (_, cid, initialized) = self.classes[idx];
        if !initialized {
            // C++ names the class only when this very pointer registered it:
            // a pointer to an object of its declared (pre-registered) class
            // carries no name.
            let name = if polymorphic && new {
                Some(info.export.ok_or_else(|| {
                    ArchiveError::Unsupported(format!(
                        "class {} is written through a polymorphic pointer but has no export name",
                        info.name
                    ))
                })?)
            } else {
                None
            };
            self.class_header(cid, true, name, tracked, info.version)?;
            self.classes[idx].2 = true;
        } else {
            self.class_id_reference(cid)?;
        }
        if tracked {
            if let Some(&(oid, _)) = self.objects.get(&(addr, tid)) {
                return self.object_reference(oid);
            }
            let oid = self.new_object(addr, tid, true);
            self.object_id(oid)?;
        }
        body(self)
    }

    fn null_pointer(&mut self) -> Result<()> {
        match self.kind {
            ArchiveKind::Binary => self.buf.extend_from_slice(&(-1i16).to_le_bytes()),
            ArchiveKind::Text => self.text_int(-1i16),
            ArchiveKind::Xml => self.xml_attr("class_id", -1)?,
        }
        Ok(())
    }

    // ---- the public member API --------------------------------------------

    /// Writes a value (without an XML element around it).
    pub fn value<T: BoostSerialize>(&mut self, v: &T) -> Result<()> {
        self.value_as(TypeId::of::<T>(), v)
    }

    /// Writes member `name` as the C++ class identified by `class` rather
    /// than by `T`: for C++ types that one Rust type stands for, which C++
    /// registers as distinct classes (`std::vector<long>` and
    /// `std::vector<long long>` are both `Vec<i64>` here). Class ids follow
    /// registration, so this keeps later class ids where C++ has them.
    pub fn field_as<T: BoostSerialize>(&mut self, name: &str, class: TypeId, v: &T) -> Result<()> {
        if self.kind == ArchiveKind::Xml {
            self.xml_start(name);
            self.value_as(class, v)?;
            self.xml_end();
            Ok(())
        } else {
            self.value_as(class, v)
        }
    }

    fn value_as<T: BoostSerialize>(&mut self, class: TypeId, v: &T) -> Result<()> {
        match T::LEVEL {
            Level::Primitive => v.save(self),
            Level::Serializable => {
                self.register(class);
                v.save(self)
            }
            Level::ClassInfo => {
                self.save_class_object(class, &T::class_info(), v as *const T as usize, |ar| {
                    v.save(ar)
                })
            }
        }
    }

    /// Writes member `name` (an NVP: the element name in XML archives).
    pub fn field<T: BoostSerialize>(&mut self, name: &str, v: &T) -> Result<()> {
        if self.kind == ArchiveKind::Xml {
            self.xml_start(name);
            self.value(v)?;
            self.xml_end();
            Ok(())
        } else {
            self.value(v)
        }
    }

    /// Writes member `name` as a class object identified by `tid` (for types
    /// without a Rust type of their own, such as the pairs inside a map).
    pub fn class_field(
        &mut self,
        name: &str,
        tid: TypeId,
        info: &ClassInfo,
        addr: usize,
        body: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()> {
        let xml = self.kind == ArchiveKind::Xml;
        if xml {
            self.xml_start(name);
        }
        self.save_class_object(tid, info, addr, body)?;
        if xml {
            self.xml_end();
        }
        Ok(())
    }

    /// Writes base class `base` of the object `owner` (`base_object<B>(*this)`),
    /// as the NVP `name`. The base is tracked as the owner's address.
    pub fn base<O, B: BoostSerialize>(&mut self, name: &str, owner: &O, base: &B) -> Result<()> {
        let addr = owner as *const O as usize;
        let xml = self.kind == ArchiveKind::Xml;
        if xml {
            self.xml_start(name);
        }
        self.save_class_object(TypeId::of::<B>(), &B::class_info(), addr, |ar| {
            base.save(ar)
        })?;
        if xml {
            self.xml_end();
        }
        Ok(())
    }

    /// Writes a raw pointer member `T*` (for `std::shared_ptr<T>` members
    /// use [`super::SharedPtr`], which C++ writes differently): null, a new
    /// object, or a reference to an object already written (by identity of
    /// the `Arc`'s target, which may also have been written by value).
    ///
    /// Like C++, this registers class `T` (gives it a class id) even when
    /// the pointer is null.
    pub fn pointer<T: BoostSerialize>(&mut self, name: &str, p: Option<&Arc<T>>) -> Result<()> {
        let xml = self.kind == ArchiveKind::Xml;
        if xml {
            self.xml_start(name);
        }
        self.preregister(TypeId::of::<T>());
        match p {
            None => self.null_pointer()?,
            Some(a) => {
                let obj: &T = a;
                self.save_pointer_object(
                    TypeId::of::<T>(),
                    &T::class_info(),
                    false,
                    Arc::as_ptr(a) as usize,
                    |ar| obj.save(ar),
                )?
            }
        }
        if xml {
            self.xml_end();
        }
        Ok(())
    }

    /// Writes a polymorphic pointer whose declared type is an *abstract*
    /// class (`BOOST_SERIALIZATION_ASSUME_ABSTRACT`, or pure virtual
    /// functions): the concrete class is named by its export name the first
    /// time it appears. For a concrete declared class (LSST's `Persistable`)
    /// use [`OArchive::poly_pointer_concrete`].
    pub fn poly_pointer<B: ?Sized + PolyBase>(
        &mut self,
        name: &str,
        p: Option<&Arc<B>>,
    ) -> Result<()> {
        self.poly_pointer_impl(name, None, p)
    }

    /// Writes a polymorphic pointer whose declared type `P*` is a concrete
    /// (non-abstract) class, such as LSST's `Persistable`. C++ Boost then
    /// registers `P` before the pointed-to class, so `P` takes a class id
    /// first (even for a null pointer) and the derived class the next one;
    /// a pointer to an object of class `P` itself carries no class name.
    /// `P` is the Rust type the derived classes write with
    /// [`OArchive::base`]; objects of class `P` itself must report
    /// `TypeId::of::<P>()` from [`PolyBase::dyn_type_id`].
    pub fn poly_pointer_concrete<P: BoostSerialize, B: ?Sized + PolyBase>(
        &mut self,
        name: &str,
        p: Option<&Arc<B>>,
    ) -> Result<()> {
        self.poly_pointer_impl(name, Some(TypeId::of::<P>()), p)
    }

    fn poly_pointer_impl<B: ?Sized + PolyBase>(
        &mut self,
        name: &str,
        declared: Option<TypeId>,
        p: Option<&Arc<B>>,
    ) -> Result<()> {
        let xml = self.kind == ArchiveKind::Xml;
        if xml {
            self.xml_start(name);
        }
        if let Some(tid) = declared {
            self.preregister(tid);
        }
        match p {
            None => self.null_pointer()?,
            Some(a) => {
                let obj: &B = a;
                self.save_pointer_object(
                    obj.dyn_type_id(),
                    &obj.dyn_class_info(),
                    true,
                    Arc::as_ptr(a) as *const () as usize,
                    |ar| obj.dyn_save(ar),
                )?
            }
        }
        if xml {
            self.xml_end();
        }
        Ok(())
    }
}

impl std::fmt::Debug for OArchive<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OArchive")
            .field("kind", &self.kind)
            .field("version", &self.version)
            .finish()
    }
}

/// Integers that can be written as little-endian bytes.
pub(crate) trait LeBytes: Copy {
    /// Appends the little-endian bytes.
    fn push_le(self, out: &mut Vec<u8>);
}

macro_rules! le_impl {
    ($($t:ty),*) => {$(
        impl LeBytes for $t {
            fn push_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
le_impl!(i8, u8, i16, u16, i32, u32, i64, u64);
