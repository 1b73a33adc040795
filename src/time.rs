//! Wall-clock helpers: tokens and stores speak Unix seconds and milliseconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Seconds since the Unix epoch, for `exp`, `nbf` and `iat`.
///
/// On Linux this reads `CLOCK_REALTIME_COARSE` (a few milliseconds behind
/// at most, far inside any leeway): it costs about 5 ns against about 29 ns
/// for `SystemTime::now`, and every authenticated request asks.
#[cfg(target_os = "linux")]
pub(crate) fn now_secs() -> i64 {
    use rustix::time::{ClockId, clock_gettime};
    clock_gettime(ClockId::RealtimeCoarse).tv_sec
}

/// Seconds since the Unix epoch, for `exp`, `nbf` and `iat`.
#[cfg(not(target_os = "linux"))]
pub(crate) fn now_secs() -> i64 {
    now_millis() / 1000
}

#[cfg(test)]
mod tests {
    use super::{now_millis, now_secs};

    #[test]
    fn seconds_agree_with_the_precise_clock() {
        let before = now_millis() / 1000;
        let secs = now_secs();
        let after = now_millis() / 1000;
        // The coarse clock may trail by one tick (a few ms) across a second.
        assert!(
            secs >= before - 1 && secs <= after,
            "{before} {secs} {after}"
        );
    }
}
