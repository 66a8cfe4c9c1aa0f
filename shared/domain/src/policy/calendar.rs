//! The `[calendar]` section: the business calendar SLA clocks count on
//! (working days and hours with breaks, holidays, make-up working days).

use std::collections::BTreeSet;

use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::calendar::BusinessCalendar;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarPolicy {
    pub name: String,
    pub time_zone: String,
    pub working_days: Vec<String>,
    pub working_hours: Vec<String>,
    pub holidays: Vec<String>,
    pub extra_working_days: Vec<String>,
}

/// Weekday names as the policy writes them, Monday first.
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `["mon", "fri"]` → a Monday-first mask; `key` names the list in errors.
pub fn parse_weekdays(days: &[String], key: &str) -> Result<[bool; 7], (String, String)> {
    let mut mask = [false; 7];
    for (n, day) in days.iter().enumerate() {
        let idx = WEEKDAYS
            .iter()
            .position(|d| d == &day.to_ascii_lowercase())
            .ok_or_else(|| (format!("{key}[{n}]"), format!("{day:?} is not one of {}", WEEKDAYS.join(", "))))?;
        mask[idx] = true;
    }
    Ok(mask)
}

/// `["09:00-12:00", "13:00-18:00"]` → sorted local periods.
pub fn parse_periods(ranges: &[String], key: &str) -> Result<Vec<(NaiveTime, NaiveTime)>, (String, String)> {
    let mut periods = Vec::new();
    for (n, range) in ranges.iter().enumerate() {
        let key = format!("{key}[{n}]");
        let bad = || (key.clone(), format!("{range:?}: expected \"HH:MM-HH:MM\""));
        let (a, b) = range.split_once('-').ok_or_else(bad)?;
        let parse = |s: &str| NaiveTime::parse_from_str(s.trim(), "%H:%M");
        match (parse(a), parse(b)) {
            (Ok(a), Ok(b)) => periods.push((a, b)),
            _ => return Err(bad()),
        }
    }
    periods.sort();
    Ok(periods)
}

/// `["2026-10-01"]` → dates.
pub fn parse_dates(list: &[String], key: &str) -> Result<BTreeSet<NaiveDate>, (String, String)> {
    list.iter()
        .enumerate()
        .map(|(n, d)| {
            NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| (format!("{key}[{n}]"), format!("{d:?}: expected YYYY-MM-DD")))
        })
        .collect()
}

pub(super) fn build(c: &CalendarPolicy) -> Result<BusinessCalendar, (String, String)> {
    let tz: Tz = c
        .time_zone
        .parse()
        .map_err(|_| ("calendar.time_zone".to_string(), format!("unknown time zone {:?}", c.time_zone)))?;
    let working_days = parse_weekdays(&c.working_days, "calendar.working_days")?;
    let periods = parse_periods(&c.working_hours, "calendar.working_hours")?;
    let holidays = parse_dates(&c.holidays, "calendar.holidays")?;
    let extra = parse_dates(&c.extra_working_days, "calendar.extra_working_days")?;
    BusinessCalendar::new(&c.name, tz, periods, working_days, holidays, extra).map_err(|m| ("calendar".to_string(), m))
}
