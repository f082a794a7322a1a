//! [`Pixel`]: the image pixel types FITS can hold, and their big-endian codecs.

use std::fmt::Debug;

/// A pixel type that can be stored in a FITS image HDU.
///
/// Each type has a FITS `BITPIX` and, for the unsigned types FITS lacks, the
/// `BZERO` offset the standard prescribes (u16: 32768, u32: 2³¹). Decoding and
/// encoding work on whole slices so the compiler can vectorise them.
pub trait Pixel: Copy + Default + PartialEq + PartialOrd + Debug + Send + Sync + 'static {
    /// FITS `BITPIX` of the stored values.
    const BITPIX: i32;
    /// FITS `BZERO` that maps stored to physical values (0 for native types).
    const BZERO: f64;
    /// LSST type suffix: `"F"` for `ImageF`, `"U"` for `ImageU` ...
    const SUFFIX: &'static str;
    /// Bytes per stored value.
    const SIZE: usize;
    /// Converts a physical value (after BSCALE/BZERO) to this type, rounding
    /// and saturating for integer types.
    fn from_f64(v: f64) -> Self;
    /// The value as `f64`.
    fn to_f64(self) -> f64;
    /// Decodes stored big-endian values (with this type's own BZERO) into `dst`.
    /// `src.len()` must be `dst.len() * SIZE`.
    fn decode_be(src: &[u8], dst: &mut [Self]);
    /// Encodes values as stored big-endian values (applying this type's BZERO).
    /// `dst.len()` must be `src.len() * SIZE`.
    fn encode_be(src: &[Self], dst: &mut [u8]);
}

/// Defines `decode_be`/`encode_be` from a plain loop body, with a copy
/// compiled for AVX2 chosen at run time on x86-64 (the byte swap then
/// vectorises to `vpshufb`; the portable baseline lacks even SSSE3).
macro_rules! codecs {
    ($t:ty, |$ds:ident, $dd:ident| $decode:block, |$es:ident, $ed:ident| $encode:block) => {
        fn decode_be(src: &[u8], dst: &mut [Self]) {
            #[inline(always)]
            fn plain($ds: &[u8], $dd: &mut [$t]) $decode
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                unsafe fn avx2(s: &[u8], d: &mut [$t]) {
                    plain(s, d)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2 (checked just above).
                    return unsafe { avx2(src, dst) };
                }
            }
            plain(src, dst)
        }
        fn encode_be(src: &[Self], dst: &mut [u8]) {
            #[inline(always)]
            fn plain($es: &[$t], $ed: &mut [u8]) $encode
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                unsafe fn avx2(s: &[$t], d: &mut [u8]) {
                    plain(s, d)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2 (checked just above).
                    return unsafe { avx2(src, dst) };
                }
            }
            plain(src, dst)
        }
    };
}

