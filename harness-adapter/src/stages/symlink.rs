//! SymLinkStage: creates symbolic links named by policy, with paths filled
//! through location templates.
//!
//! Policy keys (capitalised, as in LSST): `RunMode` (`preprocess` /
//! `postprocess`), `Links` (repeated `{sourcePath, destPath}`), and
//! `parameters.additionalData`. The serial stage links only in the phase named
//! by `RunMode` (never without one); the parallel stage links in `process`
//! unless `RunMode` names a serial phase. Missing parent folders of the link
//! are created; an existing link (or file) at `destPath` is left alone; the
//! source is not checked, so dangling links are allowed.

use std::path::Path;

use crate::additional_data;
use crate::clipboard::Clipboard;
use crate::error::HarnessError;
use crate::location::fill;
use crate::stage::{ParallelStage, SerialStage, StageContext};
use crate::Result;

#[derive(Debug, Clone, Default)]
struct Config {
    run_mode: Option<String>,
    links: Vec<(String, String)>,
    additional: Vec<String>,
}

impl Config {
    fn from(ctx: &StageContext) -> Result<Config> {
        let p = ctx.policy_or_empty();
        let run_mode = if p.exists("RunMode") {
            Some(
                p.get::<String>("RunMode")
                    .map_err(|e| HarnessError::Policy(format!("RunMode: {e}")))?,
            )
        } else {
            None
        };
        let mut links = Vec::new();
        if p.exists("Links") {
            for l in p
                .get_policy_array("Links")
                .map_err(|e| HarnessError::Policy(format!("Links: {e}")))?
            {
                let get = |k: &str| -> Result<String> {
                    l.get::<String>(k)
                        .map_err(|e| HarnessError::Policy(format!("Links.{k}: {e}")))
                };
                links.push((get("sourcePath")?, get("destPath")?));
            }
        }
        Ok(Config {
            run_mode,
            links,
            additional: additional_data::entries(&p, "parameters.additionalData")?,
        })
    }

    fn link(&self, ctx: &StageContext, cb: &Clipboard) -> Result<()> {
        if self.links.is_empty() {
            tracing::warn!(stage = %ctx.name, "No Links found");
            return Ok(());
        }
        let ad = additional_data::create(cb, &self.additional, ctx)?;
        let map = &ctx.services.location_map;
        for (src, dst) in &self.links {
            let src = fill(src, map, &ad)?;
            let dst = fill(dst, map, &ad)?;
            make_link(Path::new(&src), Path::new(&dst))?;
        }
        Ok(())
    }
}

/// Creates `dest` → `src`, creating missing parents of `dest`; an existing
/// `dest` (even a link elsewhere) is left alone.
pub fn make_link(src: &Path, dest: &Path) -> Result<()> {
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| HarnessError::io("create folder", parent, e))?;
    }
    #[cfg(unix)]
    let r = std::os::unix::fs::symlink(src, dest);
    #[cfg(not(unix))]
    let r: std::io::Result<()> = Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "symbolic links need a Unix system",
    ));
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(HarnessError::io("symlink", dest, e)),
    }
}

/// The serial SymLinkStage: links in the phase named by `RunMode`.
#[derive(Debug, Default)]
pub struct SymLinkStageSerial {
    cfg: Config,
}

impl SerialStage for SymLinkStageSerial {
    fn setup(&mut self, ctx: &StageContext) -> Result<()> {
        self.cfg = Config::from(ctx)?;
        Ok(())
    }
    fn preprocess(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        if self.cfg.run_mode.as_deref() == Some("preprocess") {
            self.cfg.link(ctx, cb)?;
        }
        Ok(())
    }
    fn postprocess(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        if self.cfg.run_mode.as_deref() == Some("postprocess") {
            self.cfg.link(ctx, cb)?;
        }
        Ok(())
    }
}

/// The parallel SymLinkStage: links in `process` unless `RunMode` names a
/// serial phase.
#[derive(Debug, Default)]
pub struct SymLinkStageParallel {
    cfg: Config,
}

impl ParallelStage for SymLinkStageParallel {
    fn setup(&mut self, ctx: &StageContext) -> Result<()> {
        self.cfg = Config::from(ctx)?;
        Ok(())
    }
    fn process(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        match self.cfg.run_mode.as_deref() {
            Some("preprocess") | Some("postprocess") => Ok(()),
            _ => self.cfg.link(ctx, cb),
        }
    }
}
