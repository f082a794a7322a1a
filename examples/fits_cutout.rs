//! A FITS cut-out: read only a 100×50 box of a raw image (the rows it
//! needs, not the whole file), in the image's own (LOCAL) coordinates.
//!
//! ```text
//! cargo run --example fits_cutout
//! ```

use std::path::{Path, PathBuf};

use daf::base::data_id;
use daf::butler::{camera_mapper_factory, Butler, GetOptions, Origin};
use daf::formatters::image::DecoratedImageU;

/// The cut-out's width, height and first pixel.
pub fn run(input: &Path, policy: &Path) -> Result<(usize, usize, u16), Box<dyn std::error::Error>> {
    let mut policies = std::collections::BTreeMap::new();
    policies.insert(
        "lsst.obs.test.testMapper.TestMapper".to_string(),
        policy.to_path_buf(),
    );
    let butler = Butler::builder()
        .input(input)
        .mapper_factory(camera_mapper_factory(policies, None))
        .build()?;
    let cut: DecoratedImageU = butler.get_with(
        "raw",
        &data_id! {visit: 1, filter: "g"},
        &GetOptions::default().bbox(4, 0, 100, 50, Origin::Local),
    )?;
    Ok((cut.image.width(), cut.image.height(), cut.image.get(0, 0)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let (w, h, first) = run(
        &here.join("tests/data/obs_test/input"),
        &here.join("tests/data/obs_test/policy/testMapper.yaml"),
    )?;
    println!("cut-out {w}×{h}, pixel (0, 0) = {first}");
    Ok(())
}
