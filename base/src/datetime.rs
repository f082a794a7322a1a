//! [`DateTime`]: an instant in nanoseconds, with TAI and UTC views and ISO-8601 text.
//!
//! Internally the instant is nanoseconds since 1970-01-01T00:00:00 **TAI**
//! (as LSST's `DateTime`). UTC conversion uses the IERS leap-second table
//! (TAI−UTC = 10 s from 1972-01-01 to 37 s since 2017-01-01); instants before
//! 1972 use 10 s (the pre-1972 rubber-second era is not modelled).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A time scale for reading or writing a [`DateTime`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timescale {
    /// International Atomic Time.
    Tai,
    /// Coordinated Universal Time (with leap seconds).
    Utc,
}

/// An instant with nanosecond resolution.
///
/// ```
/// use daf_base::{DateTime, Timescale};
/// let t: DateTime = "2017-01-01T00:00:00Z".parse().unwrap();
/// assert_eq!(t.nsecs(Timescale::Utc), 1_483_228_800_000_000_000);
/// assert_eq!(t.nsecs(Timescale::Tai), 1_483_228_837_000_000_000);
/// assert_eq!(t.to_iso(Timescale::Utc), "2017-01-01T00:00:00.000000000Z");
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct DateTime {
    tai_nsecs: i64,
}

/// (UTC Unix seconds at which the offset starts, TAI−UTC in seconds).
const LEAP: &[(i64, i64)] = &[
    (63_072_000, 10),    // 1972-01-01
    (78_796_800, 11),    // 1972-07-01
    (94_694_400, 12),    // 1973-01-01
    (126_230_400, 13),   // 1974-01-01
    (157_766_400, 14),   // 1975-01-01
    (189_302_400, 15),   // 1976-01-01
    (220_924_800, 16),   // 1977-01-01
    (252_460_800, 17),   // 1978-01-01
    (283_996_800, 18),   // 1979-01-01
    (315_532_800, 19),   // 1980-01-01
    (362_793_600, 20),   // 1981-07-01
    (394_329_600, 21),   // 1982-07-01
    (425_865_600, 22),   // 1983-07-01
    (489_024_000, 23),   // 1985-07-01
    (567_993_600, 24),   // 1988-01-01
    (631_152_000, 25),   // 1990-01-01
    (662_688_000, 26),   // 1991-01-01
    (709_948_800, 27),   // 1992-07-01
    (741_484_800, 28),   // 1993-07-01
    (773_020_800, 29),   // 1994-07-01
    (820_454_400, 30),   // 1996-01-01
    (867_715_200, 31),   // 1997-07-01
    (915_148_800, 32),   // 1999-01-01
    (1_136_073_600, 33), // 2006-01-01
    (1_230_768_000, 34), // 2009-01-01
    (1_341_100_800, 35), // 2012-07-01
    (1_435_708_800, 36), // 2015-07-01
    (1_483_228_800, 37), // 2017-01-01
];

const NS: i64 = 1_000_000_000;

fn offset_for_utc_secs(utc_secs: i64) -> i64 {
    match LEAP.iter().rposition(|&(start, _)| utc_secs >= start) {
        Some(i) => LEAP[i].1,
        None => 10,
    }
}

fn offset_for_tai_secs(tai_secs: i64) -> i64 {
    match LEAP
        .iter()
        .rposition(|&(start, off)| tai_secs >= start + off)
    {
        Some(i) => LEAP[i].1,
        None => 10,
    }
}

/// If `tai_secs` lies inside a positive leap second, the UTC second
/// (Unix time) that the leap second follows (its `23:59:59`).
fn leap_second_at(tai_secs: i64) -> Option<i64> {
    LEAP.windows(2)
        .find(|w| w[1].0 + w[0].1 == tai_secs && w[1].1 == w[0].1 + 1)
        .map(|w| w[1].0 - 1)
}

