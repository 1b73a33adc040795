//! Counters for operators, through the [`metrics`](https://docs.rs/metrics)
//! facade (feature `metrics`), so any exporter (Prometheus, StatsD, ...) plugs
//! in with its recorder. Without the feature every call here compiles to
//! nothing; with it and no recorder installed, each is one atomic load. None
//! is on the cached-token path of the layer.
//!
//! | counter | labels |
//! |---|---|
//! | `authkit_signins_total` | `outcome`: `success`, `failure`, `rate_limited` |
//! | `authkit_signups_total` | |
//! | `authkit_rate_limited_total` | `limit`: the kind of key (`signin:login`, `signin:ip`, `signup:ip`, `reset:ip`, `codes:wrong`, `codes:sent`, `mail:to`) |
//! | `authkit_refreshes_total` | `outcome`: `success`, `invalid`, `reuse` |
//! | `authkit_revocations_total` | the sessions ended, any cause |
//! | `authkit_mail_total` | `kind`; `outcome`: `sent`, `capped`, `failed` |

/// Counts `n` under `name` with `labels`.
#[cfg(feature = "metrics")]
macro_rules! count {
    ($name:literal $(, $key:literal => $value:expr)* ; $n:expr) => {
        ::metrics::counter!($name $(, $key => $value)*).increment($n)
    };
}

#[cfg(not(feature = "metrics"))]
macro_rules! count {
    ($name:literal $(, $key:literal => $value:expr)* ; $n:expr) => {{
        $(let _ = $value;)*
        let _ = $n;
    }};
}

pub(crate) fn signin(outcome: &'static str) {
    count!("authkit_signins_total", "outcome" => outcome; 1);
}

pub(crate) fn signup() {
    count!("authkit_signups_total"; 1);
}

/// A refused reservation of `key` (`kind:sub:value`; the value, which may
/// be user input, never becomes a label).
pub(crate) fn rate_limited(key: &str) {
    #[cfg(feature = "metrics")]
    {
        let kind: Vec<&str> = key.splitn(3, ':').take(2).collect();
        count!("authkit_rate_limited_total", "limit" => kind.join(":"); 1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = key;
}

pub(crate) fn refresh(outcome: &'static str) {
    count!("authkit_refreshes_total", "outcome" => outcome; 1);
}

pub(crate) fn revocations(n: usize) {
    count!("authkit_revocations_total"; n as u64);
}

pub(crate) fn mail(kind: &'static str, outcome: &'static str) {
    count!("authkit_mail_total", "kind" => kind, "outcome" => outcome; 1);
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    #[test]
    fn counters_reach_the_installed_recorder() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            super::signin("failure");
            super::signin("failure");
            super::revocations(3);
        });
        let counts: Vec<(String, Vec<String>, u64)> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(key, _, _, value)| match value {
                DebugValue::Counter(n) => Some((
                    key.key().name().to_owned(),
                    key.key()
                        .labels()
                        .map(|l| format!("{}={}", l.key(), l.value()))
                        .collect(),
                    n,
                )),
                _ => None,
            })
            .collect();
        assert!(counts.contains(&(
            "authkit_signins_total".into(),
            vec!["outcome=failure".into()],
            2
        )));
        assert!(counts.contains(&("authkit_revocations_total".into(), vec![], 3)));
    }
}
