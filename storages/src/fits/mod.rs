//! FITS: the [`Pixel`] types, header cards, a memory-mapped HDU scanner, a
//! writer, and [`FitsStorage`].

pub mod pixel;

pub use pixel::Pixel;