fn is_leap_year(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(y) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Error parsing an ISO-8601 date-time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ISO-8601 date-time {text:?}: {reason}")]
pub struct DateTimeParseError {
    /// The text that failed to parse.
    pub text: String,
    /// What was wrong.
    pub reason: &'static str,
}

impl DateTime {
    /// From nanoseconds since the 1970 epoch in the given scale.
    pub fn from_nsecs(nsecs: i64, scale: Timescale) -> DateTime {
        match scale {
            Timescale::Tai => DateTime { tai_nsecs: nsecs },
            Timescale::Utc => {
                let secs = nsecs.div_euclid(NS);
                DateTime {
                    tai_nsecs: nsecs.saturating_add(offset_for_utc_secs(secs) * NS),
                }
            }
        }
    }

    /// Nanoseconds since the 1970 epoch in the given scale.
    pub fn nsecs(&self, scale: Timescale) -> i64 {
        match scale {
            Timescale::Tai => self.tai_nsecs,
            Timescale::Utc => {
                let secs = self.tai_nsecs.div_euclid(NS);
                self.tai_nsecs
                    .saturating_sub(offset_for_tai_secs(secs) * NS)
            }
        }
    }

    /// From a calendar date and time of day in the given scale.
    /// Returns `None` for out-of-range fields, including a day past the end
    /// of its month. Second 60 is accepted only in UTC, at the end of a day
    /// that had a leap second (e.g. `2016-12-31T23:59:60`).
    #[allow(clippy::too_many_arguments)]
    pub fn from_calendar(
        year: i64,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
        nanosecond: u32,
        scale: Timescale,
    ) -> Option<DateTime> {
        if !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || minute > 59
            || second > 60
            || nanosecond >= 1_000_000_000
            || !(-200_000..=200_000).contains(&year)
            || day > days_in_month(year, month)
        {
            return None;
        }
        if second == 60 {
            // The leap second: one TAI second after 23:59:59 of that day.
            let before =
                DateTime::from_calendar(year, month, day, hour, minute, 59, nanosecond, scale)?;
            let utc_secs = before.nsecs(Timescale::Utc).div_euclid(NS);
            let leap_follows = scale == Timescale::Utc
                && LEAP
                    .windows(2)
                    .any(|w| w[1].0 == utc_secs + 1 && w[1].1 == w[0].1 + 1);
            return leap_follows.then(|| DateTime {
                tai_nsecs: before.tai_nsecs + NS,
            });
        }
        let days = days_from_civil(year, i64::from(month), i64::from(day));
        let secs =
            days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
        let ns = secs.checked_mul(NS)?.checked_add(i64::from(nanosecond))?;
        Some(DateTime::from_nsecs(ns, scale))
    }

    /// Modified Julian Date in the given scale.
    pub fn mjd(&self, scale: Timescale) -> f64 {
        self.nsecs(scale) as f64 / 86_400e9 + 40_587.0
    }

    /// ISO-8601 text with nanoseconds: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` for UTC,
    /// the same with no `Z` for TAI. An instant inside a leap second reads
    /// `23:59:60.…Z` in UTC (while [`DateTime::nsecs`] in UTC, like Unix
    /// time, gives it the value of the following second).
    pub fn to_iso(&self, scale: Timescale) -> String {
        let frac = self.tai_nsecs.rem_euclid(NS);
        let leap = match scale {
            Timescale::Utc => leap_second_at(self.tai_nsecs.div_euclid(NS)),
            Timescale::Tai => None,
        };
        let secs = match leap {
            Some(before) => before,
            None => self.nsecs(scale).div_euclid(NS),
        };
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400);
        let z = if scale == Timescale::Utc { "Z" } else { "" };
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}{z}",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60 + i64::from(leap.is_some())
        )
    }

    /// Parses ISO-8601 `YYYY-MM-DD[THH:MM:SS[.fffffffff]][Z]`; a trailing `Z`
    /// means UTC, otherwise `scale` is used.
    pub fn parse_iso(text: &str, scale: Timescale) -> Result<DateTime, DateTimeParseError> {
        let err = |reason| DateTimeParseError {
            text: text.to_string(),
            reason,
        };
        let (body, scale) = match text.strip_suffix('Z') {
            Some(b) => (b, Timescale::Utc),
            None => (text, scale),
        };
        let (date, time) = match body.split_once(['T', ' ']) {
            Some((d, t)) => (d, Some(t)),
            None => (body, None),
        };
        let mut dp = date.splitn(3, '-');
        let num = |s: Option<&str>, what| -> Result<i64, DateTimeParseError> {
            let s = s.ok_or_else(|| err(what))?;
            if s.is_empty() || s.len() > 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err(what));
            }
            s.parse().map_err(|_| err(what))
        };
        let y = num(dp.next(), "bad year")?;
        let mo = num(dp.next(), "bad month")?;
        let d = num(dp.next(), "bad day")?;
        let (mut h, mut mi, mut s, mut nsec) = (0, 0, 0, 0u32);
        if let Some(t) = time {
            let (hms, frac) = match t.split_once('.') {
                Some((a, b)) => (a, Some(b)),
                None => (t, None),
            };
            let mut tp = hms.splitn(3, ':');
            h = num(tp.next(), "bad hour")?;
            mi = num(tp.next(), "bad minute")?;
            s = num(tp.next(), "bad second")?;
            if let Some(f) = frac {
                if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err("bad fraction of a second"));
                }
                let padded = format!("{f:0<9}");
                nsec = padded
                    .parse()
                    .map_err(|_| err("bad fraction of a second"))?;
            }
        }
        let cvt = |v: i64| u32::try_from(v).map_err(|_| err("field out of range"));
        DateTime::from_calendar(
            y,
            cvt(mo)?,
            cvt(d)?,
            cvt(h)?,
            cvt(mi)?,
            cvt(s)?,
            nsec,
            scale,
        )
        .ok_or_else(|| err("field out of range"))
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_iso(Timescale::Utc))
    }
}

