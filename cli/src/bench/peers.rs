//! The peers a user would pick instead of daf, run on the same data in the
//! same `daf bench AREA --peers` run, interleaved with daf's own runs.
//!
//! - C++ Boost.Serialization: `benches/peers/boost_peer.cpp`, compiled with
//!   g++ against the installed Boost at bench time (cached under
//!   `target/peers/`), one process per timed operation, timing inside C++.
//! - cfitsio: the bundled one through the `fitsio` crate, in this process.
//! - astropy, the Gen3 butler (`lsst-daf-butler`) and Python's `sqlite3`:
//!   driver scripts in `benches/peers/*.py` run by the venv Python
//!   (`DAF_PYTHON`) as one long-lived subprocess answering one command per
//!   line, timing inside Python, so interpreter start-up and imports are not
//!   counted.
//! - `psql \copy` (in `daf bench db`).
//!
//! A missing peer is an error naming how to install it: `--peers` never
//! skips silently.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

/// The venv Python: `DAF_PYTHON`, else `~/.cache/daf/venv/bin/python`, else
/// `python3`; it must import every module of `modules`, or the error says
/// how to install them.
pub fn python(modules: &[&str], pip_names: &str) -> Result<PathBuf, String> {
    let candidates: Vec<PathBuf> = match std::env::var_os("DAF_PYTHON") {
        Some(p) if !p.is_empty() => vec![PathBuf::from(p)],
        _ => {
            let mut v = Vec::new();
            if let Some(home) = std::env::var_os("HOME") {
                v.push(PathBuf::from(home).join(".cache/daf/venv/bin/python"));
            }
            v.push(PathBuf::from("python3"));
            v
        }
    };
    let check = format!("import {}", modules.join(", "));
    for py in &candidates {
        let ok = Command::new(py)
            .args(["-c", &check])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Ok(py.clone());
        }
    }
    Err(format!(
        "peer missing: a Python that can `{check}` (tried {}). Install with \
         `python3 -m venv ~/.cache/daf/venv && ~/.cache/daf/venv/bin/pip install {pip_names}` \
         (or run .ci/run) and set DAF_PYTHON to its python",
        candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// A long-lived driver script: one command per line on its stdin, one
/// answer per line on its stdout (`ok ...` or `err ...`).
pub struct PyDriver {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    name: String,
    _script: tempfile::NamedTempFile,
}

impl PyDriver {
    /// Starts `script` (the driver's source) under `python` with `args`.
    pub fn start(python: &Path, name: &str, script: &str, args: &[&str]) -> Result<Self, String> {
        let mut file = tempfile::Builder::new()
            .prefix(&format!("daf-peer-{name}-"))
            .suffix(".py")
            .tempfile()
            .map_err(|e| format!("{name}: temp script: {e}"))?;
        file.write_all(script.as_bytes())
            .map_err(|e| format!("{name}: temp script: {e}"))?;
        let mut child = Command::new(python)
            .arg(file.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("{name}: cannot start {}: {e}", python.display()))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        Ok(PyDriver {
            child,
            stdin,
            stdout,
            name: name.to_string(),
            _script: file,
        })
    }

    /// Sends `cmd`, returns the answer after `ok `.
    pub fn call(&mut self, cmd: &str) -> Result<String, String> {
        writeln!(self.stdin, "{cmd}")
            .and_then(|_| self.stdin.flush())
            .map_err(|e| format!("{}: driver gone ({e})", self.name))?;
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(|e| format!("{}: {e}", self.name))?;
        let line = line.trim_end();
        match line.strip_prefix("ok") {
            Some(rest) => Ok(rest.trim().to_string()),
            None if line.is_empty() => Err(format!("{}: driver exited during `{cmd}`", self.name)),
            None => Err(format!("{}: `{cmd}` failed: {line}", self.name)),
        }
    }

    /// Sends `cmd`, returns the seconds the driver measured.
    pub fn secs(&mut self, cmd: &str) -> Result<f64, String> {
        let s = self.call(cmd)?;
        s.split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| format!("{}: `{cmd}` answered `{s}`, not seconds", self.name))
    }
}

impl Drop for PyDriver {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let t = Instant::now();
        while t.elapsed().as_secs() < 10 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Seconds of one timed run of `f`.
pub fn timed(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

/// Runs the closures in turn (A B C A B C ...) `runs` times after one
/// warm-up round; each returns its own measured seconds. Returns the median
/// seconds of each.
pub fn interleaved<const N: usize>(
    runs: usize,
    mut fs: [&mut dyn FnMut() -> Result<f64, String>; N],
) -> Result<[f64; N], String> {
    for f in fs.iter_mut() {
        f()?;
    }
    let mut times: [Vec<f64>; N] = std::array::from_fn(|_| Vec::with_capacity(runs));
    for _ in 0..runs.max(1) {
        for (f, t) in fs.iter_mut().zip(times.iter_mut()) {
            t.push(f()?);
        }
    }
    Ok(times.map(|mut t| {
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    }))
}

/// Folder for compiled peers: `$CARGO_TARGET_DIR/peers` or `target/peers`
/// of the workspace daf was built from (falls back to the temp folder).
pub fn peers_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("peers");
    if std::fs::create_dir_all(&dir).is_ok() {
        dir
    } else {
        std::env::temp_dir().join("daf-peers")
    }
}

/// Compiles C++ `source` with g++ (`-O2`, linking `libs`) unless a binary of
/// exactly this source is already cached; returns the executable.
pub fn cpp_exe(name: &str, source: &str, libs: &[&str], hint: &str) -> Result<PathBuf, String> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    source.hash(&mut h);
    libs.hash(&mut h);
    let dir = peers_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let exe = dir.join(format!("{name}-{:016x}", h.finish()));
    if exe.is_file() {
        return Ok(exe);
    }
    let src = dir.join(format!("{name}.cpp"));
    std::fs::write(&src, source).map_err(|e| format!("{}: {e}", src.display()))?;
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let out = Command::new("g++")
        .args(["-std=c++17", "-O2", "-o"])
        .arg(&tmp)
        .arg(&src)
        .args(libs.iter().map(|l| format!("-l{l}")))
        .output()
        .map_err(|e| format!("peer missing: g++ ({e}); install with `{hint}`"))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!(
            "peer missing: compiling {name} with g++ failed (install with `{hint}`):\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::rename(&tmp, &exe).map_err(|e| format!("{}: {e}", exe.display()))?;
    Ok(exe)
}

/// Runs a compiled peer once; it prints the seconds it measured.
pub fn run_secs(exe: &Path, args: &[&str]) -> Result<f64, String> {
    let out = Command::new(exe)
        .args(args)
        .output()
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "{} {}: {}{}",
            exe.display(),
            args.join(" "),
            stdout,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    stdout
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{}: printed `{stdout}`, not seconds", exe.display()))
}
