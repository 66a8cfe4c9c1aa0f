//! Intake's gRPC API.

use std::sync::Arc;

use futures::StreamExt;
use kesu_proto::v1::intake_service_server::IntakeService;
use kesu_proto::v1::{
    Feedback, FeedbackStatus, GetFeedbackRequest, ImportRow, ImportRowResult, ImportSummary, ListRejectedRequest,
    ListRejectedResponse, ListReviewQueueRequest, ListReviewQueueResponse, ManualEntryRequest, RawFeedback,
    ResolveReviewRequest, SubmitFeedbackResponse, SubmitOutcome, SupplementFeedbackRequest, get_feedback_request,
};
use prost::Message;
use tonic::{Code, Request, Response, Status, Streaming};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use kesu_runtime::paging;

use crate::error::Error;
use crate::pipeline::{Intake, Path, Submission};
use crate::store::{self, FeedbackKey};
use crate::supplement::Supplement;

pub struct IntakeApi {
    intake: Arc<Intake>,
}

impl IntakeApi {
    pub fn new(intake: Arc<Intake>) -> Self {
        Self { intake }
    }

    async fn submit(&self, raw: RawFeedback, subject: &str) -> Result<SubmitFeedbackResponse, Status> {
        let original = raw.encode_to_vec();
        let submission =
            Submission { subject, original: &original, raw: Ok(raw), inbox: None, causation: "", path: Path::Grpc };
        match self.intake.submit(submission).await {
            Ok(Some(response)) => Ok(response),
            Ok(None) => Err(kesu_runtime::status::internal(&"a gRPC submission was not answered")),
            Err(e) => Err(Error::Submission(e).into()),
        }
    }
}

/// A rejected submission as INVALID_ARGUMENT with a field violation per
/// error (google.rpc.BadRequest), the message naming the fields.
fn rejection(response: &SubmitFeedbackResponse) -> Status {
    let message = response.errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; ");
    let violations: Vec<FieldViolation> =
        response.errors.iter().map(|e| FieldViolation::new(e.field.clone(), e.message.clone())).collect();
    Status::with_error_details(Code::InvalidArgument, message, ErrorDetails::with_bad_request(violations))
}

/// A refused amendment: NOT_FOUND for an unknown number,
/// FAILED_PRECONDITION when the feedback is not in the state the call
/// needs, otherwise INVALID_ARGUMENT naming the fields.
fn refusal(response: &SubmitFeedbackResponse) -> Status {
    match response.errors.first().map(|e| e.code.as_str()) {
        Some("not_found") => Status::not_found(response.errors[0].message.clone()),
        Some("not_needs_info" | "not_pending_review") => {
            Status::failed_precondition(response.errors[0].message.clone())
        }
        _ => rejection(response),
    }
}

/// The calling staff member's id (from the verified token).
fn staff_id<T>(request: &Request<T>) -> String {
    request.extensions().get::<kesu_auth::Staff>().map(|s| s.id.clone()).unwrap_or_else(|| "unknown".into())
}

#[tonic::async_trait]
impl IntakeService for IntakeApi {
    async fn submit_feedback(&self, request: Request<RawFeedback>) -> Result<Response<SubmitFeedbackResponse>, Status> {
        let response = self.submit(request.into_inner(), "grpc").await?;
        if response.outcome == SubmitOutcome::Rejected as i32 {
            return Err(rejection(&response));
        }
        Ok(Response::new(response))
    }

    async fn enter_feedback(
        &self,
        request: Request<ManualEntryRequest>,
    ) -> Result<Response<SubmitFeedbackResponse>, Status> {
        let entry = request.into_inner();
        let Some(mut raw) = entry.feedback else {
            return Err(Status::with_error_details(
                Code::InvalidArgument,
                "feedback is required",
                ErrorDetails::with_bad_request_violation("feedback", "feedback is required"),
            ));
        };
        if raw.entered_by.trim().is_empty() {
            return Err(Status::with_error_details(
                Code::InvalidArgument,
                "feedback.entered_by is required for manual entry",
                ErrorDetails::with_bad_request_violation("feedback.entered_by", "the staff id of whoever typed it in"),
            ));
        }
        if !entry.source_reference.is_empty() {
            raw.custom_fields.insert("source_reference".into(), entry.source_reference);
        }
        let response = self.submit(raw, "grpc.manual").await?;
        if response.outcome == SubmitOutcome::Rejected as i32 {
            return Err(rejection(&response));
        }
        Ok(Response::new(response))
    }

