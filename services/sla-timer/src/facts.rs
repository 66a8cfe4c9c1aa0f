//! What sla-timer knows of a ticket: the latest snapshot routing announced
//! and the timeline of the changes that move clocks, keyed by ticket
//! version. Events are folded by version, not by arrival: an older event
//! that arrives late fills its place in the timeline and never undoes a
//! newer state; a redelivered one changes nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kesu_domain::time::{from_millis, from_timestamp, to_millis};
use kesu_proto::v1::{ProgressStage, Ticket, TicketEvent, TicketStatus, ticket_event};
use serde::{Deserialize, Serialize};

/// The ticket's current attributes (from the highest version seen).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u64,
    pub feedback_number: String,
    pub priority: i32,
    pub type_code: String,
    pub cause_code: String,
    pub request_nature: i32,
    pub customer_tier: String,
    pub department: String,
    pub handler: String,
    pub channel: i32,
    pub status: i32,
    pub received_at: Option<i64>,
    pub submitted_at: Option<i64>,
    pub created_at: Option<i64>,
}

/// A change that moves clocks, at the instant it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fact", rename_all = "snake_case")]
pub enum Fact {
    /// Assigned to a handler (also a ticket created with one).
    Assigned {
        at: i64,
        handler: String,
    },
    Acknowledged {
        at: i64,
    },
    Progress {
        at: i64,
        stage: i32,
    },
    Waiting {
        at: i64,
    },
    Resumed {
        at: i64,
    },
    Extended {
        at: i64,
        clock: i32,
        new_deadline: i64,
        reason: String,
    },
    Resolved {
        at: i64,
    },
    Reopened {
        at: i64,
    },
    /// The result was told: the ticket moved to follow-up.
    ResultTold {
        at: i64,
    },
    Rated {
        at: i64,
    },
    Closed {
        at: i64,
    },
    /// Anything else (kept so a version is known to be applied).
    Other {
        at: i64,
    },
}

impl Fact {
    pub fn at(&self) -> i64 {
        match self {
            Fact::Assigned { at, .. }
            | Fact::Acknowledged { at }
            | Fact::Progress { at, .. }
            | Fact::Waiting { at }
            | Fact::Resumed { at }
            | Fact::Extended { at, .. }
            | Fact::Resolved { at }
            | Fact::Reopened { at }
            | Fact::ResultTold { at }
            | Fact::Rated { at }
            | Fact::Closed { at }
            | Fact::Other { at } => *at,
        }
    }
}

/// A point of a clock that has fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fired {
    /// When it was due (ms).
    pub due: i64,
    /// When it fired (ms).
    pub at: i64,
    pub late: bool,
}

/// Everything sla-timer keeps per ticket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketFacts {
    pub ticket_id: String,
    pub snapshot: Snapshot,
    /// Changes by ticket version; a version may hold several facts (a
    /// ticket created with a handler is also an assignment).
    pub timeline: BTreeMap<u64, Vec<Fact>>,
    /// Fired points by id (see `plan`): a point never fires twice.
    pub fired: BTreeMap<String, Fired>,
}

/// What applying an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A version not seen before.
    New,
    /// This version was applied already (a redelivery): nothing changes.
    Seen,
}

fn ms(ts: &Option<prost_types::Timestamp>) -> Option<i64> {
    ts.as_ref().and_then(from_timestamp).map(to_millis)
}

impl TicketFacts {
    pub fn new(ticket_id: &str) -> Self {
        Self { ticket_id: ticket_id.to_string(), ..Default::default() }
    }

    /// The instant a ticket's clocks start: the customer's submission for
    /// the channels the policy names, else intake's receipt, else creation.
    pub fn start(&self, submission_channels: &[String]) -> Option<DateTime<Utc>> {
        let s = &self.snapshot;
        let channel = kesu_proto::v1::Channel::try_from(s.channel)
            .map(|c| c.as_str_name().trim_start_matches("CHANNEL_").to_ascii_lowercase())
            .unwrap_or_default();
        let submitted = submission_channels.contains(&channel).then_some(s.submitted_at).flatten();
        submitted
            .or(s.received_at)
            .or(s.created_at)
            .or_else(|| self.timeline.values().flatten().map(Fact::at).min())
            .map(from_millis)
    }

