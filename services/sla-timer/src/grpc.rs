//! sla-timer's gRPC API: a ticket's clocks (planned as of now from what is
//! known of the ticket), the clocks at risk or breached, most urgent first,
//! and the preview of a policy.

use std::sync::Arc;

use kesu_domain::time::to_millis;
use kesu_proto::v1::sla_service_server::SlaService;
use kesu_proto::v1::{
    GetTicketClocksRequest, GetTicketClocksResponse, ListClocksRequest, ListClocksResponse, PreviewClocksRequest,
    PreviewClocksResponse, Priority,
};
use kesu_runtime::paging;
use kesu_storage::Database;
use tonic::{Request, Response, Status};

use crate::Context;
use crate::error::Error;
use crate::store::{self, Risk};

pub struct SlaApi {
    db: Database,
    ctx: Arc<Context>,
}

impl SlaApi {
    pub(crate) fn new(db: Database, ctx: Arc<Context>) -> Self {
        Self { db, ctx }
    }

    async fn list(&self, req: ListClocksRequest, risk: Risk) -> Result<Response<ListClocksResponse>, Status> {
        let size = paging::page_size(req.page.as_ref(), 50, 500);
        let cursor = paging::cursor(req.page.as_ref())?;
        let priority = match Priority::try_from(req.priority) {
            Ok(Priority::Unspecified) => "",
            Ok(_) => kesu_domain::Priority::from_proto(req.priority).map(|p| p.as_str()).unwrap_or_default(),
            Err(_) => {
                let message = format!("{} is not a known Priority value", req.priority);
                return Err(Error::InvalidArgument { field: "priority", message }.into());
            }
        };
        let now = to_millis(self.ctx.clock.now());
        let rows = store::list(self.db.pool(), risk, now, &req.department, priority, cursor, size).await?;
        let next_page_token = paging::next_token(&rows, size);
        Ok(Response::new(ListClocksResponse { clocks: rows.into_iter().map(|(_, _, c)| c).collect(), next_page_token }))
    }
}

#[tonic::async_trait]
impl SlaService for SlaApi {
    async fn get_ticket_clocks(
        &self,
        request: Request<GetTicketClocksRequest>,
    ) -> Result<Response<GetTicketClocksResponse>, Status> {
        let ticket_id = &request.get_ref().ticket_id;
        if ticket_id.is_empty() {
            return Err(Error::InvalidArgument { field: "ticket_id", message: "required".into() }.into());
        }
        let clocks = match store::read_facts(self.db.pool(), ticket_id).await? {
            Some(facts) => {
                crate::plan::plan(&facts, &self.ctx.policy, self.ctx.clock.now()).into_iter().map(|p| p.clock).collect()
            }
            // Clocks stored before facts were kept.
            None => store::ticket_clocks(self.db.pool(), ticket_id).await?,
        };
        if clocks.is_empty() {
            return Err(Error::NotFound("no clocks for this ticket").into());
        }
        Ok(Response::new(GetTicketClocksResponse { clocks }))
    }

    async fn list_at_risk(&self, request: Request<ListClocksRequest>) -> Result<Response<ListClocksResponse>, Status> {
        self.list(request.into_inner(), Risk::AtRisk).await
    }

    async fn list_breached(&self, request: Request<ListClocksRequest>) -> Result<Response<ListClocksResponse>, Status> {
        self.list(request.into_inner(), Risk::Breached).await
    }

    async fn preview_clocks(
        &self,
        request: Request<PreviewClocksRequest>,
    ) -> Result<Response<PreviewClocksResponse>, Status> {
        Ok(Response::new(crate::preview::preview(request.get_ref(), &self.ctx.policy)?))
    }
}
