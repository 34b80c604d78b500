//! Time: the real Unix clock this crate decides with, the 60-second margin,
//! and the Python package's clock, which the cache files share.
//!
//! CARTO's Python `carto-auth` 0.2.0 stores `expiration =
//! int((datetime.utcnow() + timedelta(seconds=expires_in)).timestamp())` and
//! calls a token expired when `datetime.utcnow().timestamp() > expiration`.
//! `utcnow()` is a naive UTC wall time and `.timestamp()` reads a naive time
//! as *local* time, so its numbers are the real Unix time shifted by the
//! local UTC offset at that wall time (DST included): +5 h in New York in
//! winter, -1 h in Madrid, -5 h 30 in Kolkata. It is consistent with itself
//! on one machine, so this crate writes `expiration` in that convention
//! (for the local zone at write time) and keeps the true Unix time in a key
//! of its own.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tz::TimeZone;

/// A token counts as expired this many seconds before its expiration, so that
/// a token handed out is not dead on arrival at the API.
pub const EXPIRY_MARGIN_SECS: i64 = 60;

/// The expiration of a token that does not say when it expires (one given
/// as is): taken as good, the API will say otherwise.
pub(crate) const NO_EXPIRY: i64 = i64::MAX;

/// A number of seconds as JSON carries it (`exp`, `expires_in`, a cache's
/// `expiration`): an integer, or a float as Python may write one, truncated.
pub(crate) fn json_seconds(value: &Value) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

/// Seconds since the Unix epoch: the real epoch on every machine, unlike the
/// Python package's clock.
pub(crate) fn now_unix() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// Whether a token expiring at `expiration` (Unix seconds) is expired at
/// `now`, margin included.
///
/// ```
/// use carto_auth::is_expired_at;
/// assert!(!is_expired_at(1_000, 939));
/// assert!(is_expired_at(1_000, 940)); // 60 s margin
/// ```
pub fn is_expired_at(expiration: i64, now: i64) -> bool {
    now.saturating_add(EXPIRY_MARGIN_SECS) >= expiration
}

/// "expires in 23 h 41 min", "expires in 40 s", "expired", or "no known
/// expiry" for [`NO_EXPIRY`].
pub(crate) fn describe_expiry(expiration: i64, now: i64) -> String {
    if expiration == NO_EXPIRY {
        return "no known expiry".into();
    }
    let left = expiration.saturating_sub(now);
    if left <= 0 {
        return "expired".into();
    }
    let (h, m, s) = (left / 3600, left % 3600 / 60, left % 60);
    match (h, m) {
        (0, 0) => format!("expires in {s} s"),
        (0, m) => format!("expires in {m} min"),
        (h, m) => format!("expires in {h} h {m} min"),
    }
}

/// The machine's zone as the Python package sees it, through the C
/// library's `localtime`: `TZ` (a zone name, a `:file` or a POSIX rule),
/// else `/etc/localtime`, from the system zone database. An empty or unknown
/// `TZ` behaves as UTC, as it does for glibc.
pub(crate) fn local_zone() -> TimeZone {
    let zone = match std::env::var_os("TZ") {
        None => TimeZone::local(),
        Some(tz) => match tz.to_str() {
            Some(tz) if !tz.trim().is_empty() => TimeZone::from_posix_tz(tz),
            _ => Ok(TimeZone::utc()),
        },
    };
    zone.unwrap_or_else(|_| TimeZone::utc())
}

/// `zone`'s offset from UTC at the real time `real`, in seconds.
fn offset_at(real: i64, zone: &TimeZone) -> i64 {
    zone.find_local_time_type(real)
        .map_or(0, |t| i64::from(t.ut_offset()))
}

/// The wall time of `zone` at the real time `u`, as seconds (what CPython
/// calls `local(u)`).
fn wall_at(u: i64, zone: &TimeZone) -> i64 {
    u.saturating_add(offset_at(u, zone))
}

/// The number the Python package uses for the real Unix time `real` in
/// `zone`: the UTC wall time of `real`, read as a wall time of `zone` by
/// `datetime.timestamp()` with `fold=0`.
///
/// This follows CPython's own search (`local_to_seconds` in
/// `_datetimemodule.c`) rather than a library's rule for ambiguous times,
/// so that the hour a DST change skips or repeats comes out as Python's
/// does: try the offset at the wall time, then the other offset of the
/// day; in a fold the earlier solution wins, in a gap the later number.
pub(crate) fn to_python(real: i64, zone: &TimeZone) -> i64 {
    const DAY: i64 = 24 * 3600;
    let wall = real;
    let first_offset = wall_at(wall, zone).saturating_sub(wall);
    let first = wall.saturating_sub(first_offset);
    let first_solves = wall_at(first, zone) == wall;
    let other_offset = if first_solves {
        // One solution; an earlier one exists only if the offset a day
        // before differs (a fold).
        let earlier = first.saturating_sub(DAY);
        let offset = wall_at(earlier, zone).saturating_sub(earlier);
        if offset == first_offset {
            return first;
        }
        offset
    } else {
        wall_at(first, zone).saturating_sub(first)
    };
    let second = wall.saturating_sub(other_offset);
    if wall_at(second, zone) == wall {
        second
    } else if first_solves {
        first
    } else {
        // Neither offset solves it: the wall time is in a gap.
        first.max(second)
    }
}

