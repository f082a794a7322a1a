//! Which process owns a temporary file or a pending write, and whether it
//! is still alive.
//!
//! Every temporary file daf writes ([`AtomicFile`](crate::atomic::AtomicFile)
//! temporaries and the butler's staging files) carries the [`token`] of the
//! process that made it: `p<pid>s<start time>@<host>`. A repair
//! (`daf verify --repair`) removes a temporary file, or resolves a pending
//! put, only when [`liveness`] says its owner is [`Liveness::Dead`]: same
//! host, and no process with that pid and start time (so a reused pid does
//! not keep garbage alive, and a live writer's files are never touched).
//! Owners on other hosts are [`Liveness::Unknown`] and left alone.
//!
//! ```
//! use daf_storages::owner::{liveness, token, Liveness};
//! assert_eq!(liveness(token()), Liveness::Alive);
//! assert_eq!(liveness("p1s1@some-other-host"), Liveness::Unknown);
//! ```

use std::sync::OnceLock;

/// Whether the owner of a token is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The owner is this process or another running process on this host.
    Alive,
    /// The owner ran on this host and is gone.
    Dead,
    /// The owner ran on another host (or the token cannot be read).
    Unknown,
}

/// This host's name with every character other than ASCII letters, digits
/// and `-` replaced by `_` (so a token holds no `.` or `/`).
fn host() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_else(|_| "localhost".into());
    let h: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if h.is_empty() {
        "localhost".into()
    } else {
        h
    }
}

/// The start time of process `pid` (clock ticks since boot, from
/// `/proc/PID/stat`); `None` if there is no such process. On systems
/// without `/proc`, `Some(0)` for every pid (owners are then never
/// considered dead).
fn start_time(pid: u32) -> Option<u64> {
    if !std::path::Path::new("/proc/self/stat").exists() {
        return Some(0);
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// This process's owner token, `p<pid>s<start time>@<host>`.
pub fn token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let pid = std::process::id();
        format!("p{pid}s{}@{}", start_time(pid).unwrap_or(0), host())
    })
}

/// Parses a token into (pid, start time, host).
fn parse(token: &str) -> Option<(u32, u64, &str)> {
    let rest = token.strip_prefix('p')?;
    let (ids, host) = rest.split_once('@')?;
    let (pid, start) = ids.split_once('s')?;
    Some((pid.parse().ok()?, start.parse().ok()?, host))
}

/// Whether the process that made `token` is running (see the module docs).
pub fn liveness(token: &str) -> Liveness {
    let Some((pid, start, h)) = parse(token) else {
        return Liveness::Unknown;
    };
    static HOST: OnceLock<String> = OnceLock::new();
    if h != HOST.get_or_init(host) {
        return Liveness::Unknown;
    }
    match start_time(pid) {
        Some(s) if s == start => Liveness::Alive,
        _ => Liveness::Dead,
    }
}

/// The owner token in the name of a daf temporary file, if `name` is one:
/// an [`AtomicFile`](crate::atomic::AtomicFile) temporary
/// (`.NAME.TOKEN.RANDOM.daf-tmp`) or a butler staging file
/// (`.daf-tmp.TOKEN.N.NAME`). `Some(None)` for a temporary file without a
/// readable token (written by an older daf).
pub fn temp_file_owner(name: &str) -> Option<Option<&str>> {
    if let Some(rest) = name.strip_prefix(".daf-tmp.") {
        return Some(rest.split('.').next().filter(|t| parse(t).is_some()));
    }
    let stem = name.strip_suffix(".daf-tmp")?;
    let mut parts = stem.rsplit('.');
    let _random = parts.next();
    Some(parts.next().filter(|t| parse(t).is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_names() {
        let t = token();
        assert!(parse(t).is_some(), "{t}");
        assert!(!t.contains('.') && !t.contains('/'));
        assert_eq!(liveness(t), Liveness::Alive);
        let (_, start, h) = parse(t).unwrap();
        // pid 0 never runs a user process; a wrong start time is a reused pid
        assert_eq!(liveness(&format!("p4000000s{start}@{h}")), Liveness::Dead);
        assert_eq!(
            liveness(&format!("p{}s{}@{h}", std::process::id(), start + 1)),
            Liveness::Dead
        );
        assert_eq!(liveness("garbage"), Liveness::Unknown);
        let a = format!(".v1.json.{t}.Ab12Cd.daf-tmp");
        assert_eq!(temp_file_owner(&a), Some(Some(t)));
        let s = format!(".daf-tmp.{t}.7.v1.fits.gz");
        assert_eq!(temp_file_owner(&s), Some(Some(t)));
        assert_eq!(temp_file_owner(".v1.json.Ab12Cd.daf-tmp"), Some(None));
        assert_eq!(temp_file_owner("v1.json"), None);
    }
}
