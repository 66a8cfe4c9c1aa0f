//! The weekly problem analysis report (问题分析报告): a local ISO week
//! (Monday to Sunday) against the week before — volume, top types and
//! causes, SLA attainment by level, satisfaction, open breaches, common
//! issues, reopen and repeat rates — in Chinese and English, as Markdown
//! and HTML (minijinja templates in `templates/`).

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use kesu_proto::v1::{CountByKey, ReportPublished, TimeRange, WeeklyReport};
use minijinja::{Environment, context};
use serde::Serialize;

use crate::api::Analytics;
use crate::error::Error;
use crate::figures;
use crate::query::{Filter, Range};

/// A local ISO week: its Monday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Week(pub NaiveDate);

impl Week {
    /// The week containing a local date.
    pub fn of(day: NaiveDate) -> Week {
        Week(day - Duration::days(day.weekday().num_days_from_monday() as i64))
    }

    /// "2026-W48".
    pub fn parse(text: &str) -> Result<Week, Error> {
        let bad =
            || Error::InvalidArgument { field: "week", message: format!("{text:?} is not an ISO week like 2026-W48") };
        let (year, week) = text.split_once("-W").ok_or_else(bad)?;
        let (year, week) = (year.parse::<i32>().map_err(|_| bad())?, week.parse::<u32>().map_err(|_| bad())?);
        NaiveDate::from_isoywd_opt(year, week, Weekday::Mon).map(Week).ok_or_else(bad)
    }

    pub fn name(&self) -> String {
        let w = self.0.iso_week();
        format!("{}-W{:02}", w.year(), w.week())
    }

    pub fn previous(&self) -> Week {
        Week(self.0 - Duration::days(7))
    }

    pub fn sunday(&self) -> NaiveDate {
        self.0 + Duration::days(6)
    }

    /// `[Monday 00:00, next Monday 00:00)` local, in epoch ms.
    pub fn range(&self, tz: chrono_tz::Tz) -> Range {
        let start = |d: NaiveDate| {
            tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
                .earliest()
                .map(|t| t.timestamp_millis())
                .unwrap_or_default()
        };
        Range { from_ms: start(self.0), to_ms: start(self.0 + Duration::days(7)) }
    }
}

#[derive(Debug, Clone, Serialize)]
struct Share {
    key: String,
    label: String,
    count: u64,
    share: String,
}

#[derive(Debug, Clone, Serialize)]
struct Level {
    key: String,
    label: String,
    response: String,
    resolution: String,
    response_met: u64,
    response_breached: u64,
    resolution_met: u64,
    resolution_breached: u64,
}

#[derive(Debug, Clone, Serialize)]
struct Change {
    metric: &'static str,
    label: &'static str,
    this_week: String,
    last_week: String,
    change: String,
}

/// Everything the templates show (numbers already formatted).
#[derive(Debug, Clone, Serialize)]
pub struct ReportData {
    period: String,
    from: String,
    to: String,
    tickets: u64,
    top_types: Vec<Share>,
    top_causes: Vec<Share>,
    levels: Vec<Level>,
    rated: u64,
    satisfaction: String,
    low_share: String,
    satisfaction_by_department: Vec<Share>,
    reopen_rate: String,
    repeat_rate: String,
    open_breaches: u64,
    at_risk: u64,
    common_issues: Vec<kesu_proto_issue::Issue>,
    changes: Vec<Change>,
}

mod kesu_proto_issue {
    #[derive(Debug, Clone, serde::Serialize)]
    pub struct Issue {
        pub id: String,
        pub label: String,
        pub department: String,
        pub open: bool,
        pub size: u64,
        pub growth: u64,
    }
}

