//! The `[staff]` section: the staff directory. Routing assigns handlers from
//! it (department, positions, skills, working schedule, load cap);
//! notification addresses staff from it (email, phone, app account,
//! language); escalations name roles that it resolves to people
//! (department head, supervisors, director, management).
//!
//! Staff contacts are work addresses, not customers' personal data, but
//! they are still never logged: `Debug` prints them masked.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::calendar::BusinessCalendar;
use crate::contact::{EmailAddress, PhoneNumber};

use super::calendar::{parse_dates, parse_periods, parse_weekdays};
use super::taxonomy::{Department, ProblemType};

/// Roles a staff member may hold (the `role` claim of their token).
pub const STAFF_ROLES: [&str; 7] =
    ["agent", "handler", "supervisor", "department_manager", "director", "admin", "analyst"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffPolicy {
    /// Supervisors for departments that name none of their own.
    #[serde(default)]
    pub supervisors: Vec<String>,
    /// Who receives the last escalation (breached + 24 h).
    #[serde(default)]
    pub director: Option<String>,
    /// Who receives management reports (daily high-priority, weekly).
    #[serde(default)]
    pub management: Vec<String>,
    #[serde(default)]
    pub members: Vec<StaffMemberPolicy>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffMemberPolicy {
    pub id: String,
    pub name: String,
    /// One of [`STAFF_ROLES`].
    pub role: String,
    /// Department code.
    pub department: String,
    /// Handler roles of the taxonomy this person fills
    /// ("after_sales_engineer", "tech_support", ...).
    #[serde(default)]
    pub positions: Vec<String>,
    /// Type or cause codes this person is skilled in; empty: none in
    /// particular.
    #[serde(default)]
    pub skills: Vec<String>,
    /// "zh" or "en"; empty: the deployment's default.
    #[serde(default)]
    pub locale: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub app_account: Option<String>,
    /// Own working days; absent: the business calendar's.
    #[serde(default)]
    pub working_days: Option<Vec<String>>,
    /// Own working hours; absent: the business calendar's.
    #[serde(default)]
    pub working_hours: Option<Vec<String>>,
    /// Works on public holidays (shift staff).
    #[serde(default)]
    pub works_public_holidays: bool,
    /// Days of leave (YYYY-MM-DD).
    #[serde(default)]
    pub absent: Vec<String>,
    /// Most open tickets to assign to this person; absent: no cap.
    #[serde(default)]
    pub max_open_tickets: Option<u32>,
    /// Inactive staff are kept for history but never assigned or notified.
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

impl std::fmt::Debug for StaffMemberPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffMemberPolicy").field("id", &self.id).field("role", &self.role).finish_non_exhaustive()
    }
}

/// One member of staff, validated.
#[derive(Clone)]
pub struct StaffMember {
    pub id: String,
    pub name: String,
    pub role: String,
    pub department: String,
    pub positions: Vec<String>,
    pub skills: BTreeSet<String>,
    /// "zh" or "en".
    pub language: String,
    pub time_zone: Tz,
    pub email: Option<EmailAddress>,
    pub phone: Option<PhoneNumber>,
    pub app_account: Option<String>,
    pub max_open_tickets: Option<u32>,
    pub active: bool,
    /// When this person works (their own hours and leave on the
    /// deployment's holidays).
    schedule: BusinessCalendar,
}

impl std::fmt::Debug for StaffMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffMember")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("department", &self.department)
            .finish_non_exhaustive()
    }
}

impl StaffMember {
    /// Whether this person is at work at `at` (active, a working moment of
    /// their schedule, not on leave).
    pub fn on_duty(&self, at: DateTime<Utc>) -> bool {
        self.active && self.schedule.is_working_at(at)
    }

    /// Their working schedule as a calendar (e.g. to find when they are
    /// next on duty).
    pub fn schedule(&self) -> &BusinessCalendar {
        &self.schedule
    }

    /// Whether they fill `position` (a taxonomy handler role).
    pub fn holds(&self, position: &str) -> bool {
        self.positions.iter().any(|p| p == position)
    }
}

/// The validated directory with its lookups.
#[derive(Debug, Clone, Default)]
pub struct StaffDirectory {
    members: Vec<StaffMember>,
    by_id: BTreeMap<String, usize>,
    heads: BTreeMap<String, String>,
    supervisors: BTreeMap<String, Vec<String>>,
    default_supervisors: Vec<String>,
    director: Option<String>,
    management: Vec<String>,
}

impl StaffDirectory {
    pub fn get(&self, id: &str) -> Option<&StaffMember> {
        self.by_id.get(id).map(|&i| &self.members[i])
    }

    pub fn members(&self) -> &[StaffMember] {
        &self.members
    }