macro_rules! int_pixel {
    ($t:ty, $stored:ty, $bitpix:expr, $bzero:expr, $suffix:expr, $flip:expr) => {
        impl Pixel for $t {
            const BITPIX: i32 = $bitpix;
            const BZERO: f64 = $bzero;
            const SUFFIX: &'static str = $suffix;
            const SIZE: usize = std::mem::size_of::<$t>();
            fn from_f64(v: f64) -> Self {
                // `as` saturates and maps NaN to 0.
                v.round() as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            // Fixed-size arrays let the compiler vectorise the byte swap.
            codecs!(
                $t,
                |src, dst| {
                    const N: usize = std::mem::size_of::<$t>();
                    let (chunks, _) = src.as_chunks::<N>();
                    for (d, s) in dst.iter_mut().zip(chunks) {
                        *d = <$t>::from_be_bytes(*s) ^ $flip;
                    }
                },
                |src, dst| {
                    const N: usize = std::mem::size_of::<$t>();
                    let (chunks, _) = dst.as_chunks_mut::<N>();
                    for (s, d) in src.iter().zip(chunks) {
                        *d = (*s ^ $flip).to_be_bytes();
                    }
                }
            );
        }
    };
}

// Unsigned 16/32-bit: stored as signed with BZERO = 2^(n-1); flipping the top
// bit of the raw bits is exactly "stored + BZERO".
int_pixel!(u8, u8, 8, 0.0, "B", 0u8);
int_pixel!(i16, i16, 16, 0.0, "S", 0i16);
int_pixel!(u16, i16, 16, 32768.0, "U", 0x8000u16);
int_pixel!(i32, i32, 32, 0.0, "I", 0i32);
int_pixel!(u32, i32, 32, 2147483648.0, "UI", 0x8000_0000u32);
int_pixel!(i64, i64, 64, 0.0, "L", 0i64);

macro_rules! float_pixel {
    ($t:ty, $bits:ty, $bitpix:expr, $suffix:expr) => {
        impl Pixel for $t {
            const BITPIX: i32 = $bitpix;
            const BZERO: f64 = 0.0;
            const SUFFIX: &'static str = $suffix;
            const SIZE: usize = std::mem::size_of::<$t>();
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            codecs!(
                $t,
                |src, dst| {
                    const N: usize = std::mem::size_of::<$t>();
                    let (chunks, _) = src.as_chunks::<N>();
                    for (d, s) in dst.iter_mut().zip(chunks) {
                        *d = <$t>::from_bits(<$bits>::from_be_bytes(*s));
                    }
                },
                |src, dst| {
                    const N: usize = std::mem::size_of::<$t>();
                    let (chunks, _) = dst.as_chunks_mut::<N>();
                    for (s, d) in src.iter().zip(chunks) {
                        *d = s.to_bits().to_be_bytes();
                    }
                }
            );
        }
    };
}

float_pixel!(f32, u32, -32, "F");
float_pixel!(f64, u64, -64, "D");

/// Decodes stored big-endian values of any `BITPIX` into `f64` (no scaling).
#[allow(dead_code)]
pub(crate) fn decode_stored_f64(bitpix: i32, src: &[u8], dst: &mut [f64]) {
    match bitpix {
        8 => dst.iter_mut().zip(src).for_each(|(d, s)| *d = *s as f64),
        16 => dst
            .iter_mut()
            .zip(src.chunks_exact(2))
            .for_each(|(d, s)| *d = i16::from_be_bytes([s[0], s[1]]) as f64),
        32 => dst
            .iter_mut()
            .zip(src.chunks_exact(4))
            .for_each(|(d, s)| *d = i32::from_be_bytes(s.try_into().expect("4")) as f64),
        64 => dst
            .iter_mut()
            .zip(src.chunks_exact(8))
            .for_each(|(d, s)| *d = i64::from_be_bytes(s.try_into().expect("8")) as f64),
        -32 => dst
            .iter_mut()
            .zip(src.chunks_exact(4))
            .for_each(|(d, s)| *d = f32::from_be_bytes(s.try_into().expect("4")) as f64),
        _ => dst
            .iter_mut()
            .zip(src.chunks_exact(8))
            .for_each(|(d, s)| *d = f64::from_be_bytes(s.try_into().expect("8"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u16_round_trip_uses_bzero() {
        let v = [0u16, 1, 32768, 65535];
        let mut b = [0u8; 8];
        u16::encode_be(&v, &mut b);
        // stored = physical - 32768 as big-endian i16
        assert_eq!(&b[..2], &(-32768i16).to_be_bytes());
        assert_eq!(&b[6..], &(32767i16).to_be_bytes());
        let mut back = [0u16; 4];
        u16::decode_be(&b, &mut back);
        assert_eq!(back, v);
    }

    #[test]
    fn floats_round_trip() {
        let v = [1.5f32, -0.0, f32::INFINITY, 3.25e-7];
        let mut b = [0u8; 16];
        f32::encode_be(&v, &mut b);
        assert_eq!(&b[..4], &1.5f32.to_be_bytes());
        let mut back = [0f32; 4];
        f32::decode_be(&b, &mut back);
        assert_eq!(back, v);
        assert_eq!(u8::from_f64(300.0), 255);
        assert_eq!(i16::from_f64(-2.6), -3);
    }
}
