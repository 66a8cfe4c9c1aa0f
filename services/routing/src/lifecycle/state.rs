//! The ticket state machine (DOMAIN.md's closed loop, steps 5–9): which
//! action is allowed in which status and where it leads. Pure: no I/O, so
//! every transition, the refused ones included, is unit tested here and the
//! gRPC actions only apply what it decides.
//!
//! ```text
//! new/triage ──reassign──▶ assigned ──acknowledge──▶ acknowledged ──progress──▶ in progress
//!   (classify: triage → new)                             │   ▲ resume      │
//!                                                         └─▶ waiting ◀─────┘
//! acknowledged / in progress / reopened ──resolve──▶ resolved ──progress/rate──▶ follow-up
//! follow-up (or resolved, when no follow-up is due) ──close──▶ closed ──archive──▶ archived
//! resolved / follow-up / closed ──reopen (≤ 3 times, then a supervisor)──▶ reopened
//! ```

use kesu_proto::v1::TicketStatus;

/// What staff (or a customer, for ratings) do to a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Acknowledge,
    RecordProgress,
    WaitOnCustomer,
    Resume,
    ExtendDeadline,
    /// Reassign to a department and, when given, a handler.
    Reassign {
        to_handler: bool,
    },
    Classify,
    SetPriority,
    Escalate,
    Resolve,
    /// Resolved with its common issue, in one action for every linked ticket.
    ResolveWithCommonIssue,
    /// A satisfaction rating 1–5.
    Rate {
        score: u32,
    },
    Reopen,
    Close,
    Archive,
    AddNote,
}

impl Action {
    /// The action's name in messages (`acknowledge`, `record progress`, …).
    pub fn name(self) -> &'static str {
        match self {
            Action::Acknowledge => "acknowledge",
            Action::RecordProgress => "record progress",
            Action::WaitOnCustomer => "wait on the customer",
            Action::Resume => "resume",
            Action::ExtendDeadline => "extend a deadline",
            Action::Reassign { .. } => "reassign",
            Action::Classify => "classify",
            Action::SetPriority => "set the priority",
            Action::Escalate => "escalate",
            Action::Resolve => "resolve",
            Action::ResolveWithCommonIssue => "resolve with the common issue",
            Action::Rate { .. } => "rate",
            Action::Reopen => "reopen",
            Action::Close => "close",
            Action::Archive => "archive",
            Action::AddNote => "add a note",
        }
    }
}

/// Reopens allowed before a supervisor must decide.
pub const MAX_REOPENS: u32 = 3;
/// Ratings at or below this open a dissatisfaction review.
pub const DISSATISFIED_AT_MOST: u32 = 3;

/// The part of a ticket the state machine decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    pub status: TicketStatus,
    pub version: u64,
    pub reopen_count: u32,
    /// A primary handler is assigned.
    pub has_handler: bool,
    /// A follow-up visit is due before closing (urgent, high and medium
    /// priority; low-priority tickets may close once resolved).
    pub follow_up_due: bool,
}

/// Who acts, as far as the state machine cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Actor {
    /// A supervisor may reopen beyond [`MAX_REOPENS`] (they decide).
    pub supervisor: bool,
}

/// What an allowed action does to the lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: TicketStatus,
    pub to: TicketStatus,
    /// A rating ≤ 3 that reopens the ticket into a dissatisfaction review
    /// (a second change, with its own version).
    pub review: Review,
}

/// What a low rating leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    /// Not a low rating.
    None,
    /// Reopened into a dissatisfaction review led by a supervisor.
    Reopen,
    /// Reopened too often already: a supervisor must decide; the ticket stays.
    SupervisorDecides,
}

/// Why an action is refused (FAILED_PRECONDITION, naming the status).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action}: the ticket is {status}{hint}")]
pub struct Refused {
    pub action: &'static str,
    pub status: &'static str,
    pub hint: &'static str,
}

