//! Processing into a rerun: read a raw from the Gen2 input repository,
//! subtract a bias level, and put the result as a `calexp` into an output
//! repository (a "rerun") whose parent is the input. The input is never
//! written; the output reads back what was put, and the raws through its
//! parent.
//!
//! ```text
//! cargo run --example put_rerun [-- OUTPUT_REPO]
//! ```

use std::path::{Path, PathBuf};

use daf::base::data_id;
use daf::butler::{camera_mapper_factory, Butler, RepositoryArgs};
use daf::formatters::image::{DecoratedImageU, ExposureF, ImageF, Mask, MaskedImageF};

/// Puts visit 1's bias-subtracted raw into `rerun`; returns the calexp's
/// path and its first pixel as read back.
pub fn run(
    input: &Path,
    policy: &Path,
    rerun: &Path,
) -> Result<(PathBuf, f32), Box<dyn std::error::Error>> {
    let mut policies = std::collections::BTreeMap::new();
    policies.insert(
        "lsst.obs.test.testMapper.TestMapper".to_string(),
        policy.to_path_buf(),
    );
    // The output uses the input's policy too (recorded in its configuration).
    let mut out = RepositoryArgs::new(rerun).mapper("CameraMapper");
    out.mapper_args.insert(
        "policy".into(),
        policy.to_string_lossy().into_owned().into(),
    );
    let butler = Butler::builder()
        .input(input)
        .output(out)
        .mapper_factory(camera_mapper_factory(policies, None))
        .build()?;
    let id = data_id! {visit: 1, filter: "g"};
    let raw: DecoratedImageU = butler.get("raw", &id)?;
    let (w, h) = (raw.image.width(), raw.image.height());
    let px: Vec<f32> = raw
        .image
        .pixels()
        .iter()
        .map(|&p| f32::from(p) - 967.6)
        .collect();
    let mut calexp = ExposureF::new(MaskedImageF::from_parts(
        ImageF::from_vec(w, h, px)?,
        Mask::new(w, h),
        None,
    )?);
    calexp.exposure_time = Some(raw.metadata.get_as_f64("EXPTIME")?);
    let written = butler.put(&calexp, "calexp", &id)?;
    let back: ExposureF = butler.get("calexp", &id)?;
    Ok((written[0].clone(), back.masked_image.image.get(0, 0)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let tmp = std::env::temp_dir().join(format!("daf-rerun-{}", std::process::id()));
    let rerun = std::env::args_os().nth(1).map(PathBuf::from).unwrap_or(tmp);
    let (path, first) = run(
        &here.join("tests/data/obs_test/input"),
        &here.join("tests/data/obs_test/policy/testMapper.yaml"),
        &rerun,
    )?;
    println!(
        "put calexp visit=1 into {} (pixel (0, 0) = {first})",
        path.display()
    );
    Ok(())
}
