//! File loading shared by the PAF and YAML readers: format detection,
//! include resolution (against the top-level file's folder), cycle detection
//! and size limits.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::error::PolicyError;
use super::{paf, yaml};
use crate::property_set::PropertySet;

/// Largest policy file we read (bytes). Policies are small; this keeps a
/// mistaken `@/dev/zero` from allocating without bound.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Deepest chain of nested includes.
pub const MAX_INCLUDE_DEPTH: usize = 32;

/// Deepest nesting of `{ }` blocks (PAF) or maps and sequences (YAML).
pub const MAX_NESTING: usize = 128;

/// The text formats a policy can be read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// LSST's legacy `.paf` format.
    Paf,
    /// YAML.
    Yaml,
}

impl Format {
    /// The format implied by a file name: `.paf` and `.policy` are PAF; `.yaml`, `.yml` and
    /// `.json` are YAML; anything else is `None`.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            // `.policy` is the DC3-era extension of the same PAF files
            // (pex_harness's tests and examples use it).
            "paf" | "policy" => Some(Format::Paf),
            "yaml" | "yml" | "json" => Some(Format::Yaml),
            _ => None,
        }
    }
}

/// State carried through one load: where includes resolve and which files
/// are being loaded (for cycle detection).
#[derive(Debug)]
pub(crate) struct Loader {
    /// Relative include paths resolve against this folder (the top-level
    /// file's folder, as LSST's `createPolicy(file)` does).
    pub root: PathBuf,
    /// Canonical paths of the files being loaded, outermost first.
    pub chain: Vec<PathBuf>,
}

impl Loader {
    pub fn new(root: PathBuf) -> Self {
        Loader {
            root,
            chain: Vec::new(),
        }
    }

    /// Loads a top-level file.
    pub fn load_top(path: &Path) -> Result<PropertySet, PolicyError> {
        let root = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut loader = Loader::new(root);
        let bytes = read_limited(path).map_err(|source| PolicyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let canon = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        loader.chain.push(canon);
        let format = detect(path, &bytes)?;
        let name = path.display().to_string();
        let out = loader.parse_bytes(&bytes, &name, format);
        loader.chain.pop();
        out
    }

    pub fn parse_bytes(
        &mut self,
        bytes: &[u8],
        source: &str,
        format: Format,
    ) -> Result<PropertySet, PolicyError> {
        let text = utf8(bytes, source)?;
        match format {
            Format::Paf => paf::parse(text, source, self),
            Format::Yaml => yaml::parse(text, source, self),
        }
    }

    /// Resolves and loads an included file (`@path` in PAF, `!include path`
    /// in YAML) named on `line` of `file`.
    pub fn include(
        &mut self,
        target: &str,
        file: &str,
        line: usize,
    ) -> Result<PropertySet, PolicyError> {
        let path = self
            .resolve(target)
            .map_err(|reason| PolicyError::Include {
                file: file.to_string(),
                line,
                target: PathBuf::from(target),
                reason,
            })?;
        let fail = |reason: String| PolicyError::Include {
            file: file.to_string(),
            line,
            target: path.clone(),
            reason,
        };
        let canon = path.canonicalize().map_err(|e| fail(e.to_string()))?;
        if self.chain.contains(&canon) {
            let mut chain = self.chain.clone();
            chain.push(canon);
            return Err(PolicyError::IncludeCycle { chain });
        }
        if self.chain.len() >= MAX_INCLUDE_DEPTH {
            return Err(fail(format!(
                "includes nested deeper than {MAX_INCLUDE_DEPTH} files"
            )));
        }
        let bytes = read_limited(&canon).map_err(|e| fail(e.to_string()))?;
        let format = detect(&path, &bytes).map_err(|e| fail(e.to_string()))?;
        self.chain.push(canon);
        let out = self.parse_bytes(&bytes, &path.display().to_string(), format);
        self.chain.pop();
        out
    }

    /// `path` (relative to the root unless absolute), or the package folder
    /// for an LSST URN (`urn:eupspkg:PKG:[REPOS:]PATH` or `@PKG:[REPOS:]PATH`,
    /// found through the `PKG_DIR` environment variable as EUPS sets it).
    fn resolve(&self, target: &str) -> Result<PathBuf, String> {
        let lowered = target.to_ascii_lowercase();
        let urn = if lowered.starts_with("urn:eupspkg:") {
            Some(&target["urn:eupspkg:".len()..])
        } else {
            target.strip_prefix('@')
        };
        if let Some(rest) = urn {
            let parts: Vec<&str> = rest.split(':').filter(|s| !s.is_empty()).collect();
            let (pkg, repos, file) = match parts.as_slice() {
                [pkg, file] => (*pkg, None, *file),
                [pkg, repos, file] => (*pkg, Some(*repos), *file),
                _ => {
                    return Err(format!(
                        "bad URN {target:?}: expected urn:eupspkg:<product>:[<repository>:]<file>"
                    ))
                }
            };
            let var = format!("{}_DIR", pkg.to_ascii_uppercase());
            let dir = std::env::var_os(&var)
                .ok_or_else(|| format!("URN {target:?} needs ${var}, which is not set"))?;
            let mut p = PathBuf::from(dir);
            if let Some(r) = repos {
                p.push(r);
            }
            p.push(file);
            return Ok(p);
        }
        if target.is_empty() {
            return Err("empty include path".into());
        }
        let p = Path::new(target);
        Ok(if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.root.join(p)
        })
    }
}

/// Reads a regular file of at most [`MAX_FILE_BYTES`].
pub(crate) fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut buf = Vec::with_capacity(meta.len().min(MAX_FILE_BYTES) as usize);
    std::fs::File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    Ok(buf)
}

/// The format of `path`: from its extension, else from a PAF header line.
fn detect(path: &Path, bytes: &[u8]) -> Result<Format, PolicyError> {
    if let Some(f) = Format::from_path(path) {
        return Ok(f);
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(256)]);
    let first = head.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let compact: String = first
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    if compact.starts_with("#<?cfgpaf") {
        return Ok(Format::Paf);
    }
    Err(PolicyError::UnknownFormat {
        path: path.to_path_buf(),
    })
}

/// Checks UTF-8; the error names the line of the first bad byte.
pub(crate) fn utf8<'a>(bytes: &'a [u8], source: &str) -> Result<&'a str, PolicyError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        let start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| start + i);
        PolicyError::Syntax {
            file: source.to_string(),
            line,
            text: String::from_utf8_lossy(&bytes[start..end])
                .trim()
                .to_string(),
            message: "invalid UTF-8".into(),
        }
    })
}
