//! notification's gRPC API: a ticket's deliveries (addresses masked; a
//! handler sees their own tickets, a department manager their department's),
//! resending a notification, and previewing any template with given data.

use std::sync::Arc;

use kesu_auth::{Role, Staff};
use kesu_domain::policy::TemplateData;
use kesu_proto::v1::notification_service_server::NotificationService;
use kesu_proto::v1::{
    Delivery, ListDeliveriesRequest, ListDeliveriesResponse, NotifyChannel, PreviewTemplateRequest,
    PreviewTemplateResponse, ResendRequest,
};
use kesu_runtime::paging;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::events::Context;
use crate::{deliveries, projection, resend};

pub struct NotificationApi {
    pub db: kesu_storage::Database,
    pub ctx: Arc<Context>,
    pub outbox: kesu_bus::OutboxWaker,
}

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    async fn list_deliveries(
        &self,
        request: Request<ListDeliveriesRequest>,
    ) -> Result<Response<ListDeliveriesResponse>, Status> {
        let staff = request.extensions().get::<Staff>().cloned();
        let req = request.into_inner();
        if req.ticket_id.is_empty() {
            return Err(Error::InvalidArgument { field: "ticket_id", message: "required".into() }.into());
        }
        let ticket = projection::get(self.db.pool(), &req.ticket_id).await?;
        if let Some(staff) = &staff {
            let allowed = match staff.role {
                Role::Handler => {
                    ticket.as_ref().is_some_and(|t| t.handler == staff.id || t.co_handlers.contains(&staff.id))
                }
                Role::DepartmentManager => ticket.as_ref().is_some_and(|t| t.department == staff.department),
                _ => true,
            };
            if !allowed {
                return Err(Status::permission_denied(
                    "a handler sees the deliveries of their own tickets, a department manager those of their department",
                ));
            }
        }
        let mut abouts = vec![req.ticket_id.as_str()];
        if let Some(t) = &ticket
            && !t.feedback_id.is_empty()
        {
            abouts.push(t.feedback_id.as_str());
        }
        let size = paging::page_size(req.page.as_ref(), 50, 500);
        let cursor = paging::cursor(req.page.as_ref())?;
        let rows = deliveries::list(self.db.pool(), &abouts, cursor, size).await?;
        let next_page_token = paging::next_token(&rows, size);
        Ok(Response::new(ListDeliveriesResponse {
            deliveries: rows.into_iter().map(|(_, _, d)| d).collect(),
            next_page_token,
        }))
    }

    async fn resend(&self, request: Request<ResendRequest>) -> Result<Response<Delivery>, Status> {
        let req = request.into_inner();
        if req.request_id.is_empty() {
            return Err(Error::InvalidArgument { field: "request_id", message: "required".into() }.into());
        }
        let channel = NotifyChannel::try_from(req.channel).map_err(|_| Error::InvalidArgument {
            field: "channel",
            message: format!("{} is not a known NotifyChannel value", req.channel),
        })?;
        let delivery = resend::resend(&self.db, &self.ctx, &self.outbox, &req.request_id, channel).await?;
        Ok(Response::new(delivery))
    }

    async fn preview_template(
        &self,
        request: Request<PreviewTemplateRequest>,
    ) -> Result<Response<PreviewTemplateResponse>, Status> {
        let req = request.into_inner();
        let channel = NotifyChannel::try_from(req.channel)
            .ok()
            .filter(|c| *c != NotifyChannel::Unspecified)
            .ok_or_else(|| Error::InvalidArgument { field: "channel", message: "sms, email or app".into() })?;
        if req.template_id.is_empty() {
            return Err(Error::InvalidArgument { field: "template_id", message: "required".into() }.into());
        }
        let data = preview_data(&req.params)?;
        let language = self.ctx.policy.template_language(&req.locale);
        let message = self
            .ctx
            .policy
            .templates()
            .render(&req.template_id, language, channel, &data)
            .map_err(|message| Error::InvalidArgument { field: "template_id", message })?;
        Ok(Response::new(PreviewTemplateResponse {
            subject: message.subject,
            body: message.text,
            html_body: message.html,
        }))
    }
}

/// The sample data with the given parameters in place (lists comma-separated).
fn preview_data(params: &std::collections::HashMap<String, String>) -> Result<TemplateData, Error> {
    let serde_json::Value::Object(mut fields) = serde_json::to_value(TemplateData::sample()).unwrap_or_default() else {
        return Ok(TemplateData::sample());
    };
    for (name, value) in params {
        let slot = fields.get_mut(name).ok_or_else(|| Error::InvalidArgument {
            field: "params",
            message: format!("{name:?} is not a template variable"),
        })?;
        *slot = match slot {
            serde_json::Value::Number(_) => serde_json::Value::from(value.trim().parse::<u32>().map_err(|_| {
                Error::InvalidArgument { field: "params", message: format!("{name}: {value:?} is not a number") }
            })?),
            serde_json::Value::Array(_) => {
                value.split(',').map(|s| serde_json::Value::from(s.trim())).filter(|v| v != "").collect()
            }
            _ => serde_json::Value::from(value.clone()),
        };
    }
    serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|e| Error::InvalidArgument { field: "params", message: e.to_string() })
}
