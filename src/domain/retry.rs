//! The retry schedule: the n-th retry waits `min(BASE × FACTOR^(n-1), CAP)` ± 20 %.

use backon::{BackoffBuilder, ExponentialBuilder};
use std::time::Duration;

/// How far a delay may be moved by jitter, either way.
pub const JITTER: f64 = 0.2;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    base: Duration,
    factor: f32,
    cap: Duration,
}

impl RetryPolicy {
    pub fn new(base: Duration, factor: f32, cap: Duration) -> Self {
        RetryPolicy { base, factor, cap }
    }

    /// The n-th retry's delay (n ≥ 1) before jitter. backon's exponential builder (without its
    /// own jitter, which only ever adds) gives `min(base × factor^(n-1), cap)`.
    pub fn base_delay(&self, n: u32) -> Duration {
        let n = n.max(1) as usize;
        ExponentialBuilder::default()
            .with_min_delay(self.base)
            .with_factor(self.factor)
            .with_max_delay(self.cap)
            .with_max_times(n)
            .build()
            .nth(n - 1)
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// The n-th retry's delay: the base delay ± 20 % (`unit` is a uniform draw from [0, 1)), or a
    /// receiver's `Retry-After` honoured up to the cap.
    pub fn next_delay(&self, n: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        match retry_after {
            Some(wait) => wait.min(self.cap),
            None => jitter(self.base_delay(n), unit),
        }
    }

    pub fn cap(&self) -> Duration {
        self.cap
    }
}

/// Moves `delay` by up to ±20 %: `unit` 0 gives −20 %, 0.5 none, towards 1 gives +20 %.
pub fn jitter(delay: Duration, unit: f64) -> Duration {
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.5
    };
    delay.mul_f64(1.0 - JITTER + 2.0 * JITTER * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn the_default_schedule_grows_fourfold_up_to_the_cap() {
        let p = RetryPolicy::new(secs(30), 4.0, secs(12 * 3600));
        let got: Vec<Duration> = (1..=7).map(|n| p.base_delay(n)).collect();
        assert_eq!(
            got,
            [
                secs(30),
                secs(120),
                secs(480),
                secs(1920),
                secs(7680),
                secs(30720),
                secs(43200)
            ]
        );
        assert_eq!(p.base_delay(10), secs(43200));
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        assert_eq!(jitter(secs(100), 0.0), secs(80));
        assert_eq!(jitter(secs(100), 0.5), secs(100));
        assert_eq!(jitter(secs(100), 1.0), secs(120));
        assert_eq!(jitter(secs(100), f64::NAN), secs(100));
        for i in 0..100 {
            let d = jitter(secs(100), f64::from(i) / 100.0);
            assert!(d >= secs(80) && d <= secs(120));
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let p = RetryPolicy::new(secs(30), 4.0, secs(600));
        assert_eq!(p.next_delay(1, Some(secs(90)), 0.0), secs(90));
        assert_eq!(p.next_delay(1, Some(secs(9000)), 0.0), secs(600));
    }
}