    /// Active members of a department.
    pub fn in_department<'a>(&'a self, department: &'a str) -> impl Iterator<Item = &'a StaffMember> + 'a {
        self.members.iter().filter(move |m| m.active && m.department == department)
    }

    /// The head of a department, if the policy names one.
    pub fn department_head(&self, department: &str) -> Option<&StaffMember> {
        self.heads.get(department).and_then(|id| self.get(id))
    }

    /// The supervisors escalations of a department go to: its own, else the
    /// directory's default supervisors.
    pub fn supervisors_of(&self, department: &str) -> Vec<&StaffMember> {
        let ids = self.supervisors.get(department).filter(|s| !s.is_empty()).unwrap_or(&self.default_supervisors);
        ids.iter().filter_map(|id| self.get(id)).filter(|m| m.active).collect()
    }

    pub fn director(&self) -> Option<&StaffMember> {
        self.director.as_deref().and_then(|id| self.get(id))
    }

    /// Recipients of management reports.
    pub fn management(&self) -> Vec<&StaffMember> {
        self.management.iter().filter_map(|id| self.get(id)).filter(|m| m.active).collect()
    }

    /// The people a role of an escalation or rule means for a ticket of
    /// `department` whose handler is `handler`: "handler", "supervisor",
    /// "department_head", "director", "management". Unknown roles and
    /// people the directory lacks give an empty list.
    pub fn resolve_role(&self, role: &str, department: &str, handler: &str) -> Vec<&StaffMember> {
        match role {
            "handler" => self.get(handler).into_iter().collect(),
            "supervisor" => self.supervisors_of(department),
            "department_head" => self.department_head(department).into_iter().collect(),
            "director" => self.director().into_iter().collect(),
            "management" => self.management(),
            _ => Vec::new(),
        }
    }
}

pub(super) fn build(
    s: &StaffPolicy,
    departments: &[Department],
    taxonomy: &[ProblemType],
    calendar: &BusinessCalendar,
    default_language: &str,
) -> Result<StaffDirectory, (String, String)> {
    let department_codes: BTreeSet<&str> = departments.iter().map(|d| d.code.as_str()).collect();
    let skill_codes: BTreeSet<&str> = taxonomy
        .iter()
        .flat_map(|t| std::iter::once(t.code.as_str()).chain(t.causes.iter().map(|c| c.code.as_str())))
        .collect();
    let mut dir = StaffDirectory::default();
    for (n, m) in s.members.iter().enumerate() {
        let key = |field: &str| format!("staff.members[{n}].{field}");
        if m.id.trim().is_empty() {
            return Err((key("id"), "must not be empty".into()));
        }
        if dir.by_id.contains_key(&m.id) {
            return Err((key("id"), format!("{:?} appears twice", m.id)));
        }
        if !STAFF_ROLES.contains(&m.role.as_str()) {
            return Err((key("role"), format!("{:?} is not one of {}", m.role, STAFF_ROLES.join(", "))));
        }
        if !department_codes.contains(m.department.as_str()) {
            return Err((key("department"), format!("{:?} is not a department code", m.department)));
        }
        for (k, skill) in m.skills.iter().enumerate() {
            if !skill_codes.contains(skill.as_str()) {
                return Err((format!("{}[{k}]", key("skills")), format!("{skill:?} is not a taxonomy type or cause")));
            }
        }
        let language = match m.locale.as_deref() {
            None => default_language.to_string(),
            Some(l) if super::templates::TEMPLATE_LOCALES.contains(&l) => l.to_string(),
            Some(l) => return Err((key("locale"), format!("{l:?}: must be zh or en"))),
        };
        let time_zone: Tz = match &m.time_zone {
            None => calendar.time_zone(),
            Some(z) => z.parse().map_err(|_| (key("time_zone"), format!("unknown time zone {z:?}")))?,
        };
        let email = m.email.as_deref().map(EmailAddress::parse).transpose().map_err(|e| (key("email"), e))?;
        let phone = m.phone.as_deref().map(PhoneNumber::parse).transpose().map_err(|e| (key("phone"), e))?;
        let schedule = schedule(m, calendar, time_zone, &key)?;
        dir.by_id.insert(m.id.clone(), dir.members.len());
        dir.members.push(StaffMember {
            id: m.id.clone(),
            name: m.name.clone(),
            role: m.role.clone(),
            department: m.department.clone(),
            positions: m.positions.clone(),
            skills: m.skills.iter().cloned().collect(),
            language,
            time_zone,
            email,
            phone,
            app_account: m.app_account.clone().filter(|a| !a.trim().is_empty()),
            max_open_tickets: m.max_open_tickets,
            active: m.active,
            schedule,
        });
    }
    let known = |id: &str, key: String| -> Result<(), (String, String)> {
        if dir.by_id.contains_key(id) { Ok(()) } else { Err((key, format!("{id:?} is not in staff.members"))) }
    };
    for (n, id) in s.supervisors.iter().enumerate() {
        known(id, format!("staff.supervisors[{n}]"))?;
    }
    if let Some(id) = &s.director {
        known(id, "staff.director".into())?;
    }
    for (n, id) in s.management.iter().enumerate() {
        known(id, format!("staff.management[{n}]"))?;
    }
    for (n, d) in departments.iter().enumerate() {
        if let Some(head) = &d.head {
            known(head, format!("departments[{n}].head"))?;
            dir.heads.insert(d.code.clone(), head.clone());
        }
        for (k, id) in d.supervisors.iter().enumerate() {
            known(id, format!("departments[{n}].supervisors[{k}]"))?;
        }
        dir.supervisors.insert(d.code.clone(), d.supervisors.clone());
    }
    dir.default_supervisors = s.supervisors.clone();
    dir.director = s.director.clone();
    dir.management = s.management.clone();
    Ok(dir)
}

