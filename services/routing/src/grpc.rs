//! The staff API over tickets. This version answers queries; the ticket
//! actions arrive with the ticket lifecycle and report UNIMPLEMENTED.

use kesu_proto::v1::ticket_service_server::TicketService;
use kesu_proto::v1::*;
use kesu_runtime::paging;
use kesu_storage::Database;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::store::{self, TicketFilter, TicketKey};
use crate::tickets::{priority_name, status_name};

pub struct TicketApi {
    db: Database,
}

impl TicketApi {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

fn pending(action: &str) -> Status {
    Status::unimplemented(format!("{action} is not available in this version of routing"))
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
        let filter = TicketFilter {
            statuses,
            department: req.department,
            handler: req.handler,
            priority: if req.priority == 0 { String::new() } else { priority_name(req.priority).to_string() },
            channel: Channel::try_from(req.channel)
                .ok()
                .and_then(kesu_domain::channel_token)
                .unwrap_or_default()
                .to_string(),
        };
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

    async fn acknowledge(&self, _: Request<AcknowledgeRequest>) -> Result<Response<Ticket>, Status> {
        Err(pending("acknowledging"))
    }
    async fn record_progress(&self, _: Request<RecordProgressRequest>) -> Result<Response<Ticket>, Status> {
        Err(pending("recording progress"))
    }
    async fn wait_on_customer(&self, _: Request<WaitOnCustomerRequest>) -> Result<Response<Ticket>, Status> {
        Err(pending("waiting on the customer"))
    }
    async fn resume(&self, _: Request<ResumeRequest>) -> Result<Response<Ticket>, Status> {
        Err(pending("resuming"))
    }
    async fn extend_deadline(&self, _: Request<ExtendDeadlineRequest>) -> Result<Response<Ticket>, Status> {
        Err(pending("extending deadlines"))
    }
    async fn reassign(&self, _: Request<ReassignRequest>) -> Result<Response<Ticket>, Status> {
        Err(pending("reassigning"))
    }
    async fn classify(&self, _: Request<ClassifyRequest>) -> Result<Response<Ticket>, Status> {
        Err(pending("classifying by hand"))
    }
    async fn set_priority(&self, _: Request<SetPriorityRequest>) -> Result<Response<Ticket>, Status> {
        Err(pending("setting the priority by hand"))
    }
    async fn escalate(&self, _: Request<EscalateRequest>) -> Result<Response<Ticket>, Status> {
        Err(pending("escalating by hand"))
    }
    async fn resolve(&self, _: Request<ResolveRequest>) -> Result<Response<Ticket>, Status> {
        Err(pending("resolving"))
    }
    async fn rate(&self, _: Request<RateRequest>) -> Result<Response<Ticket>, Status> {
        Err(pending("rating"))
    }
    async fn reopen(&self, _: Request<ReopenRequest>) -> Result<Response<Ticket>, Status> {
        Err(pending("reopening"))
    }
    async fn close(&self, _: Request<CloseRequest>) -> Result<Response<Ticket>, Status> {
        Err(pending("closing"))
    }
    async fn archive(&self, _: Request<ArchiveRequest>) -> Result<Response<Ticket>, Status> {
        Err(pending("archiving"))
    }
    async fn add_note(&self, _: Request<AddNoteRequest>) -> Result<Response<Ticket>, Status> {
        Err(pending("adding notes"))
    }
    async fn list_common_issues(
        &self,
        _: Request<ListCommonIssuesRequest>,
    ) -> Result<Response<ListCommonIssuesResponse>, Status> {
        Err(pending("common issues"))
    }
    async fn get_common_issue(&self, _: Request<GetCommonIssueRequest>) -> Result<Response<CommonIssue>, Status> {
        Err(pending("common issues"))
    }
}