    /// The facts in version order.
    pub fn facts(&self) -> impl Iterator<Item = &Fact> {
        self.timeline.values().flatten()
    }

    /// Folds a ticket event in; `now` stands in for an event without time.
    pub fn apply(&mut self, event: &TicketEvent, now: DateTime<Utc>) -> Applied {
        let Some(ticket) = &event.ticket else { return Applied::Seen };
        let version = ticket.version.max(event.meta.as_ref().map(|m| m.aggregate_version).unwrap_or_default());
        if self.timeline.contains_key(&version) {
            return Applied::Seen;
        }
        let at = ms(&event.meta.as_ref().and_then(|m| m.occurred_at))
            .or(ms(&ticket.updated_at))
            .unwrap_or_else(|| to_millis(now));
        let facts = facts_of(event, ticket, at);
        self.timeline.insert(version, facts);
        if version >= self.snapshot.version {
            self.snapshot = snapshot_of(ticket, version);
        }
        Applied::New
    }
}

fn snapshot_of(t: &Ticket, version: u64) -> Snapshot {
    let class = t.classification.clone().unwrap_or_default();
    Snapshot {
        version,
        feedback_number: t.feedback_number.clone(),
        priority: t.priority,
        type_code: class.type_code,
        cause_code: class.cause_code,
        request_nature: class.request_nature,
        customer_tier: t.customer.as_ref().map(|c| c.tier.clone()).unwrap_or_default(),
        department: t.department.clone(),
        handler: t.handler.clone(),
        channel: t.channel,
        status: t.status,
        received_at: ms(&t.received_at),
        submitted_at: ms(&t.submitted_at),
        created_at: ms(&t.created_at),
    }
}

fn facts_of(event: &TicketEvent, ticket: &Ticket, at: i64) -> Vec<Fact> {
    use ticket_event::Kind;
    let mut facts = Vec::new();
    match &event.kind {
        Some(Kind::Created(_)) if !ticket.handler.is_empty() => {
            facts.push(Fact::Assigned { at, handler: ticket.handler.clone() })
        }
        Some(Kind::Assigned(a)) => {
            let handler = if a.handler.is_empty() { ticket.handler.clone() } else { a.handler.clone() };
            // Only a change of handler restarts the acknowledge clock.
            if !handler.is_empty() && handler != a.previous_handler {
                facts.push(Fact::Assigned { at, handler })
            }
        }
        Some(Kind::Acknowledged(_)) => facts.push(Fact::Acknowledged { at }),
        Some(Kind::Progress(p)) => facts.push(Fact::Progress { at, stage: p.stage }),
        Some(Kind::Waiting(_)) => facts.push(Fact::Waiting { at }),
        Some(Kind::Resumed(_)) => facts.push(Fact::Resumed { at }),
        Some(Kind::DeadlineExtended(x)) => {
            if let Some(new_deadline) = ms(&x.new_deadline) {
                facts.push(Fact::Extended { at, clock: x.clock, new_deadline, reason: x.reason.clone() })
            }
        }
        Some(Kind::Resolved(_)) => facts.push(Fact::Resolved { at }),
        Some(Kind::Reopened(_)) => facts.push(Fact::Reopened { at }),
        Some(Kind::Rated(_)) => facts.push(Fact::Rated { at }),
        Some(Kind::Closed(_)) => facts.push(Fact::Closed { at }),
        _ => {}
    }
    // The status tells what a kind this build does not read would: the
    // result told (follow-up) and a close.
    if ticket.status == TicketStatus::FollowUp as i32 && !matches!(event.kind, Some(Kind::Resolved(_))) {
        facts.push(Fact::ResultTold { at });
    }
    if facts.is_empty() {
        facts.push(Fact::Other { at });
    }
    facts
}

/// Whether a progress stage counts as the first contact.
pub fn is_first_contact(stage: i32) -> bool {
    stage == ProgressStage::ContactedCustomer as i32
}
