//! Retry policy: exponential backoff with jitter (backon), bounded in
//! attempts, in the delay of each wait, and by the command's deadline.
//!
//! Delay `i` (0-based) is `d = min(base · 2^i, max)` plus a random jitter in
//! `[0, d)`, so it always lies in `[d, 2d)`. Jitter keeps a fleet of nodes that
//! failed together from retrying in lockstep.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// How often and how patiently a step is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Total attempts, the first included (1 = no retry).
    pub attempts: u32,
    /// First delay.
    pub base: Duration,
    /// Cap of the un-jittered delay.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base: Duration::from_secs(1),
            max: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub(crate) fn once() -> Self {
        RetryPolicy {
            attempts: 1,
            ..Self::default()
        }
    }

    /// The delays between attempts: `attempts - 1` values.
    pub(crate) fn delays(&self) -> impl Iterator<Item = Duration> + use<> {
        let retries = self.attempts.saturating_sub(1) as usize;
        ExponentialBuilder::default()
            .with_min_delay(self.base)
            .with_max_delay(self.max.max(self.base))
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(retries)
            .build()
    }

    /// The un-jittered delay before attempt `n + 1` (the tests' bounds).
    #[cfg(test)]
    pub(crate) fn nominal_delay(&self, n: u32) -> Duration {
        let factor = 2f64.powi(n.min(62) as i32);
        let d = self.base.as_secs_f64() * factor;
        Duration::from_secs_f64(d.min(self.max.max(self.base).as_secs_f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn once_never_retries() {
        assert_eq!(RetryPolicy::once().delays().count(), 0);
    }

    #[test]
    fn default_schedule_grows_then_caps() {
        let p = RetryPolicy {
            attempts: 10,
            base: Duration::from_secs(1),
            max: Duration::from_secs(8),
        };
        let nominal: Vec<u64> = (0..9).map(|n| p.nominal_delay(n).as_secs()).collect();
        assert_eq!(nominal, vec![1, 2, 4, 8, 8, 8, 8, 8, 8]);
    }

    proptest! {
        #[test]
        fn delays_are_bounded_and_counted(
            attempts in 1u32..20,
            base_ms in 1u64..5_000,
            max_ms in 1u64..60_000,
        ) {
            let p = RetryPolicy {
                attempts,
                base: Duration::from_millis(base_ms),
                max: Duration::from_millis(max_ms),
            };
            let delays: Vec<Duration> = p.delays().collect();
            prop_assert_eq!(delays.len() as u32, attempts - 1);
            for (i, d) in delays.iter().enumerate() {
                let nominal = p.nominal_delay(i as u32);
                // Jitter adds [0, nominal): never below, always below twice.
                let tol = Duration::from_micros(50);
                prop_assert!(*d + tol >= nominal, "delay {i} {d:?} < nominal {nominal:?}");
                prop_assert!(*d <= nominal * 2 + tol, "delay {i} {d:?} > 2x nominal {nominal:?}");
                prop_assert!(*d <= p.max.max(p.base) * 2 + tol);
            }
        }

        #[test]
        fn nominal_delays_never_shrink(attempts in 2u32..30, base_ms in 1u64..2_000, max_ms in 1u64..60_000) {
            let p = RetryPolicy { attempts, base: Duration::from_millis(base_ms), max: Duration::from_millis(max_ms) };
            for n in 1..attempts {
                prop_assert!(p.nominal_delay(n) >= p.nominal_delay(n - 1));
            }
        }
    }
}