    async fn import_feedback(&self, request: Request<Streaming<ImportRow>>) -> Result<Response<ImportSummary>, Status> {
        let mut rows = request.into_inner();
        let mut summary = ImportSummary::default();
        while let Some(row) = rows.next().await {
            let row = row?;
            summary.rows += 1;
            let Some(raw) = row.feedback else {
                summary.rejected += 1;
                summary.problems.push(ImportRowResult {
                    row: row.row,
                    result: Some(SubmitFeedbackResponse {
                        outcome: SubmitOutcome::Rejected as i32,
                        errors: vec![crate::validate::field_error("feedback", "required", "the row has no feedback")],
                        ..Default::default()
                    }),
                });
                continue;
            };
            let result = self.submit(raw, "grpc.import").await?;
            match SubmitOutcome::try_from(result.outcome).unwrap_or_default() {
                SubmitOutcome::Accepted => summary.accepted += 1,
                SubmitOutcome::NeedsInfo => summary.needs_info += 1,
                SubmitOutcome::PendingReview => summary.pending_review += 1,
                SubmitOutcome::Duplicate => summary.duplicates += 1,
                SubmitOutcome::Rejected | SubmitOutcome::Unspecified => summary.rejected += 1,
            }
            if result.outcome != SubmitOutcome::Accepted as i32 {
                summary.problems.push(ImportRowResult { row: row.row, result: Some(result) });
            }
        }
        Ok(Response::new(summary))
    }

    async fn get_feedback(&self, request: Request<GetFeedbackRequest>) -> Result<Response<Feedback>, Status> {
        let key = match &request.get_ref().key {
            Some(get_feedback_request::Key::FeedbackId(id)) => FeedbackKey::Id(id),
            Some(get_feedback_request::Key::FeedbackNumber(n)) => FeedbackKey::Number(n),
            None => {
                let message = "give feedback_id or feedback_number".into();
                return Err(Error::InvalidArgument { field: "key", message }.into());
            }
        };
        let feedback =
            store::get_feedback(self.intake.db().pool(), key).await?.ok_or(Error::NotFound("no such feedback"))?;
        Ok(Response::new(feedback))
    }

    async fn supplement_feedback(
        &self,
        request: Request<SupplementFeedbackRequest>,
    ) -> Result<Response<SubmitFeedbackResponse>, Status> {
        let actor = staff_id(&request);
        let request = request.into_inner();
        let original = request.encode_to_vec();
        let supplement = Supplement { subject: "grpc", original: &original, request: Ok(request), actor: &actor };
        let response = self.intake.supplement(supplement).await.map_err(Error::Submission)?;
        if response.outcome == SubmitOutcome::Rejected as i32 {
            return Err(refusal(&response));
        }
        Ok(Response::new(response))
    }

    async fn list_review_queue(
        &self,
        request: Request<ListReviewQueueRequest>,
    ) -> Result<Response<ListReviewQueueResponse>, Status> {
        let req = request.into_inner();
        let statuses: &[&str] = match FeedbackStatus::try_from(req.status).unwrap_or_default() {
            FeedbackStatus::Unspecified => &["pending_review", "needs_info"],
            FeedbackStatus::PendingReview => &["pending_review"],
            FeedbackStatus::NeedsInfo => &["needs_info"],
            _ => {
                let message = "status: only pending review or needs info (or unspecified: both)".into();
                return Err(Error::InvalidArgument { field: "status", message }.into());
            }
        };
        let size = paging::page_size(req.page.as_ref(), 50, 500);
        let cursor = paging::cursor(req.page.as_ref())?;
        let rows = store::list_queue(self.intake.db().pool(), statuses, cursor, size).await?;
        let next_page_token = paging::next_token(&rows, size);
        Ok(Response::new(ListReviewQueueResponse {
            feedback: rows.into_iter().map(|(_, _, f)| f).collect(),
            next_page_token,
        }))
    }

    async fn resolve_review(
        &self,
        request: Request<ResolveReviewRequest>,
    ) -> Result<Response<SubmitFeedbackResponse>, Status> {
        let reviewer = staff_id(&request);
        let response = self.intake.resolve_review(&reviewer, request.get_ref()).await.map_err(Error::Submission)?;
        if response.outcome == SubmitOutcome::Rejected as i32 && !response.errors.is_empty() {
            return Err(refusal(&response));
        }
        Ok(Response::new(response))
    }

    async fn list_rejected(
        &self,
        request: Request<ListRejectedRequest>,
    ) -> Result<Response<ListRejectedResponse>, Status> {
        let req = request.into_inner();
        let size = paging::page_size(req.page.as_ref(), 50, 500);
        let cursor = paging::cursor(req.page.as_ref())?;
        let channel = kesu_proto::v1::Channel::try_from(req.channel).ok().and_then(kesu_domain::channel_token);
        let rows = store::list_rejected(self.intake.db().pool(), channel, cursor, size).await?;
        let next_page_token = paging::next_token(&rows, size);
        Ok(Response::new(ListRejectedResponse {
            rejected: rows.into_iter().map(|(_, _, r)| r).collect(),
            next_page_token,
        }))
    }
}
