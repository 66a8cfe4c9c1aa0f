//! Business-calendar arithmetic: working hours, working days, public
//! holidays and make-up working days (调休), in the calendar's time zone.
//! Pure functions of the calendar and the instants given.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// How far ahead arithmetic looks for working time before giving up (a
/// calendar with no working time at all is refused by policy validation).
const HORIZON_DAYS: u32 = 3660;

#[derive(Debug, Clone)]
pub struct BusinessCalendar {
    name: String,
    tz: Tz,
    /// Working periods of a working day, sorted and disjoint (local time).
    periods: Vec<(NaiveTime, NaiveTime)>,
    /// Monday first.
    working_days: [bool; 7],
    holidays: BTreeSet<NaiveDate>,
    extra_working_days: BTreeSet<NaiveDate>,
}

impl BusinessCalendar {
    /// Builds a calendar; `periods` must be sorted, disjoint and non-empty,
    /// and at least one weekday must be a working day.
    pub fn new(
        name: &str,
        tz: Tz,
        periods: Vec<(NaiveTime, NaiveTime)>,
        working_days: [bool; 7],
        holidays: BTreeSet<NaiveDate>,
        extra_working_days: BTreeSet<NaiveDate>,
    ) -> Result<Self, String> {
        if periods.is_empty() {
            return Err("a calendar needs at least one working period".into());
        }
        for (i, (a, b)) in periods.iter().enumerate() {
            if a >= b {
                return Err(format!("working period {a}-{b} ends before it starts"));
            }
            if i > 0 && periods[i - 1].1 > *a {
                return Err(format!("working periods overlap or are out of order at {a}"));
            }
        }
        if !working_days.iter().any(|d| *d) {
            return Err("a calendar needs at least one working day".into());
        }
        Ok(Self { name: name.to_string(), tz, periods, working_days, holidays, extra_working_days })
    }

    /// Round-the-clock calendar (every minute is business time).
    pub fn always(tz: Tz) -> Self {
        let end = NaiveTime::from_hms_nano_opt(23, 59, 59, 999_999_999).expect("valid time");
        Self {
            name: "24x7".into(),
            tz,
            periods: vec![(NaiveTime::MIN, end)],
            working_days: [true; 7],
            holidays: BTreeSet::new(),
            extra_working_days: BTreeSet::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// Working weekdays, Monday first.
    pub fn working_days(&self) -> [bool; 7] {
        self.working_days
    }

    /// Working periods of a working day (local time), sorted.
    pub fn periods(&self) -> &[(NaiveTime, NaiveTime)] {
        &self.periods
    }

    /// Public holidays (days off that would be working days).
    pub fn holidays(&self) -> &BTreeSet<NaiveDate> {
        &self.holidays
    }

    /// Make-up working days (调休): weekend days that are worked.
    pub fn extra_working_days(&self) -> &BTreeSet<NaiveDate> {
        &self.extra_working_days
    }

    /// Whether `at` falls inside working time.
    pub fn is_working_at(&self, at: DateTime<Utc>) -> bool {
        let date = self.local_date(at);
        self.intervals(date).any(|(a, b)| a <= at && at < b)
    }

    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        if self.extra_working_days.contains(&date) {
            return true;
        }
        if self.holidays.contains(&date) {
            return false;
        }
        self.working_days[date.weekday().num_days_from_monday() as usize]
    }

    /// Working intervals of a local date, as UTC instants.
    fn intervals(&self, date: NaiveDate) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        let working = self.is_working_day(date);
        self.periods.iter().filter(move |_| working).filter_map(move |(a, b)| {
            let start = self.local(date, *a)?;
            let end = self.local(date, *b)?;
            (start < end).then_some((start, end))
        })
    }

    /// A local wall time as an instant; in a DST gap, the first instant after it.
    fn local(&self, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
        let naive = date.and_time(time);
        match self.tz.from_local_datetime(&naive) {
            chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => Some(t.with_timezone(&Utc)),
            chrono::LocalResult::None => {
                self.tz.from_local_datetime(&(naive + Duration::hours(1))).earliest().map(|t| t.with_timezone(&Utc))
            }
        }
    }

    fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.tz).date_naive()
    }

    /// `start` plus `duration` of working time.
    pub fn add_business(&self, start: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
        if duration <= Duration::zero() {
            return start;
        }
        let mut remaining = duration;
        let mut date = self.local_date(start);
        for _ in 0..HORIZON_DAYS {
            for (a, b) in self.intervals(date) {
                let from = a.max(start);
                if from >= b {
                    continue;
                }
                let available = b - from;
                if available >= remaining {
                    return from + remaining;
                }
                remaining -= available;
            }
            date = date.succ_opt().expect("date within range");
        }
        start + duration
    }

    /// The first working instant at or after `at`.
    pub fn next_working_moment(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let mut date = self.local_date(at);
        for _ in 0..HORIZON_DAYS {
            for (a, b) in self.intervals(date) {
                if at < b {
                    return a.max(at);
                }
            }
            date = date.succ_opt().expect("date within range");
        }
        at
    }

    /// The same local time `days` working days after the first working
    /// moment at or after `start` ("within 3 business days").
    pub fn add_business_days(&self, start: DateTime<Utc>, days: u32) -> DateTime<Utc> {
        let begin = self.next_working_moment(start).with_timezone(&self.tz);
        let time = begin.time();
        let mut date = begin.date_naive();
        let mut counted = 0;
        let mut steps = 0;
        while counted < days && steps < HORIZON_DAYS {
            date = date.succ_opt().expect("date within range");
            steps += 1;
            if self.is_working_day(date) {
                counted += 1;
            }
        }
        self.local(date, time).unwrap_or_else(|| begin.with_timezone(&Utc) + Duration::days(days.into()))
    }

    /// Working time between two instants (zero if `to` is not after `from`).
    pub fn business_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        let mut total = Duration::zero();
        if to <= from {
            return total;
        }
        let mut date = self.local_date(from);
        let last = self.local_date(to);
        while date <= last {
            for (a, b) in self.intervals(date) {
                let start = a.max(from);
                let end = b.min(to);
                if start < end {
                    total += end - start;
                }
            }
            date = date.succ_opt().expect("date within range");
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    /// Mon-Fri 09:00-12:00 and 13:00-18:00 in Shanghai; 2023-10-02 a
    /// holiday, Saturday 2023-10-07 a make-up working day.
    fn shanghai() -> BusinessCalendar {
        let holidays = [NaiveDate::from_ymd_opt(2023, 10, 2).unwrap()].into_iter().collect();
        let extra = [NaiveDate::from_ymd_opt(2023, 10, 7).unwrap()].into_iter().collect();
        let mut days = [true; 7];
        days[5] = false;
        days[6] = false;
        BusinessCalendar::new(
            "cn",
            chrono_tz::Asia::Shanghai,
            vec![(t(9, 0), t(12, 0)), (t(13, 0), t(18, 0))],
            days,
            holidays,
            extra,
        )
        .unwrap()
    }

    fn sh(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap().with_timezone(&Utc)
    }

    /// The shipped default calendar (with mainland China's holidays).
    fn shipped() -> BusinessCalendar {
        crate::Policy::default_policy().calendar().clone()
    }

    /// 09:00-17:00 weekdays in New York (DST from 9 March and 8 November 2025...).
    fn new_york() -> BusinessCalendar {
        let mut days = [true; 7];
        days[5] = false;
        days[6] = false;
        BusinessCalendar::new(
            "us",
            chrono_tz::America::New_York,
            vec![(t(9, 0), t(17, 0))],
            days,
            BTreeSet::new(),
            BTreeSet::new(),
        )
        .unwrap()
    }

    #[test]
    fn the_shipped_calendar_has_the_official_holidays_and_make_up_days() {
        let cal = shipped();
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert!(!cal.is_working_day(d(2026, 10, 1)), "National Day");
        assert!(!cal.is_working_day(d(2025, 1, 29)), "Spring Festival");
        assert!(cal.is_working_day(d(2026, 9, 20)), "a make-up Sunday");
        assert!(cal.is_working_day(d(2024, 2, 4)), "a make-up Sunday");
        assert!(!cal.is_working_day(d(2026, 9, 19)), "an ordinary Saturday");
        assert!(cal.holidays().len() > 80 && cal.extra_working_days().len() >= 19);
    }

    #[test]
    fn a_dst_change_does_not_lose_or_gain_an_hour_of_business_time() {
        let cal = new_york();
        let ny =
            |m, d, h| chrono_tz::America::New_York.with_ymd_and_hms(2026, m, d, h, 0, 0).unwrap().with_timezone(&Utc);
        // Friday 6 March 16:00 + 2 h: Monday 9 March (after the change) 10:00 local.
        assert_eq!(cal.add_business(ny(3, 6, 16), Duration::hours(2)), ny(3, 9, 10));
        assert_eq!(cal.business_between(ny(3, 6, 9), ny(3, 9, 17)), Duration::hours(16));
        // Across the November change.
        assert_eq!(cal.add_business(ny(10, 30, 16), Duration::hours(2)), ny(11, 2, 10));
    }

    #[test]
    fn eight_hours_from_tuesday_morning_ends_tuesday_evening() {
        let cal = shanghai();
        assert_eq!(cal.add_business(sh(2023, 10, 3, 9, 0), Duration::hours(8)), sh(2023, 10, 3, 18, 0));
    }

    #[test]
    fn skips_lunch_nights_weekends_and_holidays() {
        let cal = shanghai();
        // Friday 17:00 + 4h: 1h Friday, Monday 2 Oct is a holiday, so Tuesday 12:00.
        assert_eq!(cal.add_business(sh(2023, 9, 29, 17, 0), Duration::hours(4)), sh(2023, 10, 3, 12, 0));
        // Starting at lunch counts from 13:00.
        assert_eq!(cal.add_business(sh(2023, 10, 3, 12, 30), Duration::hours(1)), sh(2023, 10, 3, 14, 0));
        // Saturday 7 Oct is a make-up working day.
        assert_eq!(cal.add_business(sh(2023, 10, 6, 18, 0), Duration::hours(1)), sh(2023, 10, 7, 10, 0));
    }

    #[test]
    fn business_days_keep_the_local_time() {
        let cal = shanghai();
        // Monday 9 Oct 10:00 + 3 business days = Thursday 10:00.
        assert_eq!(cal.add_business_days(sh(2023, 10, 9, 10, 0), 3), sh(2023, 10, 12, 10, 0));
        // Sunday evening starts from Monday 09:00.
        assert_eq!(cal.add_business_days(sh(2023, 10, 8, 20, 0), 1), sh(2023, 10, 10, 9, 0));
    }

    #[test]
    fn rejects_calendars_without_working_time() {
        assert!(
            BusinessCalendar::new("x", chrono_tz::UTC, vec![], [true; 7], BTreeSet::new(), BTreeSet::new()).is_err()
        );
        assert!(
            BusinessCalendar::new(
                "x",
                chrono_tz::UTC,
                vec![(t(9, 0), t(17, 0))],
                [false; 7],
                BTreeSet::new(),
                BTreeSet::new()
            )
            .is_err()
        );
        assert!(
            BusinessCalendar::new(
                "x",
                chrono_tz::UTC,
                vec![(t(9, 0), t(12, 0)), (t(11, 0), t(17, 0))],
                [true; 7],
                BTreeSet::new(),
                BTreeSet::new()
            )
            .is_err()
        );
    }

    proptest! {
        #[test]
        fn adding_then_measuring_gives_the_duration_back(start_min in 0i64..(5 * 365 * 24 * 60), minutes in 0i64..(30 * 24 * 60)) {
            let cal = shanghai();
            let start = sh(2022, 1, 1, 0, 0) + Duration::minutes(start_min);
            let end = cal.add_business(start, Duration::minutes(minutes));
            prop_assert!(end >= start);
            prop_assert_eq!(cal.business_between(start, end), Duration::minutes(minutes));
        }

        #[test]
        fn deadlines_never_fall_in_non_working_time(start_min in 0i64..(3 * 365 * 24 * 60), minutes in 1i64..(30 * 24 * 60)) {
            let cal = shipped();
            let start = sh(2024, 1, 1, 0, 0) + Duration::minutes(start_min);
            let end = cal.add_business(start, Duration::minutes(minutes));
            // Inside a working period, or at the very end of one.
            prop_assert!(cal.is_working_at(end) || cal.is_working_at(end - Duration::nanoseconds(1)), "{end}");
            prop_assert_eq!(cal.business_between(start, end), Duration::minutes(minutes));
            let days = (minutes % 10) as u32 + 1;
            let by_days = cal.add_business_days(start, days);
            prop_assert!(cal.is_working_at(by_days) || cal.is_working_at(by_days - Duration::nanoseconds(1)), "{by_days}");
        }

        #[test]
        fn adding_then_measuring_agrees_across_dst(start_min in 0i64..(2 * 365 * 24 * 60), minutes in 0i64..(20 * 24 * 60)) {
            let cal = new_york();
            let start = chrono_tz::America::New_York.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap().with_timezone(&Utc)
                + Duration::minutes(start_min);
            let end = cal.add_business(start, Duration::minutes(minutes));
            prop_assert_eq!(cal.business_between(start, end), Duration::minutes(minutes));
            prop_assert!(minutes == 0 || cal.is_working_at(end) || cal.is_working_at(end - Duration::nanoseconds(1)));
        }

        #[test]
        fn more_time_never_ends_earlier(start_min in 0i64..(365 * 24 * 60), a in 0i64..5000, b in 0i64..5000) {
            let cal = shanghai();
            let start = sh(2023, 1, 1, 0, 0) + Duration::minutes(start_min);
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(cal.add_business(start, Duration::minutes(lo)) <= cal.add_business(start, Duration::minutes(hi)));
        }
    }
}