impl FromStr for DateTime {
    type Err = DateTimeParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DateTime::parse_iso(s, Timescale::Utc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_tai_offsets() {
        let t = DateTime::from_nsecs(0, Timescale::Utc);
        assert_eq!(t.nsecs(Timescale::Tai), 10 * NS);
        let t = DateTime::from_calendar(2009, 1, 1, 0, 0, 0, 0, Timescale::Utc).unwrap();
        assert_eq!(t.nsecs(Timescale::Tai) - t.nsecs(Timescale::Utc), 34 * NS);
        let t = DateTime::from_calendar(2008, 12, 31, 23, 59, 59, 0, Timescale::Utc).unwrap();
        assert_eq!(t.nsecs(Timescale::Tai) - t.nsecs(Timescale::Utc), 33 * NS);
    }

    #[test]
    fn iso_round_trip() {
        let t = DateTime::parse_iso("2020-02-29T12:34:56.123456789Z", Timescale::Tai).unwrap();
        assert_eq!(t.to_iso(Timescale::Utc), "2020-02-29T12:34:56.123456789Z");
        let tai = t.to_iso(Timescale::Tai);
        assert_eq!(tai, "2020-02-29T12:35:33.123456789");
        assert_eq!(DateTime::parse_iso(&tai, Timescale::Tai).unwrap(), t);
        assert!(DateTime::parse_iso("2020-13-01", Timescale::Utc).is_err());
        assert!(DateTime::parse_iso("x", Timescale::Utc).is_err());
        let before = DateTime::parse_iso("1960-06-15T01:02:03Z", Timescale::Utc).unwrap();
        assert_eq!(
            before.to_iso(Timescale::Utc),
            "1960-06-15T01:02:03.000000000Z"
        );
    }

    #[test]
    fn mjd() {
        let t = DateTime::parse_iso("1970-01-01T00:00:00Z", Timescale::Utc).unwrap();
        assert_eq!(t.mjd(Timescale::Utc), 40_587.0);
    }
}