fn level_label(key: &str, zh: bool) -> String {
    let (z, e) = match key {
        "urgent" => ("紧急", "urgent"),
        "high" => ("高", "high"),
        "medium" => ("中", "medium"),
        "low" => ("低", "low"),
        other => (other, other),
    };
    (if zh { z } else { e }).to_string()
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn change(this: f64, last: f64, as_points: bool) -> String {
    if as_points {
        return format!("{:+.1} pt", (this - last) * 100.0);
    }
    if last == 0.0 {
        return if this == 0.0 { "0".into() } else { "new".into() };
    }
    format!("{:+.1}%", (this - last) / last * 100.0)
}

/// The figures of a week (for a scoped filter) and the one before.
pub struct Weekly {
    pub week: Week,
    pub data: ReportData,
    pub proto: WeeklyReport,
}

fn overall(rows: &[crate::query::Row]) -> (f64, f64) {
    let a = figures::attainment(rows, "all");
    a.first().map(|r| (r.response_attainment, r.resolution_attainment)).unwrap_or((0.0, 0.0))
}

fn mean_score(rows: &[crate::query::Row]) -> (u64, f64, f64) {
    figures::satisfaction(rows, "all").first().map(|s| (s.rated, s.average, s.low_share)).unwrap_or((0, 0.0, 0.0))
}

pub async fn weekly(analytics: &Analytics, week: Week, locale: &str, filter: &Filter) -> Result<Weekly, Error> {
    let policy = &analytics.policy;
    let tz = policy.time_zone();
    let zh = !locale.starts_with("en");
    let (range, last_range) = (week.range(tz), week.previous().range(tz));
    let rows = analytics.rows(range, filter).await?;
    let last = analytics.rows(last_range, filter).await?;

    let type_label = |code: &str| {
        policy.problem_type(code).map(|t| if zh { t.name_zh.clone() } else { t.name_en.clone() }).unwrap_or(code.into())
    };
    let mut type_codes: Vec<&str> = rows.iter().map(|r| r.type_code.as_str()).collect();
    type_codes.sort();
    type_codes.dedup();
    let cause_label = |code: &str| {
        type_codes
            .iter()
            .filter_map(|t| policy.problem_type(t))
            .flat_map(|t| t.causes.iter())
            .find(|c| c.code == code)
            .map(|c| if zh { c.name_zh.clone() } else { c.name_en.clone() })
            .unwrap_or(code.into())
    };
    let department_label = |code: &str| {
        policy.department(code).map(|d| if zh { d.name_zh.clone() } else { d.name_en.clone() }).unwrap_or(code.into())
    };
    let top = |group: &str, label: &dyn Fn(&str) -> String| -> Vec<Share> {
        figures::shares(&rows, group)
            .rows
            .into_iter()
            .take(5)
            .map(|s| Share { label: label(&s.key), key: s.key, count: s.count, share: pct(s.share) })
            .collect()
    };
    let top_types = top("type", &type_label);
    let top_causes = top("cause", &cause_label);
    let sla = figures::attainment(&rows, "priority");
    let levels = sla
        .iter()
        .map(|r| Level {
            label: level_label(&r.key, zh),
            key: r.key.clone(),
            response: pct(r.response_attainment),
            resolution: pct(r.resolution_attainment),
            response_met: r.response_met,
            response_breached: r.response_breached,
            resolution_met: r.resolution_met,
            resolution_breached: r.resolution_breached,
        })
        .collect();
    let satisfaction = figures::satisfaction(&rows, "department");
    let (rated, average, low_share) = mean_score(&rows);
    let (_, last_average, _) = mean_score(&last);
    let rates = figures::rates(&rows);
    let last_rates = figures::rates(&last);
    // Open breaches now, whenever the ticket came in.
    let risk = analytics.sla_risk(Range { from_ms: Range::ALL.from_ms, to_ms: range.to_ms }, filter).await?;
    let issues = analytics.common_issues(range, filter).await?;
    let (response, resolution) = overall(&rows);
    let (last_response, last_resolution) = overall(&last);
    let changes = vec![
        Change {
            metric: "tickets",
            label: if zh { "工单量" } else { "Tickets" },
            this_week: rows.len().to_string(),
            last_week: last.len().to_string(),
            change: change(rows.len() as f64, last.len() as f64, false),
        },
        Change {
            metric: "response_attainment",
            label: if zh { "响应达标率" } else { "Response SLA met" },
            this_week: pct(response),
            last_week: pct(last_response),
            change: change(response, last_response, true),
        },
        Change {
            metric: "resolution_attainment",
            label: if zh { "解决达标率" } else { "Resolution SLA met" },
            this_week: pct(resolution),
            last_week: pct(last_resolution),
            change: change(resolution, last_resolution, true),
        },
        Change {
            metric: "satisfaction",
            label: if zh { "满意度均分" } else { "Satisfaction (mean)" },
            this_week: format!("{average:.2}"),
            last_week: format!("{last_average:.2}"),
            change: format!("{:+.2}", average - last_average),
        },
        Change {
            metric: "reopen_rate",
            label: if zh { "重开率" } else { "Reopen rate" },
            this_week: pct(rates.reopen_rate),
            last_week: pct(last_rates.reopen_rate),
            change: change(rates.reopen_rate, last_rates.reopen_rate, true),
        },
    ];
    let data = ReportData {
        period: week.name(),
        from: week.0.to_string(),
        to: week.sunday().to_string(),
        tickets: rows.len() as u64,
        top_types: top_types.clone(),
        top_causes: top_causes.clone(),
        levels,
        rated,
        satisfaction: format!("{average:.2}"),
        low_share: pct(low_share),
        satisfaction_by_department: satisfaction
            .iter()
            .map(|s| Share {
                key: s.key.clone(),
                label: department_label(&s.key),
                count: s.rated,
                share: format!("{:.2}", s.average),
            })
            .collect(),
        reopen_rate: pct(rates.reopen_rate),
        repeat_rate: pct(rates.repeat_feedback_rate),
        open_breaches: risk.open_breaches,
        at_risk: risk.at_risk,
        common_issues: issues
            .issues
            .iter()
            .map(|i| kesu_proto_issue::Issue {
                id: i.common_issue_id.clone(),
                label: format!("{} / {}", type_label(&i.type_code), cause_label(&i.cause_code)),
                department: department_label(&i.department),
                open: i.open,
                size: i.size,
                growth: i.growth,
            })
            .collect(),
        changes,
    };
    let ts = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).map(kesu_domain::time::to_timestamp);
    let proto = WeeklyReport {
        week: Some(TimeRange { from: ts(range.from_ms), to: ts(range.to_ms) }),
        summary: None,
        top_types: top_types.iter().map(|s| CountByKey { key: s.key.clone(), count: s.count }).collect(),
        top_causes: top_causes.iter().map(|s| CountByKey { key: s.key.clone(), count: s.count }).collect(),
        sla,
        satisfaction,
        reopen_rate: rates.reopen_rate,
        repeat_feedback_rate: rates.repeat_feedback_rate,
        text: String::new(),
    };
    let mut weekly = Weekly { week, data, proto };
    weekly.proto.text = render(&weekly.data, if zh { "zh" } else { "en" }, "md")?;
    Ok(weekly)
}

