//! sla-timer's gRPC API: a ticket's clocks, and the clocks at risk or
//! breached, most urgent first.

use std::sync::Arc;

use kesu_domain::Clock;
use kesu_domain::time::to_millis;
use kesu_proto::v1::sla_service_server::SlaService;
use kesu_proto::v1::{
    GetTicketClocksRequest, GetTicketClocksResponse, ListClocksRequest, ListClocksResponse, Priority,
};
use kesu_runtime::paging;
use kesu_storage::Database;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::store::{self, Risk};

pub struct SlaApi {
    db: Database,
    clock: Arc<dyn Clock>,
}

impl SlaApi {
    pub fn new(db: Database, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
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
        let now = to_millis(self.clock.now());
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
        let clocks = store::ticket_clocks(self.db.pool(), &request.get_ref().ticket_id).await?;
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
}
