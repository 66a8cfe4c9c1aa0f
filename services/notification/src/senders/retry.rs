//! Retry timing and rate limits of the built-in senders.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::Quota;
use rand::Rng;

/// The delay before retry `attempt` (1 after the first failure): doubling
/// from `base`, at most `max`, with "equal jitter" (a random point in the
/// upper half) so replicas retrying together spread out.
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let doubled = base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(30)));
    let ceiling = doubled.min(max);
    let half = ceiling / 2;
    let jitter = rand::rng().random_range(0..=half.as_millis().min(u64::MAX as u128) as u64);
    half + Duration::from_millis(jitter)
}

/// A rate such as "10/s", "600/min" or "5000/h".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub per: Duration,
}

impl Rate {
    pub fn quota(self) -> Quota {
        let period = self.per / self.count.get();
        Quota::with_period(period.max(Duration::from_nanos(1))).expect("a positive period").allow_burst(self.count)
    }

    pub fn per_second(self) -> f64 {
        self.count.get() as f64 / self.per.as_secs_f64()
    }
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (count, unit) = s.split_once('/').ok_or_else(|| format!("{s:?} is not a rate (\"10/s\", \"600/min\")"))?;
        let count: u32 = count.trim().parse().map_err(|_| format!("{count:?} is not a count"))?;
        let count = NonZeroU32::new(count).ok_or("the count must be at least 1")?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "min" | "m" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => return Err(format!("{other:?}: use s, min or h")),
        };
        Ok(Self { count, per })
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "min",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_maximum() {
        let base = Duration::from_secs(2);
        let max = Duration::from_secs(60);
        for _ in 0..50 {
            let first = backoff(1, base, max);
            assert!(first >= Duration::from_secs(1) && first <= base, "{first:?}");
            let third = backoff(3, base, max);
            assert!(third >= Duration::from_secs(4) && third <= Duration::from_secs(8), "{third:?}");
            let late = backoff(20, base, max);
            assert!(late >= Duration::from_secs(30) && late <= max, "{late:?}");
        }
    }

    #[test]
    fn a_rate_lets_its_count_through_then_holds_back() {
        let rate: Rate = "3/min".parse().unwrap();
        let limiter = governor::RateLimiter::direct(rate.quota());
        for _ in 0..3 {
            assert!(limiter.check().is_ok());
        }
        assert!(limiter.check().is_err(), "the fourth within the minute waits");
    }

    #[test]
    fn rates_parse() {
        let r: Rate = "600/min".parse().unwrap();
        assert_eq!(r.per_second(), 10.0);
        assert_eq!(r.to_string(), "600/min");
        assert!("0/s".parse::<Rate>().is_err());
        assert!("10/day".parse::<Rate>().is_err());
    }
}
