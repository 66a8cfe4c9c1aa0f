//! The staff API over tickets: queries, and every action of the lifecycle
//! (`lifecycle`), each for the staff the token names and within their scope.

use std::sync::Arc;

use kesu_proto::v1::ticket_service_server::TicketService;
use kesu_proto::v1::*;
use kesu_runtime::paging;
use kesu_storage::Database;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::lifecycle::{Caller, Context, archive, closing, handling, rating, steering};
use crate::store::{self, TicketFilter, TicketKey};
use crate::tickets::{priority_name, status_name};
use crate::{cases, common_issues};

pub struct TicketApi {
    db: Database,
    ctx: Arc<Context>,
}

impl TicketApi {
    pub fn new(ctx: Arc<Context>) -> Self {
        Self { db: ctx.db.clone(), ctx }
    }
}

/// The staff the auth layer verified (it lets no request through without).
fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    let staff = kesu_auth::staff(request).ok_or_else(|| Status::unauthenticated("no verified staff token"))?;
    Ok(Caller::Staff(staff.clone()))
}

/// Narrows a ticket list to a work queue of the caller.
fn queue(filter: &mut TicketFilter, queue: i32, staff: Option<&kesu_auth::Staff>) -> Result<(), Status> {
    let queue = TicketQueue::try_from(queue).map_err(|_| Error::InvalidArgument {
        field: "queue",
        message: format!("{queue} is not a known TicketQueue value"),
    })?;
    let staff = || staff.ok_or_else(|| Status::unauthenticated("no verified staff token"));
    match queue {
        TicketQueue::Unspecified => {}
        TicketQueue::Mine => filter.member = staff()?.id.clone(),
        TicketQueue::MyDepartment => {
            let department = staff()?.department.clone();
            if department.is_empty() {
                let message = "your token names no department".into();
                return Err(Error::InvalidArgument { field: "queue", message }.into());
            }
            filter.department = department;
        }
        TicketQueue::Unclassified => filter.statuses.push(status_name(TicketStatus::Triage as i32)),
        TicketQueue::WaitingOnCustomer => filter.statuses.push(status_name(TicketStatus::WaitingOnCustomer as i32)),
        TicketQueue::AtRisk => {
            filter.at_risk = true;
            if filter.statuses.is_empty() {
                use TicketStatus::*;
                for s in [New, Triage, Assigned, Acknowledged, InProgress, WaitingOnCustomer, Reopened] {
                    filter.statuses.push(status_name(s as i32));
                }
            }
        }
    }
    Ok(())
}

