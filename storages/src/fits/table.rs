//! Binary tables (`BINTABLE`): typed columns, writing and reading.

use super::file::{format_err, FitsFile, HduKind};
use super::header::{Card, Value};
use crate::Result;

/// The values of one table column.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum ColumnData {
    Bool(Vec<bool>),
    U8(Vec<u8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Str(Vec<String>),
    /// `C`: single-precision complex, `[re, im]`.
    C64(Vec<[f32; 2]>),
    /// `M`: double-precision complex, `[re, im]`.
    C128(Vec<[f64; 2]>),
    /// `P`/`Q`: a variable-length array per row, each held as the column
    /// data of its element type (`A` arrays as one string, `X` as bits).
    Var(Vec<ColumnData>),
}

impl ColumnData {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Bool(v) => v.len(),
            ColumnData::U8(v) => v.len(),
            ColumnData::I16(v) => v.len(),
            ColumnData::I32(v) => v.len(),
            ColumnData::I64(v) => v.len(),
            ColumnData::F32(v) => v.len(),
            ColumnData::F64(v) => v.len(),
            ColumnData::Str(v) => v.len(),
            ColumnData::C64(v) => v.len(),
            ColumnData::C128(v) => v.len(),
            ColumnData::Var(v) => v.len(),
        }
    }
    /// True with no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn width(&self) -> usize {
        match self {
            ColumnData::Bool(_) | ColumnData::U8(_) => 1,
            ColumnData::I16(_) => 2,
            ColumnData::I32(_) | ColumnData::F32(_) => 4,
            ColumnData::I64(_) | ColumnData::F64(_) | ColumnData::C64(_) => 8,
            ColumnData::C128(_) => 16,
            ColumnData::Str(v) => v.iter().map(String::len).max().unwrap_or(0).max(1),
            ColumnData::Var(_) => 8,
        }
    }
    fn tform(&self) -> String {
        match self {
            ColumnData::Bool(_) => "L".into(),
            ColumnData::U8(_) => "B".into(),
            ColumnData::I16(_) => "I".into(),
            ColumnData::I32(_) => "J".into(),
            ColumnData::I64(_) => "K".into(),
            ColumnData::F32(_) => "E".into(),
            ColumnData::F64(_) => "D".into(),
            ColumnData::Str(_) => format!("{}A", self.width()),
            ColumnData::C64(_) => "C".into(),
            ColumnData::C128(_) => "M".into(),
            ColumnData::Var(_) => "PB".into(),
        }
    }
    fn put(&self, row: usize, width: usize, out: &mut Vec<u8>) {
        match self {
            ColumnData::Bool(v) => out.push(if v[row] { b'T' } else { b'F' }),
            ColumnData::U8(v) => out.push(v[row]),
            ColumnData::I16(v) => out.extend_from_slice(&v[row].to_be_bytes()),
            ColumnData::I32(v) => out.extend_from_slice(&v[row].to_be_bytes()),
            ColumnData::I64(v) => out.extend_from_slice(&v[row].to_be_bytes()),
            ColumnData::F32(v) => out.extend_from_slice(&v[row].to_be_bytes()),
            ColumnData::F64(v) => out.extend_from_slice(&v[row].to_be_bytes()),
            ColumnData::Str(v) => {
                let b = v[row].as_bytes();
                out.extend_from_slice(b);
                out.extend(std::iter::repeat_n(b' ', width - b.len()));
            }
            ColumnData::C64(v) => {
                out.extend_from_slice(&v[row][0].to_be_bytes());
                out.extend_from_slice(&v[row][1].to_be_bytes());
            }
            ColumnData::C128(v) => {
                out.extend_from_slice(&v[row][0].to_be_bytes());
                out.extend_from_slice(&v[row][1].to_be_bytes());
            }
            ColumnData::Var(_) => unreachable!("refused by encode_table"),
        }
    }
}

