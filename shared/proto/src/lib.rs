//! The kesu wire contract, generated from `proto/kesu/v1/*.proto`.
//!
//! Hand-written code converts to domain types at the edge; nothing here is
//! edited by hand. See `docs/contract.md` for the versioning rules.

/// Version 1 of the contract (`package kesu.v1`).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("kesu.v1");
}

/// Encoded `FileDescriptorSet` of the whole contract, for gRPC reflection
/// and for tools that decode messages dynamically.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kesu_descriptor.bin"));

/// Fully-qualified protobuf type names, sent in the `Kesu-Type` header.
pub mod type_names {
    pub const RAW_FEEDBACK: &str = "kesu.v1.RawFeedback";
    pub const FEEDBACK_EVENT: &str = "kesu.v1.FeedbackEvent";
    pub const TICKET_EVENT: &str = "kesu.v1.TicketEvent";
    pub const SLA_EVENT: &str = "kesu.v1.SlaEvent";
    pub const NOTIFICATION_REQUEST: &str = "kesu.v1.NotificationRequest";
    pub const NOTIFICATION_EVENT: &str = "kesu.v1.NotificationEvent";
    pub const DELIVERY_REPORT: &str = "kesu.v1.DeliveryReport";
    pub const ANALYTICS_EVENT: &str = "kesu.v1.AnalyticsEvent";
    pub const SUBMIT_FEEDBACK_RESPONSE: &str = "kesu.v1.SubmitFeedbackResponse";
}