/// `in progress`, `waiting on customer`, … for messages.
pub fn status_words(status: TicketStatus) -> &'static str {
    match status {
        TicketStatus::Unspecified => "in an unknown status",
        TicketStatus::New => "new",
        TicketStatus::Triage => "in triage",
        TicketStatus::Assigned => "assigned",
        TicketStatus::Acknowledged => "acknowledged",
        TicketStatus::InProgress => "in progress",
        TicketStatus::WaitingOnCustomer => "waiting on the customer",
        TicketStatus::Resolved => "resolved",
        TicketStatus::FollowUp => "in follow-up",
        TicketStatus::Reopened => "reopened",
        TicketStatus::Closed => "closed",
        TicketStatus::Archived => "archived",
    }
}

/// Statuses in which the ticket is still being worked (before resolution).
pub fn is_open(status: TicketStatus) -> bool {
    use TicketStatus::*;
    matches!(status, New | Triage | Assigned | Acknowledged | InProgress | WaitingOnCustomer | Reopened)
}

impl Lifecycle {
    /// Decides `action`: where it leads, or why not.
    pub fn decide(&self, action: Action, actor: Actor) -> Result<Transition, Refused> {
        use TicketStatus::*;
        let s = self.status;
        let refuse = |hint: &'static str| Refused { action: action.name(), status: status_words(s), hint };
        let to = |to: TicketStatus| Ok(Transition { from: s, to, review: Review::None });
        match action {
            Action::Acknowledge => match s {
                Assigned | Reopened if self.has_handler => to(Acknowledged),
                New | Triage | Reopened => Err(refuse("; assign a handler first")),
                _ => Err(refuse("")),
            },
            Action::RecordProgress => match s {
                Acknowledged | InProgress | Reopened => to(InProgress),
                WaitingOnCustomer => to(WaitingOnCustomer),
                // The result told / the follow-up visit made.
                Resolved | FollowUp => to(FollowUp),
                Assigned => Err(refuse("; acknowledge it first")),
                _ => Err(refuse("")),
            },
            Action::WaitOnCustomer => match s {
                Acknowledged | InProgress | Reopened => to(WaitingOnCustomer),
                _ => Err(refuse("")),
            },
            Action::Resume => match s {
                WaitingOnCustomer => to(InProgress),
                _ => Err(refuse("; only a ticket waiting on the customer resumes")),
            },
            Action::ExtendDeadline | Action::Escalate => match s {
                _ if is_open(s) || matches!(s, Resolved | FollowUp) => to(s),
                _ => Err(refuse("")),
            },
            Action::SetPriority => match s {
                _ if is_open(s) => to(s),
                _ => Err(refuse("")),
            },
            Action::Classify => match s {
                Triage => to(if self.has_handler { Assigned } else { New }),
                _ if is_open(s) || matches!(s, Resolved | FollowUp) => to(s),
                _ => Err(refuse("")),
            },
            Action::Reassign { to_handler } => match s {
                _ if is_open(s) => to(if to_handler {
                    Assigned
                } else if s == Triage {
                    Triage
                } else {
                    New
                }),
                _ => Err(refuse("")),
            },
            Action::Resolve => match s {
                Acknowledged | InProgress | Reopened => to(Resolved),
                Assigned => Err(refuse("; acknowledge it first")),
                WaitingOnCustomer => Err(refuse("; resume it first")),
                _ => Err(refuse("")),
            },
            Action::ResolveWithCommonIssue => match s {
                _ if is_open(s) => to(Resolved),
                _ => Err(refuse("")),
            },
            Action::Rate { score } => match s {
                Resolved | FollowUp => {
                    let review = if score > DISSATISFIED_AT_MOST {
                        Review::None
                    } else if self.reopen_count < MAX_REOPENS {
                        Review::Reopen
                    } else {
                        Review::SupervisorDecides
                    };
                    let to = if review == Review::Reopen { Reopened } else { FollowUp };
                    Ok(Transition { from: s, to, review })
                }
                _ => Err(refuse("; only a resolved ticket is rated")),
            },
            Action::Reopen => match s {
                Resolved | FollowUp | Closed if self.reopen_count < MAX_REOPENS || actor.supervisor => to(Reopened),
                Resolved | FollowUp | Closed => {
                    Err(refuse("; it was reopened 3 times already, a supervisor must decide"))
                }
                _ => Err(refuse("")),
            },
            Action::Close => match s {
                FollowUp => to(Closed),
                Resolved if !self.follow_up_due => to(Closed),
                Resolved => Err(refuse("; the follow-up visit comes first")),
                _ => Err(refuse("")),
            },
            Action::Archive => match s {
                Closed => to(Archived),
                _ => Err(refuse("; only a closed ticket is archived")),
            },
            Action::AddNote => match s {
                Archived => Err(refuse("")),
                _ => to(s),
            },
        }
    }

