//! Reading from a Gen2 repository: the obs_test raws of `tests/data`,
//! through their CameraMapper policy, with a data id completed from the
//! repository's `registry.sqlite3` (`visit=1` finds `filter=g`).
//!
//! ```text
//! cargo run --example gen2_get [-- INPUT_REPO POLICY]
//! ```

use std::path::{Path, PathBuf};

use daf::base::data_id;
use daf::butler::{camera_mapper_factory, Butler};
use daf::formatters::image::DecoratedImageU;

/// What the example prints: width, height, mean pixel value and EXPTIME.
pub fn run(
    input: &Path,
    policy: &Path,
) -> Result<(usize, usize, f64, f64), Box<dyn std::error::Error>> {
    // The legacy repository names its mapper by Python class path; map it to
    // the policy file that describes it.
    let mut policies = std::collections::BTreeMap::new();
    policies.insert(
        "lsst.obs.test.testMapper.TestMapper".to_string(),
        policy.to_path_buf(),
    );
    let butler = Butler::builder()
        .input(input)
        .mapper_factory(camera_mapper_factory(policies, None))
        .build()?;
    let raw: DecoratedImageU = butler.get("raw", &data_id! {visit: 1})?;
    let pixels = raw.image.pixels();
    let mean = pixels.iter().map(|&p| f64::from(p)).sum::<f64>() / pixels.len() as f64;
    let exptime = raw.metadata.get_as_f64("EXPTIME")?;
    Ok((raw.image.width(), raw.image.height(), mean, exptime))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let input = args
        .next()
        .unwrap_or_else(|| here.join("tests/data/obs_test/input"));
    let policy = args
        .next()
        .unwrap_or_else(|| here.join("tests/data/obs_test/policy/testMapper.yaml"));
    let (w, h, mean, exptime) = run(&input, &policy)?;
    println!("raw visit=1: {w}×{h} pixels, mean {mean:.2}, EXPTIME {exptime}");
    Ok(())
}
