//! The `[priority]`, `[[departments]]` and `[[taxonomy]]` sections: what
//! routing classifies into and where it sends tickets.

use std::collections::BTreeSet;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityPolicy {
    pub default: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Department {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    /// Staff id of the department head (paged for urgent tickets).
    #[serde(default)]
    pub head: Option<String>,
    /// Staff ids of the supervisors escalations of this department go to;
    /// empty: the directory's default supervisors.
    #[serde(default)]
    pub supervisors: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProblemType {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub department: String,
    pub handler_role: String,
    pub keywords: Vec<String>,
    pub causes: Vec<Cause>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cause {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub keywords: Vec<String>,
}

pub(super) fn validate(departments: &[Department], taxonomy: &[ProblemType]) -> Result<(), (String, String)> {
    let codes: BTreeSet<&str> = departments.iter().map(|d| d.code.as_str()).collect();
    if codes.len() != departments.len() {
        return Err(("departments".into(), "department codes must be unique".into()));
    }
    let mut types = BTreeSet::new();
    for (n, t) in taxonomy.iter().enumerate() {
        if !types.insert(t.code.as_str()) {
            return Err((format!("taxonomy[{n}].code"), format!("{:?} appears twice", t.code)));
        }
        if !codes.contains(t.department.as_str()) {
            return Err((format!("taxonomy[{n}].department"), format!("{:?} is not a department code", t.department)));
        }
        let mut causes = BTreeSet::new();
        for (m, c) in t.causes.iter().enumerate() {
            if !causes.insert(c.code.as_str()) {
                return Err((format!("taxonomy[{n}].causes[{m}].code"), format!("{:?} appears twice", c.code)));
            }
        }
    }
    Ok(())
}