/// One named column.
#[derive(Debug, Clone, PartialEq)]
pub struct TableColumn {
    /// TTYPEn.
    pub name: String,
    /// TUNITn (empty if none).
    pub unit: String,
    /// TDOCn, LSST's column description (empty if none).
    pub doc: String,
    /// The values.
    pub data: ColumnData,
}

/// The structural cards and row bytes of a binary table.
pub(crate) fn encode_table(columns: &[TableColumn]) -> Result<(Vec<Card>, Vec<u8>), String> {
    let rows = columns.first().map_or(0, |c| c.data.len());
    if let Some(c) = columns.iter().find(|c| c.data.len() != rows) {
        return Err(format!(
            "column {} has {} rows, expected {rows}",
            c.name,
            c.data.len()
        ));
    }
    if let Some(c) = columns
        .iter()
        .find(|c| matches!(c.data, ColumnData::Var(_)))
    {
        return Err(format!(
            "column {}: variable-length arrays are read, not written",
            c.name
        ));
    }
    let widths: Vec<usize> = columns.iter().map(|c| c.data.width()).collect();
    let row_bytes: usize = widths.iter().sum();
    let mut cards = vec![
        Card::new("XTENSION", Value::Str("BINTABLE".into())),
        Card::new("BITPIX", Value::Int(8)),
        Card::new("NAXIS", Value::Int(2)),
        Card::new("NAXIS1", Value::Int(row_bytes as i64)),
        Card::new("NAXIS2", Value::Int(rows as i64)),
        Card::new("PCOUNT", Value::Int(0)),
        Card::new("GCOUNT", Value::Int(1)),
        Card::new("TFIELDS", Value::Int(columns.len() as i64)),
    ];
    for (i, c) in columns.iter().enumerate() {
        let n = i + 1;
        cards.push(Card::new(format!("TTYPE{n}"), Value::Str(c.name.clone())));
        cards.push(Card::new(format!("TFORM{n}"), Value::Str(c.data.tform())));
        if !c.unit.is_empty() {
            cards.push(Card::new(format!("TUNIT{n}"), Value::Str(c.unit.clone())));
        }
        if !c.doc.is_empty() {
            cards.push(Card::new(format!("TDOC{n}"), Value::Str(c.doc.clone())));
        }
    }
    let mut data = Vec::with_capacity(rows * row_bytes);
    for r in 0..rows {
        for (c, w) in columns.iter().zip(&widths) {
            c.data.put(r, *w, &mut data);
        }
    }
    Ok((cards, data))
}