fn reply(result: Result<Ticket, Error>) -> Result<Response<Ticket>, Status> {
    result.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl TicketService for TicketApi {
    async fn get_ticket(&self, request: Request<GetTicketRequest>) -> Result<Response<Ticket>, Status> {
        let key = match &request.get_ref().key {
            Some(get_ticket_request::Key::TicketId(id)) => TicketKey::Id(id),
            Some(get_ticket_request::Key::FeedbackNumber(n)) => TicketKey::FeedbackNumber(n),
            None => {
                let message = "give ticket_id or feedback_number".into();
                return Err(Error::InvalidArgument { field: "key", message }.into());
            }
        };
        let ticket = store::get_ticket(self.db.pool(), key).await?.ok_or(Error::NotFound("no such ticket"))?;
        Ok(Response::new(ticket))
    }

    async fn list_tickets(
        &self,
        request: Request<ListTicketsRequest>,
    ) -> Result<Response<ListTicketsResponse>, Status> {
        let staff = kesu_auth::staff(&request).cloned();
        let req = request.into_inner();
        let size = paging::page_size(req.page.as_ref(), 50, 500);
        let cursor = paging::cursor(req.page.as_ref())?;
        let mut statuses = Vec::new();
        for s in &req.statuses {
            if TicketStatus::try_from(*s).is_err() {
                let message = format!("{s} is not a known TicketStatus value");
                return Err(Error::InvalidArgument { field: "statuses", message }.into());
            }
            statuses.push(status_name(*s));
        }
        if Priority::try_from(req.priority).is_err() {
            let message = format!("{} is not a known Priority value", req.priority);
            return Err(Error::InvalidArgument { field: "priority", message }.into());
        }
        let mut filter = TicketFilter {
            statuses,
            department: req.department,
            handler: req.handler,
            priority: if req.priority == 0 { String::new() } else { priority_name(req.priority).to_string() },
            channel: Channel::try_from(req.channel)
                .ok()
                .and_then(kesu_domain::channel_token)
                .unwrap_or_default()
                .to_string(),
            ..Default::default()
        };
        queue(&mut filter, req.queue, staff.as_ref())?;
        let rows = store::list_tickets(self.db.pool(), &filter, cursor, size).await?;
        let next_page_token = paging::next_token(&rows, size);
        Ok(Response::new(ListTicketsResponse {
            tickets: rows.into_iter().map(|(_, _, t)| t).collect(),
            next_page_token,
        }))
    }

    async fn get_ticket_history(
        &self,
        request: Request<GetTicketHistoryRequest>,
    ) -> Result<Response<GetTicketHistoryResponse>, Status> {
        let entries = store::history(self.db.pool(), &request.get_ref().ticket_id).await?;
        if entries.is_empty() {
            return Err(Error::NotFound("no such ticket").into());
        }
        Ok(Response::new(GetTicketHistoryResponse { entries }))
    }

    async fn acknowledge(&self, request: Request<AcknowledgeRequest>) -> Result<Response<Ticket>, Status> {
        let caller = caller(&request)?;
        reply(handling::acknowledge(&self.ctx, &caller, request.get_ref()).await)
    }
    async fn record_progress(&self, request: Request<RecordProgressRequest>) -> Result<Response<Ticket>, Status> {
        let caller = caller(&request)?;
        reply(handling::record_progress(&self.ctx, &caller, request.get_ref()).await)
    }
    async fn wait_on_customer(&self, request: Request<WaitOnCustomerRequest>) -> Result<Response<Ticket>, Status> {
        let caller = caller(&request)?;
        reply(handling::wait_on_customer(&self.ctx, &caller, request.get_ref()).await)
    }
    async fn resume(&self, request: Request<ResumeRequest>) -> Result<Response<Ticket>, Status> {
        let caller = caller(&request)?;
        reply(handling::resume(&self.ctx, &caller, request.get_ref()).await)
    }
    async fn extend_deadline(&self, request: Request<ExtendDeadlineRequest>) -> Result<Response<Ticket>, Status> {
        let caller = caller(&request)?;
        reply(steering::extend_deadline(&self.ctx, &caller, request.get_ref()).await)
    }
    async fn reassign(&self, request: Request<ReassignRequest>) -> Result<Response<Ticket>, Status> {
        let caller = caller(&request)?;
        reply(steering::reassign(&self.ctx, &caller, request.get_ref()).await)
    }
    async fn classify(&self, request: Request<ClassifyRequest>) -> Result<Response<Ticket>, Status> {
        let caller = caller(&request)?;
        reply(steering::classify(&self.ctx, &caller, request.get_ref()).await)
    }
    async fn set_priority(&self, request: Request<SetPriorityRequest>) -> Result<Response<Ticket>, Status> {
        let caller = caller(&request)?;
        reply(steering::set_priority(&self.ctx, &caller, request.get_ref()).await)
    }
    async fn escalate(&self, request: Request<EscalateRequest>) -> Result<Response<Ticket>, Status> {
        let caller = caller(&request)?;
        reply(steering::escalate(&self.ctx, &caller, request.get_ref()).await)
    }
    async fn resolve(&self, request: Request<ResolveRequest>) -> Result<Response<Ticket>, Status> {
        let caller = caller(&request)?;
        reply(handling::resolve(&self.ctx, &caller, request.get_ref()).await)
    }
    async fn rate(&self, request: Request<RateRequest>) -> Result<Response<Ticket>, Status> {
        let caller = caller(&request)?;
        reply(rating::rate(&self.ctx, &caller, request.get_ref()).await)
    }
    async fn reopen(&self, request: Request<ReopenRequest>) -> Result<Response<Ticket>, Status> {
        let caller = caller(&request)?;
        reply(closing::reopen(&self.ctx, &caller, request.get_ref()).await)
    }
    async fn close(&self, request: Request<CloseRequest>) -> Result<Response<Ticket>, Status> {
        let caller = caller(&request)?;
        reply(closing::close(&self.ctx, &caller, request.get_ref()).await)
    }
    async fn archive(&self, request: Request<ArchiveRequest>) -> Result<Response<Ticket>, Status> {
        let caller = caller(&request)?;
        reply(archive::archive(&self.ctx, &caller, request.get_ref()).await)
    }
    async fn add_note(&self, request: Request<AddNoteRequest>) -> Result<Response<Ticket>, Status> {
        let caller = caller(&request)?;
        reply(handling::add_note(&self.ctx, &caller, request.get_ref()).await)
    }
    async fn list_common_issues(
        &self,
        request: Request<ListCommonIssuesRequest>,
    ) -> Result<Response<ListCommonIssuesResponse>, Status> {
        let req = request.into_inner();
        let size = paging::page_size(req.page.as_ref(), 50, 500);
        let cursor = paging::cursor(req.page.as_ref())?;
        let status = match CommonIssueStatus::try_from(req.status) {
            Ok(CommonIssueStatus::Unspecified) => None,
            Ok(s) => Some(s),
            Err(_) => {
                let message = format!("{} is not a known CommonIssueStatus value", req.status);
                return Err(Error::InvalidArgument { field: "status", message }.into());
            }
        };
        let rows = common_issues::list(self.db.pool(), status, cursor, size).await?;
        let next_page_token = paging::next_token(&rows, size);
        Ok(Response::new(ListCommonIssuesResponse {
            issues: rows.into_iter().map(|(_, _, i)| i).collect(),
            next_page_token,
        }))
    }
    async fn get_common_issue(&self, request: Request<GetCommonIssueRequest>) -> Result<Response<CommonIssue>, Status> {
        let issue = common_issues::get(self.db.pool(), &request.get_ref().common_issue_id)
            .await?
            .ok_or(Error::NotFound("no such common issue"))?;
        Ok(Response::new(issue))
    }
    async fn resolve_common_issue(
        &self,
        request: Request<ResolveCommonIssueRequest>,
    ) -> Result<Response<CommonIssue>, Status> {
        let caller = caller(&request)?;
        let issue = common_issues::resolve(&self.ctx, &caller, request.get_ref()).await?;
        Ok(Response::new(issue))
    }
    async fn search_cases(
        &self,
        request: Request<SearchCasesRequest>,
    ) -> Result<Response<SearchCasesResponse>, Status> {
        let req = request.into_inner();
        let size = paging::page_size(req.page.as_ref(), 20, 200);
        let cursor = paging::cursor(req.page.as_ref())?;
        let words: Vec<String> = req.query.split_whitespace().map(str::to_string).take(8).collect();
        let rows = cases::search(self.db.pool(), req.type_code.trim(), &words, cursor, size).await?;
        let next_page_token = paging::next_token(&rows, size);
        Ok(Response::new(SearchCasesResponse { cases: rows.into_iter().map(|(_, _, c)| c).collect(), next_page_token }))
    }
    async fn list_rejected_ratings(
        &self,
        request: Request<ListRejectedRatingsRequest>,
    ) -> Result<Response<ListRejectedRatingsResponse>, Status> {
        let req = request.into_inner();
        let size = paging::page_size(req.page.as_ref(), 50, 500);
        let cursor = paging::cursor(req.page.as_ref())?;
        let rows = crate::customer_rating::rejected(self.db.pool(), cursor, size).await?;
        let next_page_token = paging::next_token(&rows, size);
        Ok(Response::new(ListRejectedRatingsResponse {
            ratings: rows.into_iter().map(|(_, _, r)| r).collect(),
            next_page_token,
        }))
    }
}
