//! Satisfaction ratings: 1–5 overall and per dimension (speed, result,
//! attitude, communication), recorded by staff from a follow-up call or
//! sent by the customer through an adapter. One rating per survey round; a
//! score ≤ 3 reopens the ticket into a dissatisfaction review led by a
//! supervisor (after three reopens a supervisor decides instead).

use kesu_domain::time::to_timestamp;
use kesu_proto::v1::{
    RateRequest, Satisfaction, Ticket, TicketEscalated, TicketRated, TicketReopened, TicketStatus, ticket_event::Kind,
};

use super::state::{Action, MAX_REOPENS, Review};
use super::steering::escalation_target;
use super::{Caller, Context, Session, expected, retrying};
use crate::error::Error;

/// Checks a rating: overall 1–5, each dimension 0 (not rated) or 1–5.
pub fn check(s: Option<&Satisfaction>) -> Result<Satisfaction, Error> {
    let s = s.ok_or_else(|| Error::InvalidArgument { field: "satisfaction", message: "required".into() })?;
    if !(1..=5).contains(&s.score) {
        return Err(Error::InvalidArgument { field: "satisfaction.score", message: "1 to 5".into() });
    }
    for (field, v) in [
        ("satisfaction.response_speed", s.response_speed),
        ("satisfaction.result", s.result),
        ("satisfaction.attitude", s.attitude),
        ("satisfaction.communication", s.communication),
    ] {
        if v > 5 {
            return Err(Error::InvalidArgument { field, message: "0 (not rated) or 1 to 5".into() });
        }
    }
    if s.comment.chars().count() > 2000 {
        return Err(Error::InvalidArgument {
            field: "satisfaction.comment",
            message: "at most 2000 characters".into(),
        });
    }
    Ok(Satisfaction { rated_at: None, ..s.clone() })
}

/// Records a rating in the session: `ticket.evt.rated`, then for a low
/// score `ticket.evt.reopened` (review) or an escalation to a supervisor.
/// `false` when this survey round was rated already.
pub async fn rate_in(s: &mut Session<'_>, mut satisfaction: Satisfaction, source: &str) -> Result<bool, Error> {
    let t = s.decide(Action::Rate { score: satisfaction.score })?;
    let round = s.ticket.survey_round;
    let at = kesu_domain::time::to_millis(s.now);
    let ticket_id = s.ticket.ticket_id.clone();
    let fresh = sqlx::query(
        "INSERT INTO ratings (ticket_id, survey_round, source, score, at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (ticket_id, survey_round) DO NOTHING",
    )
    .bind(&ticket_id)
    .bind(round as i64)
    .bind(source)
    .bind(satisfaction.score as i64)
    .bind(at)
    .execute(s.conn())
    .await?
    .rows_affected()
        == 1;
    if !fresh {
        return Ok(false);
    }
    satisfaction.rated_at = Some(to_timestamp(s.now));
    let score = satisfaction.score;
    s.ticket.satisfaction = Some(satisfaction.clone());
    s.ticket.status = TicketStatus::FollowUp as i32;
    s.record(
        "rated",
        Kind::Rated(TicketRated { satisfaction: Some(satisfaction), source: source.into() }),
        format!("rated {score}/5 ({source})"),
    );
    let lead = escalation_target(s.policy(), &s.ticket.department, "supervisor").unwrap_or_default();
    match t.review {
        Review::None => {}
        Review::Reopen => {
            let reason = format!("satisfaction {score} ≤ 3: dissatisfaction review");
            reopen_in(s, &reason, true, &lead);
        }
        Review::SupervisorDecides => {
            let reason = format!("rated {score} after {MAX_REOPENS} reopens: a supervisor decides");
            let summary = format!("escalated to the supervisor {lead}: {reason}");
            let event = TicketEscalated { level: 1, to_role: "supervisor".into(), to_staff: lead, reason };
            s.record("escalated", Kind::Escalated(event), summary);
        }
    }
    Ok(true)
}

/// Reopens the ticket: a new survey round, one more reopen.
pub fn reopen_in(s: &mut Session<'_>, reason: &str, review: bool, lead: &str) {
    s.ticket.status = TicketStatus::Reopened as i32;
    s.ticket.reopen_count += 1;
    s.ticket.survey_round += 1;
    let mut summary = format!("reopened ({} of {MAX_REOPENS}): {reason}", s.ticket.reopen_count);
    if review {
        summary.push_str(&format!("; review led by {lead}"));
    }
    let event = TicketReopened { reason: reason.into(), dissatisfaction_review: review, review_lead: lead.into() };
    s.record("reopened", Kind::Reopened(event), summary);
}

/// Staff record the customer's rating (follow-up call).
pub async fn rate(ctx: &Context, caller: &Caller, req: &RateRequest) -> Result<Ticket, Error> {
    let satisfaction = check(req.satisfaction.as_ref())?;
    retrying!(
        expected(req.ticket.as_ref()),
        async {
            let mut s = Session::open(ctx, caller.clone(), req.ticket.as_ref()).await?;
            if !rate_in(&mut s, satisfaction.clone(), "staff").await? {
                return Err(Error::FailedPrecondition("this survey round was rated already".into()));
            }
            s.commit().await
        }
        .await
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_one_to_five_and_dimensions_zero_to_five() {
        let ok = Satisfaction {
            score: 3,
            response_speed: 0,
            result: 5,
            attitude: 1,
            communication: 2,
            ..Default::default()
        };
        assert_eq!(check(Some(&ok)).unwrap().score, 3);
        for (bad, field) in [
            (Satisfaction { score: 0, ..Default::default() }, "satisfaction.score"),
            (Satisfaction { score: 6, ..Default::default() }, "satisfaction.score"),
            (Satisfaction { score: 4, attitude: 6, ..Default::default() }, "satisfaction.attitude"),
            (Satisfaction { score: 4, comment: "很".repeat(2001), ..Default::default() }, "satisfaction.comment"),
        ] {
            let Err(Error::InvalidArgument { field: f, .. }) = check(Some(&bad)) else { panic!("{bad:?} accepted") };
            assert_eq!(f, field);
        }
        assert!(check(None).is_err());
    }
}
