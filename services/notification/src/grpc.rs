//! notification's gRPC API.

use std::collections::BTreeMap;
use std::sync::Arc;

use kesu_domain::Policy;
use kesu_proto::v1::notification_service_server::NotificationService;
use kesu_proto::v1::{
    Delivery, ListDeliveriesRequest, ListDeliveriesResponse, NotifyChannel, PreviewTemplateRequest,
    PreviewTemplateResponse, ResendRequest,
};
use kesu_runtime::paging;
use kesu_storage::Database;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::{compose, store};

pub struct NotificationApi {
    db: Database,
    policy: Arc<Policy>,
}

impl NotificationApi {
    pub fn new(db: Database, policy: Arc<Policy>) -> Self {
        Self { db, policy }
    }
}

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    async fn list_deliveries(
        &self,
        request: Request<ListDeliveriesRequest>,
    ) -> Result<Response<ListDeliveriesResponse>, Status> {
        let req = request.into_inner();
        if req.ticket_id.is_empty() {
            return Err(Error::InvalidArgument { field: "ticket_id", message: "required".into() }.into());
        }
        let size = paging::page_size(req.page.as_ref(), 50, 500);
        let cursor = paging::cursor(req.page.as_ref())?;
        let rows = store::list(self.db.pool(), &req.ticket_id, cursor, size).await?;
        let next_page_token = paging::next_token(&rows, size);
        Ok(Response::new(ListDeliveriesResponse {
            deliveries: rows.into_iter().map(|(_, _, d)| d).collect(),
            next_page_token,
        }))
    }

    async fn resend(&self, _request: Request<ResendRequest>) -> Result<Response<Delivery>, Status> {
        Err(Status::unimplemented("resending is not available in this version of notification"))
    }

    async fn preview_template(
        &self,
        request: Request<PreviewTemplateRequest>,
    ) -> Result<Response<PreviewTemplateResponse>, Status> {
        let req = request.into_inner();
        let channel = NotifyChannel::try_from(req.channel).map_err(|_| Error::InvalidArgument {
            field: "channel",
            message: format!("{} is not a known NotifyChannel value", req.channel),
        })?;
        let params: BTreeMap<&str, String> = req.params.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let message = compose::message(&self.policy, &req.template_id, channel, &req.locale, &params)
            .map_err(Status::invalid_argument)?;
        Ok(Response::new(PreviewTemplateResponse {
            subject: message.subject,
            body: message.body,
            html_body: String::new(),
        }))
    }
}