impl FitsFile {
    /// Reads binary table HDU `index`. Every TFORM code is read: `L`, `B`,
    /// `I`, `J`, `K`, `E`, `D` and `A`; `X` bits as [`ColumnData::Bool`];
    /// `C`/`M` complex as [`ColumnData::C64`]/[`ColumnData::C128`]; `P`/`Q`
    /// variable-length arrays from the heap as [`ColumnData::Var`] (every
    /// descriptor checked against the heap, and the arrays' total bounded by
    /// twice the HDU's data). A repeat count `r > 1` becomes `r` columns
    /// `NAME_0 … NAME_{r-1}` (for `X`: one per bit); `TZERO` of unsigned
    /// `I`/`J` columns is applied.
    pub fn read_table(&self, index: usize) -> Result<Vec<TableColumn>> {
        let hdu = self.hdu(index)?;
        let err = |m: String| format_err(self.path(), format!("HDU {index}: {m}"));
        if hdu.kind != HduKind::BinTable {
            return Err(err(format!("is a {}, not a binary table", hdu.kind.name())));
        }
        if hdu.naxes.len() != 2 {
            return Err(err("a binary table needs NAXIS = 2".into()));
        }
        let (row_bytes, rows) = (hdu.naxes[0], hdu.naxes[1]);
        // Zero-width rows hold nothing, however many there are.
        let rows = if row_bytes == 0 { 0 } else { rows };
        let nfields = hdu.value("TFIELDS").and_then(Value::as_i64).unwrap_or(0);
        if !(0..=999).contains(&nfields) {
            return Err(err(format!("invalid TFIELDS {nfields}")));
        }
        let text = |k: String| match hdu.value(&k) {
            Some(Value::Str(s)) => s.clone(),
            _ => String::new(),
        };
        let data = self.data(hdu);
        // The heap (variable-length arrays): from THEAP (default: right
        // after the rows) to the end of the data; it cannot reach past the
        // file, and what the arrays decode to is bounded by `budget`.
        let table_len = row_bytes.checked_mul(rows).filter(|&t| t <= data.len());
        let heap: std::result::Result<&[u8], String> = match (hdu.value("THEAP"), table_len) {
            (_, None) => Err("the rows are larger than the HDU's data".into()),
            (None, Some(t)) => Ok(&data[t..]),
            (Some(Value::Int(h)), Some(t))
                if *h >= t as i64 && (*h as u64) <= data.len() as u64 =>
            {
                Ok(&data[*h as usize..])
            }
            (Some(v), _) => Err(format!("invalid THEAP {}", v.display())),
        };
        let mut budget = data.len().saturating_mul(2);
        let mut out = Vec::new();
        let mut offset = 0usize;
        for n in 1..=nfields as usize {
            let tform = text(format!("TFORM{n}"));
            let name = match text(format!("TTYPE{n}")) {
                s if s.is_empty() => format!("col{n}"),
                s => s,
            };
            let digits: String = tform.chars().take_while(char::is_ascii_digit).collect();
            let repeat: usize = if digits.is_empty() {
                1
            } else {
                digits
                    .parse()
                    .map_err(|_| err(format!("bad TFORM{n} {tform:?}")))?
            };
            let code = tform[digits.len()..]
                .chars()
                .next()
                .ok_or_else(|| err(format!("bad TFORM{n} {tform:?}")))?;
            let size = match code {
                'L' | 'B' | 'A' => 1,
                'I' => 2,
                'J' | 'E' => 4,
                'K' | 'D' | 'C' | 'P' => 8,
                'M' | 'Q' => 16,
                'X' => 0,
                _ => return Err(err(format!("unsupported TFORM{n} {tform:?}"))),
            };
            let width = if code == 'X' {
                repeat.div_ceil(8)
            } else {
                repeat
                    .checked_mul(size)
                    .ok_or_else(|| err(format!("TFORM{n} too wide")))?
            };
            if offset + width > row_bytes {
                return Err(err(format!(
                    "columns are wider than NAXIS1 = {row_bytes} at column {n}"
                )));
            }
            let tzero = hdu.value(&format!("TZERO{n}")).and_then(Value::as_f64);
            let unit = text(format!("TUNIT{n}"));
            let doc = text(format!("TDOC{n}"));
            let cell = |r: usize, k: usize| {
                let s = r * row_bytes + offset + k * size;
                &data[s..s + size]
            };
            let sub = |k: usize| {
                if repeat == 1 {
                    name.clone()
                } else {
                    format!("{name}_{k}")
                }
            };
            match code {
                'A' => {
                    let v = (0..rows)
                        .map(|r| {
                            let s = r * row_bytes + offset;
                            let b = &data[s..s + repeat];
                            let b = b.split(|&c| c == 0).next().unwrap_or(b);
                            String::from_utf8_lossy(b).trim_end().to_string()
                        })
                        .collect();
                    out.push(TableColumn {
                        name: name.clone(),
                        unit,
                        doc,
                        data: ColumnData::Str(v),
                    });
                }
                'L' | 'B' | 'I' | 'J' | 'K' | 'E' | 'D' => {
                    for k in 0..repeat {
                        let d = match code {
                            'L' => {
                                ColumnData::Bool((0..rows).map(|r| cell(r, k)[0] == b'T').collect())
                            }
                            'B' => ColumnData::U8((0..rows).map(|r| cell(r, k)[0]).collect()),
                            'I' if tzero == Some(32768.0) => ColumnData::I32(
                                (0..rows)
                                    .map(|r| {
                                        i16::from_be_bytes([cell(r, k)[0], cell(r, k)[1]]) as i32
                                            + 32768
                                    })
                                    .collect(),
                            ),
                            'I' => ColumnData::I16(
                                (0..rows)
                                    .map(|r| i16::from_be_bytes([cell(r, k)[0], cell(r, k)[1]]))
                                    .collect(),
                            ),
                            'J' if tzero == Some(2147483648.0) => ColumnData::I64(
                                (0..rows)
                                    .map(|r| {
                                        i32::from_be_bytes(cell(r, k).try_into().expect("4")) as i64
                                            + 2147483648
                                    })
                                    .collect(),
                            ),
                            'J' => ColumnData::I32(
                                (0..rows)
                                    .map(|r| i32::from_be_bytes(cell(r, k).try_into().expect("4")))
                                    .collect(),
                            ),
                            'K' => ColumnData::I64(
                                (0..rows)
                                    .map(|r| i64::from_be_bytes(cell(r, k).try_into().expect("8")))
                                    .collect(),
                            ),
                            'E' => ColumnData::F32(
                                (0..rows)
                                    .map(|r| f32::from_be_bytes(cell(r, k).try_into().expect("4")))
                                    .collect(),
                            ),
                            _ => ColumnData::F64(
                                (0..rows)
                                    .map(|r| f64::from_be_bytes(cell(r, k).try_into().expect("8")))
                                    .collect(),
                            ),
                        };
                        out.push(TableColumn {
                            name: sub(k),
                            unit: unit.clone(),
                            doc: doc.clone(),
                            data: d,
                        });
                    }
                }
                'X' => {
                    // bit k of the row's field, most significant bit first
                    for k in 0..repeat {
                        let v = (0..rows)
                            .map(|r| data[r * row_bytes + offset + k / 8] >> (7 - k % 8) & 1 == 1)
                            .collect();
                        out.push(TableColumn {
                            name: sub(k),
                            unit: unit.clone(),
                            doc: doc.clone(),
                            data: ColumnData::Bool(v),
                        });
                    }
                }
                'C' | 'M' => {
                    for k in 0..repeat {
                        let d = if code == 'C' {
                            ColumnData::C64(
                                (0..rows)
                                    .map(|r| {
                                        let c = cell(r, k);
                                        [
                                            f32::from_be_bytes(c[..4].try_into().expect("4")),
                                            f32::from_be_bytes(c[4..].try_into().expect("4")),
                                        ]
                                    })
                                    .collect(),
                            )
                        } else {
                            ColumnData::C128(
                                (0..rows)
                                    .map(|r| {
                                        let c = cell(r, k);
                                        [
                                            f64::from_be_bytes(c[..8].try_into().expect("8")),
                                            f64::from_be_bytes(c[8..].try_into().expect("8")),
                                        ]
                                    })
                                    .collect(),
                            )
                        };
                        out.push(TableColumn {
                            name: sub(k),
                            unit: unit.clone(),
                            doc: doc.clone(),
                            data: d,
                        });
                    }
                }
                _ => {
                    // P / Q: descriptors into the heap
                    let elem = tform[digits.len() + 1..]
                        .chars()
                        .next()
                        .filter(|c| "LXBIJKAEDCM".contains(*c))
                        .ok_or_else(|| {
                            err(format!("TFORM{n} {tform:?}: no element type after {code}"))
                        })?;
                    let heap = heap.as_ref().map_err(|m| err(m.clone()))?;
                    for k in 0..repeat {
                        let mut v = Vec::with_capacity(rows);
                        for r in 0..rows {
                            let c = cell(r, k);
                            let (cnt, off) = if code == 'P' {
                                (
                                    i32::from_be_bytes(c[..4].try_into().expect("4")) as i64,
                                    i32::from_be_bytes(c[4..].try_into().expect("4")) as i64,
                                )
                            } else {
                                (
                                    i64::from_be_bytes(c[..8].try_into().expect("8")),
                                    i64::from_be_bytes(c[8..].try_into().expect("8")),
                                )
                            };
                            let bytes = var_bytes(elem, cnt);
                            let range = (cnt >= 0 && off >= 0)
                                .then_some(())
                                .and(bytes)
                                .and_then(|b| {
                                    let s = usize::try_from(off).ok()?;
                                    Some(s..s.checked_add(b)?)
                                })
                                .filter(|rg| rg.end <= heap.len());
                            let Some(range) = range else {
                                return Err(err(format!(
                                    "column {name} row {r}: array descriptor ({cnt}, {off}) lies outside the {}-byte heap",
                                    heap.len()
                                )));
                            };
                            // Overlapping descriptors could make a small
                            // file decode to a huge table: bound the total.
                            budget = budget.checked_sub(range.len()).ok_or_else(|| {
                                err(format!(
                                    "column {name}: the arrays add up to more than twice the HDU's {} data bytes",
                                    data.len()
                                ))
                            })?;
                            v.push(decode_elements(elem, cnt as usize, &heap[range]));
                        }
                        out.push(TableColumn {
                            name: sub(k),
                            unit: unit.clone(),
                            doc: doc.clone(),
                            data: ColumnData::Var(v),
                        });
                    }
                }
            }
            offset += width;
        }
        Ok(out)
    }
}

