//! Archiving a closed ticket, with an entry in the case library (problem,
//! root, direct and indirect cause, solution, keywords) that `SearchCases`
//! finds by type and keyword.

use kesu_domain::time::{to_millis, to_timestamp};
use kesu_proto::v1::{ArchiveRequest, CaseEntry, Ticket, TicketArchived, ticket_event::Kind};

use super::state::Action;
use super::{Caller, Context, Session, expected, required, retrying};
use crate::error::Error;

/// `KB` + the digits of the feedback number (unique as feedback numbers are).
pub fn archive_number(ticket: &Ticket) -> String {
    let digits: String = ticket.feedback_number.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() { format!("KB-{}", ticket.ticket_id) } else { format!("KB{digits}") }
}

/// Keywords trimmed, lower-cased, without duplicates or empties.
fn keywords(lists: &[&[String]]) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::new();
    for k in lists.iter().flat_map(|l| l.iter()) {
        let k = k.trim().to_lowercase();
        if k.chars().count() > 64 {
            return Err(Error::InvalidArgument { field: "keywords", message: "each at most 64 characters".into() });
        }
        if !k.is_empty() && !out.contains(&k) {
            out.push(k);
        }
    }
    Ok(out)
}

/// The entry as checked: problem, root cause and solution required.
fn check_entry(entry: Option<&CaseEntry>, keywords: Vec<String>) -> Result<CaseEntry, Error> {
    let e = entry.ok_or_else(|| Error::InvalidArgument {
        field: "case_entry",
        message: "required to add the case to the library".into(),
    })?;
    if keywords.is_empty() {
        return Err(Error::InvalidArgument { field: "keywords", message: "a case needs keywords to be found".into() });
    }
    Ok(CaseEntry {
        problem: required("case_entry.problem", &e.problem, "what happened")?,
        root_cause: required("case_entry.root_cause", &e.root_cause, "the root cause")?,
        direct_cause: e.direct_cause.trim().to_string(),
        indirect_cause: e.indirect_cause.trim().to_string(),
        solution: required("case_entry.solution", &e.solution, "how it was solved")?,
        keywords,
        ..Default::default()
    })
}

pub async fn archive(ctx: &Context, caller: &Caller, req: &ArchiveRequest) -> Result<Ticket, Error> {
    let empty = Vec::new();
    let entry_keywords = req.case_entry.as_ref().map(|e| &e.keywords).unwrap_or(&empty);
    let words = keywords(&[&req.keywords, entry_keywords])?;
    let entry = if req.add_to_case_library { Some(check_entry(req.case_entry.as_ref(), words.clone())?) } else { None };
    retrying!(
        expected(req.ticket.as_ref()),
        async {
            let mut s = Session::open(ctx, caller.clone(), req.ticket.as_ref()).await?;
            let t = s.decide(Action::Archive)?;
            let number = archive_number(&s.ticket);
            s.ticket.status = t.to as i32;
            s.ticket.archive_number = number.clone();
            if let Some(entry) = &entry {
                let classification = s.ticket.classification.clone().unwrap_or_default();
                let entry = CaseEntry {
                    archive_number: number.clone(),
                    ticket_id: s.ticket.ticket_id.clone(),
                    type_code: classification.type_code,
                    cause_code: classification.cause_code,
                    archived_at: Some(to_timestamp(s.now)),
                    archived_by: s.caller().actor().to_string(),
                    ..entry.clone()
                };
                let at = to_millis(s.now);
                crate::cases::insert(s.conn(), &entry, at).await?;
            }
            let in_library = if entry.is_some() { ", added to the case library" } else { "" };
            let summary = format!("archived as {number}{in_library}");
            let event = TicketArchived {
                archive_number: number,
                keywords: words.clone(),
                added_to_case_library: entry.is_some(),
            };
            s.record("archived", Kind::Archived(event), summary);
            s.commit().await
        }
        .await
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_number_follows_the_feedback_number() {
        let t = Ticket { feedback_number: "FB202611240001".into(), ticket_id: "t".into(), ..Default::default() };
        assert_eq!(archive_number(&t), "KB202611240001");
    }

    #[test]
    fn keywords_are_merged_lower_cased_and_a_case_needs_its_analysis() {
        let a = vec![" Battery ".to_string(), "电池".to_string()];
        let b = vec!["battery".to_string(), "".to_string()];
        assert_eq!(keywords(&[&a, &b]).unwrap(), ["battery", "电池"]);
        let entry = CaseEntry {
            problem: "续航短".into(),
            root_cause: "电芯批次".into(),
            solution: "".into(),
            ..Default::default()
        };
        let Err(Error::InvalidArgument { field, .. }) = check_entry(Some(&entry), vec!["battery".into()]) else {
            panic!("accepted without a solution")
        };
        assert_eq!(field, "case_entry.solution");
        let entry = CaseEntry { solution: "换电池".into(), ..entry };
        assert!(check_entry(Some(&entry), vec![]).is_err(), "no keywords");
        assert_eq!(check_entry(Some(&entry), vec!["battery".into()]).unwrap().keywords, ["battery"]);
        assert!(check_entry(None, vec!["battery".into()]).is_err());
    }
}