fn schedule(
    m: &StaffMemberPolicy,
    calendar: &BusinessCalendar,
    time_zone: Tz,
    key: &dyn Fn(&str) -> String,
) -> Result<BusinessCalendar, (String, String)> {
    let days = match &m.working_days {
        Some(days) => parse_weekdays(days, &key("working_days"))?,
        None => calendar.working_days(),
    };
    let periods = match &m.working_hours {
        Some(hours) => parse_periods(hours, &key("working_hours"))?,
        None => calendar.periods().to_vec(),
    };
    let mut holidays = if m.works_public_holidays { BTreeSet::new() } else { calendar.holidays().clone() };
    holidays.extend(parse_dates(&m.absent, &key("absent"))?);
    let extra = if m.works_public_holidays { BTreeSet::new() } else { calendar.extra_working_days().clone() };
    BusinessCalendar::new(&m.id, time_zone, periods, days, holidays, extra).map_err(|e| (key("working_hours"), e))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use crate::Policy;

    #[test]
    fn the_shipped_directory_covers_every_department_and_position() {
        let p = Policy::default_policy();
        let staff = p.staff();
        for d in &p.doc.departments {
            assert!(staff.department_head(&d.code).is_some(), "department {} has no head", d.code);
            assert!(!staff.supervisors_of(&d.code).is_empty(), "department {} has no supervisor", d.code);
        }
        for t in &p.doc.taxonomy {
            assert!(
                staff.in_department(&t.department).any(|m| m.holds(&t.handler_role)),
                "nobody in {} is a {}",
                t.department,
                t.handler_role
            );
        }
        assert!(staff.director().is_some());
        assert!(!staff.management().is_empty());
    }

    #[test]
    fn a_department_head_missing_from_the_directory_is_named() {
        // The default departments name heads that this directory lacks.
        let e = Policy::from_toml(
            Some("[staff]\nsupervisors = [\"s1\"]\n[[staff.members]]\nid = \"s1\"\nname = \"A\"\nrole = \"supervisor\"\ndepartment = \"after_sales\"\n"),
            "test",
        )
        .unwrap_err();
        assert_eq!(e.key, "departments[0].head");
    }

    #[test]
    fn errors_name_the_member_and_field() {
        let e = Policy::from_toml(
            Some(
                "[staff]\n[[staff.members]]\nid = \"x\"\nname = \"X\"\nrole = \"boss\"\ndepartment = \"after_sales\"\n",
            ),
            "t",
        )
        .unwrap_err();
        assert_eq!(e.key, "staff.members[0].role");
        let e = Policy::from_toml(
            Some("[staff]\n[[staff.members]]\nid = \"x\"\nname = \"X\"\nrole = \"handler\"\ndepartment = \"after_sales\"\nemail = \"nope\"\n"),
            "t",
        )
        .unwrap_err();
        assert_eq!(e.key, "staff.members[0].email");
    }

    #[test]
    fn weekend_shift_staff_are_on_duty_on_saturday_but_not_on_leave() {
        let p = Policy::default_policy();
        let tz = p.calendar().time_zone();
        let weekend = p.staff().members().iter().find(|m| m.id == "s-as-03").expect("the weekend engineer");
        // Saturday 2026-12-05 11:00 local.
        let sat = tz.with_ymd_and_hms(2026, 12, 5, 11, 0, 0).unwrap().with_timezone(&chrono::Utc);
        assert!(weekend.on_duty(sat));
        let mon = tz.with_ymd_and_hms(2026, 12, 7, 11, 0, 0).unwrap().with_timezone(&chrono::Utc);
        assert!(!weekend.on_duty(mon));
        let weekday = p.staff().get("s-as-01").unwrap();
        assert!(weekday.on_duty(mon));
        assert!(!weekday.on_duty(sat));
        // Lunch break.
        let lunch = tz.with_ymd_and_hms(2026, 12, 7, 12, 30, 0).unwrap().with_timezone(&chrono::Utc);
        assert!(!weekday.on_duty(lunch));
    }
}
