//! How times read in journal text: a clock time, a date and time, a length. A leaf that
//! attribution's sentences and the rendered timeline and post-mortem share.

/// "14:29:32" (UTC) from unix milliseconds.
pub fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600 % 24, s / 60 % 60, s % 60)
}

/// "2024-03-05 14:29:32Z" from unix milliseconds (humantime's RFC 3339, with a space
/// for the `T`). A time past the year 9999 (a mangled journal line) shows as the last
/// second humantime can write rather than failing.
pub fn date_time(ms: u64) -> String {
    const LAST_MS: u64 = 253_402_300_799_000; // 9999-12-31 23:59:59Z
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.min(LAST_MS));
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replacen('T', " ", 1)
}

/// "42s", "3m 05s", "2h 10m": a length, to the second below an hour.
pub(super) fn human_duration(ms: u64) -> String {
    let s = ms / 1000;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, _) => format!("{h}h {m:02}m"),
    }
}