/// The real Unix time of a number the Python package wrote in `zone`: its
/// wall time in `zone`, read as UTC. The inverse of [`to_python`] (outside
/// the hour a DST gap skips).
pub(crate) fn from_python(python: i64, zone: &TimeZone) -> i64 {
    wall_at(python, zone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str) -> TimeZone {
        TimeZone::from_posix_tz(name).expect("the system zone database (tzdata)")
    }

    /// 2026-01-15 12:00:00 UTC and 2026-07-15 12:00:00 UTC.
    const WINTER: i64 = 1_768_478_400;
    const SUMMER: i64 = 1_784_116_800;

    #[test]
    fn python_numbers_are_shifted_by_the_offset_at_that_wall_time() {
        let h = 3600;
        for (name, winter, summer) in [
            ("UTC", 0, 0),
            ("America/New_York", 5 * h, 4 * h),
            ("Europe/Madrid", -h, -2 * h),
            ("Asia/Kolkata", -(5 * h + 30 * 60), -(5 * h + 30 * 60)),
        ] {
            let z = zone(name);
            assert_eq!(to_python(WINTER, &z) - WINTER, winter, "{name} winter");
            assert_eq!(to_python(SUMMER, &z) - SUMMER, summer, "{name} summer");
            assert_eq!(from_python(to_python(WINTER, &z), &z), WINTER, "{name}");
            assert_eq!(from_python(to_python(SUMMER, &z), &z), SUMMER, "{name}");
        }
    }

    #[test]
    fn dst_edges_resolve_as_python_fold_zero() {
        let ny = zone("America/New_York");
        // Values computed with CPython 3.11 under TZ=America/New_York:
        // int(datetime(2026, 3, 8, 2, 30).timestamp()) (a gap) and
        // int(datetime(2026, 11, 1, 1, 30).timestamp()) (a fold).
        let gap_wall_as_utc = 1_772_937_000; // 2026-03-08T02:30:00Z
        assert_eq!(to_python(gap_wall_as_utc, &ny), 1_772_955_000);
        let fold_wall_as_utc = 1_793_496_600; // 2026-11-01T01:30:00Z
        assert_eq!(to_python(fold_wall_as_utc, &ny), 1_793_511_000);

        // The same under TZ="EST5EDT,M3.2.0,M11.1.0", a POSIX rule with no
        // zone file, and under Australia/Lord_Howe, whose DST is 30 min:
        // int(datetime(2026, 10, 4, 2, 15).timestamp()) (a gap) and
        // int(datetime(2026, 4, 5, 1, 45).timestamp()) (a fold).
        let rule = TimeZone::from_posix_tz("EST5EDT,M3.2.0,M11.1.0").expect("a POSIX rule");
        assert_eq!(to_python(gap_wall_as_utc, &rule), 1_772_955_000);
        assert_eq!(to_python(fold_wall_as_utc, &rule), 1_793_511_000);
        let lord_howe = zone("Australia/Lord_Howe");
        assert_eq!(to_python(1_791_080_100, &lord_howe), 1_791_042_300);
        assert_eq!(to_python(1_775_353_500, &lord_howe), 1_775_313_900);
        assert_eq!(from_python(1_775_313_900, &lord_howe), 1_775_353_500);
    }

    #[test]
    fn expiry_has_a_sixty_second_margin() {
        assert!(!is_expired_at(10_000, 10_000 - 61));
        assert!(is_expired_at(10_000, 10_000 - 60));
        assert!(is_expired_at(10_000, 10_001));
        assert!(!is_expired_at(i64::MAX, i64::MAX - 61));
        assert!(is_expired_at(i64::MIN, i64::MAX));
    }

    #[test]
    fn expiry_reads_like_a_person_would_say_it() {
        assert_eq!(
            describe_expiry(100 + 23 * 3600 + 41 * 60 + 5, 100),
            "expires in 23 h 41 min"
        );
        assert_eq!(describe_expiry(100 + 5 * 60, 100), "expires in 5 min");
        assert_eq!(describe_expiry(140, 100), "expires in 40 s");
        assert_eq!(describe_expiry(100, 100), "expired");
        assert_eq!(describe_expiry(0, 100), "expired");
    }

    /// Zones east and west of UTC, and UTC, as POSIX TZ strings (no zone
    /// database needed).
    const ZONES: [&str; 4] = ["<+0530>-5:30", "<-08>8", "<+14>-14", "UTC0"];

    #[test]
    fn now_is_the_real_epoch() {
        // A clock that returned a local-time number would be off by the
        // zone's offset: this test runs itself again in a child under each
        // zone, and the child compares the clock with the time the kernel
        // stamps on a file it makes.
        let test = "clock::tests::now_is_the_real_epoch";
        if let Ok(zone) = std::env::var("CARTO_AUTH_TEST_ZONE") {
            let file = tempfile::NamedTempFile::new().unwrap();
            let stamped = file
                .as_file()
                .metadata()
                .and_then(|m| m.modified())
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            let now = now_unix();
            assert!(
                (now - stamped).abs() <= 60,
                "TZ={zone}: now_unix() = {now}, the kernel's clock = {stamped}"
            );
            return;
        }
        for zone in ZONES {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([test, "--exact", "--test-threads=1"])
                .env("TZ", zone)
                .env("CARTO_AUTH_TEST_ZONE", zone)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("1 passed"),
                "TZ={zone}: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