    /// Applies an allowed transition: new status, one version per change
    /// (two when a low rating also reopens), reopen count.
    pub fn apply(&mut self, action: Action, t: Transition) {
        self.status = t.to;
        self.version += if t.review == Review::Reopen { 2 } else { 1 };
        if t.to == TicketStatus::Reopened && t.from != TicketStatus::Reopened {
            self.reopen_count += 1;
        }
        if let Action::Reassign { to_handler } = action {
            self.has_handler = to_handler;
        }
    }

    /// The changes an action makes (1, or 2 for a rating that reopens).
    pub fn versions_of(t: &Transition) -> u64 {
        if t.review == Review::Reopen { 2 } else { 1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TicketStatus::*;
    use proptest::prelude::*;

    fn at(status: TicketStatus) -> Lifecycle {
        Lifecycle { status, version: 1, reopen_count: 0, has_handler: true, follow_up_due: true }
    }

    fn go(l: Lifecycle, action: Action) -> Result<TicketStatus, String> {
        l.decide(action, Actor::default()).map(|t| t.to).map_err(|e| e.to_string())
    }

    #[test]
    fn the_happy_path_runs_from_assignment_to_the_archive() {
        let mut l = at(New);
        l.has_handler = false;
        for (action, expected) in [
            (Action::Reassign { to_handler: true }, Assigned),
            (Action::Acknowledge, Acknowledged),
            (Action::RecordProgress, InProgress),
            (Action::WaitOnCustomer, WaitingOnCustomer),
            (Action::Resume, InProgress),
            (Action::Resolve, Resolved),
            (Action::RecordProgress, FollowUp),
            (Action::Rate { score: 5 }, FollowUp),
            (Action::Close, Closed),
            (Action::Archive, Archived),
        ] {
            let t = l.decide(action, Actor::default()).unwrap();
            assert_eq!(t.to, expected, "{action:?}");
            l.apply(action, t);
        }
        assert_eq!(l.version, 11);
    }

    #[test]
    fn classifying_a_triage_ticket_takes_it_out_of_triage() {
        let mut l = at(Triage);
        l.has_handler = false;
        assert_eq!(go(l, Action::Classify), Ok(New));
        l.has_handler = true;
        assert_eq!(go(l, Action::Classify), Ok(Assigned));
        assert_eq!(go(at(InProgress), Action::Classify), Ok(InProgress));
        assert_eq!(go(at(Closed), Action::Classify).unwrap_err(), "cannot classify: the ticket is closed");
    }

    #[test]
    fn acknowledging_needs_an_assigned_handler() {
        let mut l = at(New);
        l.has_handler = false;
        assert_eq!(
            go(l, Action::Acknowledge).unwrap_err(),
            "cannot acknowledge: the ticket is new; assign a handler first"
        );
        assert_eq!(
            go(at(Acknowledged), Action::Acknowledge).unwrap_err(),
            "cannot acknowledge: the ticket is acknowledged"
        );
        assert_eq!(go(at(Reopened), Action::Acknowledge), Ok(Acknowledged));
    }

    #[test]
    fn resolving_needs_acknowledgement_and_not_waiting() {
        assert_eq!(
            go(at(Assigned), Action::Resolve).unwrap_err(),
            "cannot resolve: the ticket is assigned; acknowledge it first"
        );
        assert_eq!(
            go(at(WaitingOnCustomer), Action::Resolve).unwrap_err(),
            "cannot resolve: the ticket is waiting on the customer; resume it first"
        );
        assert_eq!(go(at(Closed), Action::Resolve).unwrap_err(), "cannot resolve: the ticket is closed");
        for s in [Acknowledged, InProgress, Reopened] {
            assert_eq!(go(at(s), Action::Resolve), Ok(Resolved));
        }
    }

    #[test]
    fn waiting_and_resuming() {
        assert_eq!(go(at(InProgress), Action::WaitOnCustomer), Ok(WaitingOnCustomer));
        assert_eq!(
            go(at(WaitingOnCustomer), Action::WaitOnCustomer).unwrap_err(),
            "cannot wait on the customer: the ticket is waiting on the customer"
        );
        assert_eq!(
            go(at(InProgress), Action::Resume).unwrap_err(),
            "cannot resume: the ticket is in progress; only a ticket waiting on the customer resumes"
        );
        assert_eq!(go(at(WaitingOnCustomer), Action::RecordProgress), Ok(WaitingOnCustomer));
    }

    #[test]
    fn a_low_rating_reopens_into_a_review_until_the_third_reopen() {
        let l = at(FollowUp);
        let t = l.decide(Action::Rate { score: 3 }, Actor::default()).unwrap();
        assert_eq!((t.to, t.review), (Reopened, Review::Reopen));
        let t = l.decide(Action::Rate { score: 4 }, Actor::default()).unwrap();
        assert_eq!((t.to, t.review), (FollowUp, Review::None));
        let mut tired = at(Resolved);
        tired.reopen_count = 3;
        let t = tired.decide(Action::Rate { score: 1 }, Actor::default()).unwrap();
        assert_eq!((t.to, t.review), (FollowUp, Review::SupervisorDecides));
        assert_eq!(
            go(at(InProgress), Action::Rate { score: 5 }).unwrap_err(),
            "cannot rate: the ticket is in progress; only a resolved ticket is rated"
        );
    }

    #[test]
    fn reopening_is_limited_to_three_times_then_a_supervisor_decides() {
        let mut l = at(Closed);
        l.reopen_count = 3;
        assert_eq!(
            go(l, Action::Reopen).unwrap_err(),
            "cannot reopen: the ticket is closed; it was reopened 3 times already, a supervisor must decide"
        );
        assert_eq!(l.decide(Action::Reopen, Actor { supervisor: true }).unwrap().to, Reopened);
        assert_eq!(go(at(InProgress), Action::Reopen).unwrap_err(), "cannot reopen: the ticket is in progress");
        assert_eq!(go(at(Archived), Action::Reopen).unwrap_err(), "cannot reopen: the ticket is archived");
    }

    #[test]
    fn closing_comes_after_the_follow_up_unless_none_is_due() {
        assert_eq!(
            go(at(Resolved), Action::Close).unwrap_err(),
            "cannot close: the ticket is resolved; the follow-up visit comes first"
        );
        let mut low = at(Resolved);
        low.follow_up_due = false;
        assert_eq!(go(low, Action::Close), Ok(Closed));
        assert_eq!(go(at(FollowUp), Action::Close), Ok(Closed));
        assert_eq!(go(at(InProgress), Action::Close).unwrap_err(), "cannot close: the ticket is in progress");
    }

    #[test]
    fn only_closed_tickets_are_archived_and_archived_ones_are_final() {
        assert_eq!(go(at(Closed), Action::Archive), Ok(Archived));
        assert_eq!(
            go(at(Resolved), Action::Archive).unwrap_err(),
            "cannot archive: the ticket is resolved; only a closed ticket is archived"
        );
        for action in ALL {
            assert!(at(Archived).decide(action, Actor { supervisor: true }).is_err(), "{action:?}");
        }
    }

    #[test]
    fn steering_is_refused_once_resolved() {
        assert_eq!(
            go(at(Resolved), Action::SetPriority).unwrap_err(),
            "cannot set the priority: the ticket is resolved"
        );
        assert_eq!(
            go(at(Closed), Action::Reassign { to_handler: true }).unwrap_err(),
            "cannot reassign: the ticket is closed"
        );
        assert_eq!(
            go(at(Closed), Action::ExtendDeadline).unwrap_err(),
            "cannot extend a deadline: the ticket is closed"
        );
        assert_eq!(go(at(Closed), Action::AddNote), Ok(Closed));
        assert_eq!(go(at(Assigned), Action::Reassign { to_handler: false }), Ok(New));
    }

    #[test]
    fn a_common_issue_resolves_every_open_linked_ticket() {
        for s in [New, Triage, Assigned, Acknowledged, InProgress, WaitingOnCustomer, Reopened] {
            assert_eq!(go(at(s), Action::ResolveWithCommonIssue), Ok(Resolved), "{s:?}");
        }
        assert!(go(at(Closed), Action::ResolveWithCommonIssue).is_err());
    }

    const ALL: [Action; 18] = [
        Action::Acknowledge,
        Action::RecordProgress,
        Action::WaitOnCustomer,
        Action::Resume,
        Action::ExtendDeadline,
        Action::Reassign { to_handler: true },
        Action::Reassign { to_handler: false },
        Action::Classify,
        Action::SetPriority,
        Action::Escalate,
        Action::Resolve,
        Action::ResolveWithCommonIssue,
        Action::Rate { score: 2 },
        Action::Rate { score: 5 },
        Action::Reopen,
        Action::Close,
        Action::Archive,
        Action::AddNote,
    ];

    const LEGAL: [TicketStatus; 11] = [
        New,
        Triage,
        Assigned,
        Acknowledged,
        InProgress,
        WaitingOnCustomer,
        Resolved,
        FollowUp,
        Reopened,
        Closed,
        Archived,
    ];

    proptest! {
        #[test]
        fn random_action_sequences_never_reach_an_illegal_state_and_versions_only_grow(
            steps in proptest::collection::vec((0..ALL.len(), any::<bool>()), 0..80),
            follow_up_due in any::<bool>(),
        ) {
            let mut l = Lifecycle { status: New, version: 1, reopen_count: 0, has_handler: false, follow_up_due };
            for (i, supervisor) in steps {
                let before = l;
                match l.decide(ALL[i], Actor { supervisor }) {
                    Ok(t) => {
                        prop_assert_eq!(t.from, before.status);
                        l.apply(ALL[i], t);
                        prop_assert!(l.version > before.version);
                        prop_assert_eq!(l.version - before.version, Lifecycle::versions_of(&t));
                        prop_assert!(before.status != Archived, "nothing leaves the archive");
                        if l.reopen_count > before.reopen_count && before.reopen_count >= MAX_REOPENS {
                            prop_assert!(supervisor && ALL[i] == Action::Reopen, "only a supervisor reopens a fourth time");
                        }
                        if matches!(l.status, Acknowledged) {
                            prop_assert!(l.has_handler, "acknowledged without a handler");
                        }
                    }
                    Err(refused) => {
                        prop_assert_eq!(l, before, "a refused action changes nothing");
                        prop_assert!(refused.to_string().contains(status_words(before.status)));
                    }
                }
                prop_assert!(LEGAL.contains(&l.status));
            }
        }
    }
}
