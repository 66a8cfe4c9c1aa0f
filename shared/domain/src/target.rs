//! SLA targets as policy states them: `"1h calendar"`, `"8h"`,
//! `"3 business days"`, `"15m calendar"`. Business basis is the default:
//! minutes and hours count working time on the calendar, days count
//! working days.

use std::fmt;

use chrono::{DateTime, Duration, Utc};

use crate::calendar::BusinessCalendar;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    Business,
    Calendar,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Amount {
    Minutes(u32),
    Days(u32),
}

/// An allowed time, parsed from policy text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaTarget {
    amount: Amount,
    basis: Basis,
    text: String,
}

const MAX_MINUTES: u32 = 366 * 24 * 60;
const MAX_DAYS: u32 = 366;

impl SlaTarget {
    pub fn parse(text: &str) -> Result<Self, String> {
        let lower = text.trim().to_lowercase();
        let mut basis = None;
        let mut rest = Vec::new();
        for token in lower.split_whitespace() {
            match token {
                "calendar" | "business" => {
                    let b = if token == "calendar" { Basis::Calendar } else { Basis::Business };
                    if basis.replace(b).is_some() {
                        return Err(format!("{text:?}: say calendar or business once"));
                    }
                }
                _ => rest.push(token),
            }
        }
        let joined = rest.concat();
        let split = joined.find(|c: char| !c.is_ascii_digit()).unwrap_or(joined.len());
        let (number, unit) = joined.split_at(split);
        let value: u32 = number.parse().map_err(|_| {
            format!("{text:?}: expected a whole number and a unit, e.g. \"8h\", \"15m calendar\", \"3 business days\"")
        })?;
        if value == 0 {
            return Err(format!("{text:?}: an allowed time must be more than zero"));
        }
        let amount = match unit {
            "m" | "min" | "mins" | "minute" | "minutes" => Amount::Minutes(value),
            "h" | "hr" | "hrs" | "hour" | "hours" => {
                Amount::Minutes(value.checked_mul(60).ok_or_else(|| format!("{text:?}: too long"))?)
            }
            "d" | "day" | "days" => Amount::Days(value),
            other => return Err(format!("{text:?}: unknown unit {other:?} (use m, h or days)")),
        };
        match amount {
            Amount::Minutes(m) if m > MAX_MINUTES => return Err(format!("{text:?}: longer than a year")),
            Amount::Days(d) if d > MAX_DAYS => return Err(format!("{text:?}: longer than a year")),
            _ => {}
        }
        Ok(Self { amount, basis: basis.unwrap_or(Basis::Business), text: text.trim().to_string() })
    }

    pub fn basis(&self) -> Basis {
        self.basis
    }

    /// The text as the policy wrote it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The deadline for a clock started at `start`.
    pub fn deadline(&self, start: DateTime<Utc>, calendar: &BusinessCalendar) -> DateTime<Utc> {
        match (self.basis, self.amount) {
            (Basis::Calendar, Amount::Minutes(m)) => start + Duration::minutes(m.into()),
            (Basis::Calendar, Amount::Days(d)) => start + Duration::days(d.into()),
            (Basis::Business, Amount::Minutes(m)) => calendar.add_business(start, Duration::minutes(m.into())),
            (Basis::Business, Amount::Days(d)) => calendar.add_business_days(start, d),
        }
    }

    /// The instant at `percent` of the way from `start` to the deadline,
    /// counted in the target's own basis.
    pub fn point_at(&self, start: DateTime<Utc>, percent: u8, calendar: &BusinessCalendar) -> DateTime<Utc> {
        let deadline = self.deadline(start, calendar);
        match self.basis {
            Basis::Calendar => start + (deadline - start) * i32::from(percent) / 100,
            Basis::Business => {
                let total = calendar.business_between(start, deadline);
                calendar.add_business(start, total * i32::from(percent) / 100)
            }
        }
    }
}

impl fmt::Display for SlaTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_policy_forms() {
        let t = SlaTarget::parse("1h calendar").unwrap();
        assert_eq!((t.amount, t.basis), (Amount::Minutes(60), Basis::Calendar));
        let t = SlaTarget::parse("3 business days").unwrap();
        assert_eq!((t.amount, t.basis), (Amount::Days(3), Basis::Business));
        let t = SlaTarget::parse("15m calendar").unwrap();
        assert_eq!(t.amount, Amount::Minutes(15));
        let t = SlaTarget::parse("8h").unwrap();
        assert_eq!((t.amount, t.basis), (Amount::Minutes(480), Basis::Business));
        assert_eq!(SlaTarget::parse("24 hours").unwrap().amount, Amount::Minutes(1440));
    }

    #[test]
    fn refuses_nonsense() {
        for bad in ["", "h", "0h", "3 weeks", "1h calendar business", "-1h", "1.5h", "400 days"] {
            assert!(SlaTarget::parse(bad).is_err(), "{bad:?}");
        }
    }
}
