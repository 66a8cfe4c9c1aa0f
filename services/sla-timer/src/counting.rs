//! Counting a clock's time: on the business calendar or the wall clock,
//! with pauses left out — where an amount of counted time runs out, and how
//! much was counted up to an instant.

use chrono::{DateTime, Duration, Utc};
use kesu_domain::calendar::BusinessCalendar;
use kesu_domain::target::Basis;

/// How time is counted for one clock.
pub(crate) struct Counter<'a> {
    pub basis: Basis,
    pub calendar: &'a BusinessCalendar,
}

impl Counter<'_> {
    pub fn measure(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        match self.basis {
            Basis::Business => self.calendar.business_between(from, to),
            Basis::Calendar => (to - from).max(Duration::zero()),
        }
    }

    pub fn add(&self, from: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
        match self.basis {
            Basis::Business => self.calendar.add_business(from, d),
            Basis::Calendar => from + d,
        }
    }
}

/// The counted span of one clock: start, pauses (open at the end while
/// paused), stop.
pub(crate) struct Span {
    pub start: DateTime<Utc>,
    pub pauses: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
    pub stop: Option<DateTime<Utc>>,
}

pub(crate) enum Reach {
    At(DateTime<Utc>),
    /// Paused before the amount ran out, with this much left.
    Paused,
}

impl Span {
    /// Pauses clipped to the span, an open pause closed at the stop.
    pub fn clipped(mut self) -> Self {
        let stop = self.stop;
        self.pauses = self
            .pauses
            .into_iter()
            .filter_map(|(a, b)| {
                let b = match (b, stop) {
                    (Some(b), Some(s)) => Some(b.min(s)),
                    (None, Some(s)) => Some(s),
                    (b, None) => b,
                };
                let a = a.max(self.start);
                if stop.is_some_and(|s| a >= s) || b.is_some_and(|b| b <= a) {
                    return None;
                }
                Some((a, b))
            })
            .collect();
        self
    }

    /// Where `amount` of counted time since the start runs out.
    pub fn reach(&self, c: &Counter<'_>, amount: Duration) -> Reach {
        let mut cursor = self.start;
        let mut left = amount;
        for (from, to) in &self.pauses {
            if *from > cursor {
                let available = c.measure(cursor, *from);
                if available >= left {
                    return Reach::At(c.add(cursor, left));
                }
                left -= available;
            }
            match to {
                Some(t) => cursor = cursor.max(*t),
                None => return Reach::Paused,
            }
        }
        Reach::At(c.add(cursor, left))
    }

    /// Counted time from the start to `at`, pauses left out.
    pub fn used(&self, c: &Counter<'_>, at: DateTime<Utc>) -> Duration {
        let end = self.stop.map_or(at, |s| s.min(at));
        if end <= self.start {
            return Duration::zero();
        }
        let mut total = c.measure(self.start, end);
        for (from, to) in &self.pauses {
            let b = to.unwrap_or(end).min(end);
            if *from < b {
                total -= c.measure(*from, b);
            }
        }
        total.max(Duration::zero())
    }

    pub fn paused(&self, at: DateTime<Utc>) -> Duration {
        let end = self.stop.map_or(at, |s| s.min(at));
        self.pauses.iter().map(|(a, b)| (b.unwrap_or(end).min(end) - *a).max(Duration::zero())).sum()
    }

    pub fn paused_now(&self, at: DateTime<Utc>) -> bool {
        self.stop.is_none() && self.pauses.last().is_some_and(|(a, b)| b.is_none() && *a <= at)
    }
}