const TEMPLATES: [(&str, &str); 4] = [
    ("weekly.zh.md", include_str!("../templates/weekly.zh.md")),
    ("weekly.en.md", include_str!("../templates/weekly.en.md")),
    ("weekly.zh.html", include_str!("../templates/weekly.zh.html")),
    ("weekly.en.html", include_str!("../templates/weekly.en.html")),
];

fn environment() -> &'static Environment<'static> {
    static ENV: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            env.add_template(name, source).expect("the report templates compile (checked by a unit test)");
        }
        env
    })
}

/// The report in a locale ("zh"/"en") and format ("md"/"html").
pub fn render(data: &ReportData, locale: &str, format: &str) -> Result<String, Error> {
    let name = format!("weekly.{locale}.{format}");
    let template = environment().get_template(&name).map_err(|_| Error::InvalidArgument {
        field: "format",
        message: format!("no report {name:?} (locale zh or en, format md or html)"),
    })?;
    template.render(context! { r => data }).map_err(|e| Error::Render(e.to_string()))
}

pub fn titles(week: Week) -> (String, String) {
    (format!("问题分析报告 {}", week.name()), format!("Problem analysis report {}", week.name()))
}

/// The event announcing a week's report (all four renderings).
pub async fn published(analytics: &Analytics, week: Week, report_id: &str) -> Result<ReportPublished, Error> {
    let all = Filter::default();
    let zh = weekly(analytics, week, "zh", &all).await?;
    let en = weekly(analytics, week, "en", &all).await?;
    let (title_zh, title_en) = titles(week);
    Ok(ReportPublished {
        report_id: report_id.to_string(),
        kind: "weekly".into(),
        period: zh.proto.week,
        title_zh,
        title_en,
        markdown_zh: zh.proto.text.clone(),
        markdown_en: en.proto.text.clone(),
        html_zh: render(&zh.data, "zh", "html")?,
        html_en: render(&en.data, "en", "html")?,
        http_path: format!("/reports/weekly/{}", week.name()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_are_iso_weeks_starting_on_monday() {
        let w = Week::of(NaiveDate::from_ymd_opt(2026, 11, 29).unwrap());
        assert_eq!(
            (w.name(), w.0.to_string(), w.sunday().to_string()),
            ("2026-W48".into(), "2026-11-23".into(), "2026-11-29".into())
        );
        assert_eq!(Week::parse("2026-W48").unwrap(), w);
        assert_eq!(Week::parse("2027-W01").unwrap().0.to_string(), "2027-01-04");
        assert!(Week::parse("2026-48").is_err());
        assert_eq!(w.previous().name(), "2026-W47");
    }

    #[test]
    fn the_templates_compile() {
        for (name, _) in TEMPLATES {
            environment().get_template(name).unwrap();
        }
    }

    #[test]
    fn changes_are_relative_or_in_points() {
        assert_eq!(change(12.0, 10.0, false), "+20.0%");
        assert_eq!(change(3.0, 0.0, false), "new");
        assert_eq!(change(0.5, 0.75, true), "-25.0 pt");
    }
}