/// Bytes of `count` elements of TFORM code `code` in the heap.
fn var_bytes(code: char, count: i64) -> Option<usize> {
    let n = usize::try_from(count).ok()?;
    match code {
        'X' => Some(n.div_ceil(8)),
        'L' | 'B' | 'A' => Some(n),
        'I' => n.checked_mul(2),
        'J' | 'E' => n.checked_mul(4),
        'K' | 'D' | 'C' => n.checked_mul(8),
        _ => n.checked_mul(16),
    }
}

/// `count` elements of TFORM code `code` from big-endian `b` (exactly
/// [`var_bytes`] long).
fn decode_elements(code: char, count: usize, b: &[u8]) -> ColumnData {
    fn be<const N: usize>(b: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        b.chunks_exact(N).map(|c| c.try_into().expect("N"))
    }
    match code {
        'L' => ColumnData::Bool(b.iter().map(|&c| c == b'T').collect()),
        'X' => ColumnData::Bool(
            (0..count)
                .map(|k| b[k / 8] >> (7 - k % 8) & 1 == 1)
                .collect(),
        ),
        'B' => ColumnData::U8(b.to_vec()),
        'A' => {
            let t = b.split(|&c| c == 0).next().unwrap_or(b);
            ColumnData::Str(vec![String::from_utf8_lossy(t).trim_end().to_string()])
        }
        'I' => ColumnData::I16(be::<2>(b).map(i16::from_be_bytes).collect()),
        'J' => ColumnData::I32(be::<4>(b).map(i32::from_be_bytes).collect()),
        'K' => ColumnData::I64(be::<8>(b).map(i64::from_be_bytes).collect()),
        'E' => ColumnData::F32(be::<4>(b).map(f32::from_be_bytes).collect()),
        'D' => ColumnData::F64(be::<8>(b).map(f64::from_be_bytes).collect()),
        'C' => ColumnData::C64(
            be::<8>(b)
                .map(|c| {
                    [
                        f32::from_be_bytes(c[..4].try_into().expect("4")),
                        f32::from_be_bytes(c[4..].try_into().expect("4")),
                    ]
                })
                .collect(),
        ),
        _ => ColumnData::C128(
            be::<16>(b)
                .map(|c| {
                    [
                        f64::from_be_bytes(c[..8].try_into().expect("8")),
                        f64::from_be_bytes(c[8..].try_into().expect("8")),
                    ]
                })
                .collect(),
        ),
    }
}
