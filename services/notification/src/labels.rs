//! The words templates show for the contract's codes, in the recipient's
//! language ("zh" or "en").

use kesu_domain::Policy;
use kesu_proto::v1::{NotificationPurpose, Priority, ProgressStage, ResolutionResult, SlaClockKind};

fn pick(language: &str, zh: &'static str, en: &'static str) -> &'static str {
    if language == "en" { en } else { zh }
}

pub fn priority(value: i32, language: &str) -> &'static str {
    match Priority::try_from(value).unwrap_or_default() {
        Priority::Urgent => pick(language, "紧急", "urgent"),
        Priority::High => pick(language, "高", "high"),
        Priority::Medium => pick(language, "中", "medium"),
        Priority::Low => pick(language, "低", "low"),
        Priority::Unspecified => "",
    }
}

pub fn stage(value: i32, language: &str) -> &'static str {
    match ProgressStage::try_from(value).unwrap_or_default() {
        ProgressStage::ContactedCustomer => pick(language, "已联系客户", "we contacted you"),
        ProgressStage::Diagnosed => pick(language, "已查明原因", "the cause is found"),
        ProgressStage::WaitingForParts => pick(language, "等待配件", "waiting for parts"),
        ProgressStage::FixInProgress => pick(language, "正在处理", "the fix is in progress"),
        ProgressStage::Done => pick(language, "处理完成", "done"),
        ProgressStage::Other | ProgressStage::Unspecified => "",
    }
}

pub fn result(value: i32, language: &str) -> &'static str {
    match ResolutionResult::try_from(value).unwrap_or_default() {
        ResolutionResult::Resolved => pick(language, "已解决", "resolved"),
        ResolutionResult::PartiallyResolved => pick(language, "部分解决", "partially resolved"),
        ResolutionResult::Unresolved => pick(language, "未解决", "unresolved"),
        ResolutionResult::Unspecified => pick(language, "已处理", "handled"),
    }
}

pub fn clock(value: i32, language: &str) -> &'static str {
    match SlaClockKind::try_from(value).unwrap_or_default() {
        SlaClockKind::Acknowledge => pick(language, "确认时限", "acknowledgement"),
        SlaClockKind::Response => pick(language, "响应时限", "response"),
        SlaClockKind::Resolution => pick(language, "解决时限", "resolution"),
        SlaClockKind::ResultNotice => pick(language, "结果告知时限", "result notice"),
        SlaClockKind::FollowUp => pick(language, "回访时限", "follow-up"),
        SlaClockKind::ProgressUpdate => pick(language, "进展更新时限", "progress update"),
        SlaClockKind::Unspecified => pick(language, "处理时限", "deadline"),
    }
}

/// What a "call the customer" task is about: the notice the customer could
/// not receive.
pub fn call_about(purpose: NotificationPurpose, language: &str) -> &'static str {
    use NotificationPurpose as P;
    match purpose {
        P::Acknowledgement => {
            pick(language, "反馈已受理及反馈编号", "that their feedback was received, with its number")
        }
        P::NeedsInfo => pick(language, "需补充的信息", "what they need to add"),
        P::ProgressUpdate => pick(language, "处理进展", "the progress"),
        P::DeadlineExtended => pick(language, "处理延期及原因", "the new deadline and why"),
        P::ResultNotice | P::CommonIssueResolved => pick(language, "处理结果", "the result"),
        P::SatisfactionSurvey => {
            pick(language, "满意度回访（请客户评分1-5分）", "the satisfaction survey (a 1-5 rating)")
        }
        _ => pick(language, "工单情况", "their ticket"),
    }
}

/// A department's name in the language (its code when unknown).
pub fn department(policy: &Policy, code: &str, language: &str) -> String {
    match policy.department(code) {
        Some(d) if language == "en" => d.name_en.clone(),
        Some(d) => d.name_zh.clone(),
        None => code.to_string(),
    }
}

/// What the customer is asked to supplement, for a field intake named.
pub fn missing_field(field: &str, message: &str, language: &str) -> String {
    let known = match field.rsplit('.').next().unwrap_or(field) {
        "contacts" | "contact" | "customer" => Some(pick(language, "联系方式", "a way to contact you")),
        "description" => {
            Some(pick(language, "问题描述（时间、地点、现象、影响）", "a description (when, where, what, impact)"))
        }
        "customer_request" | "request" => {
            Some(pick(language, "您的诉求（维修、更换、退款等）", "what you would like us to do"))
        }
        "occurred_at" => Some(pick(language, "问题发生时间", "when it happened")),
        "product" => Some(pick(language, "产品型号", "the product")),
        "order_number" => Some(pick(language, "订单号", "the order number")),
        "attachments" => Some(pick(language, "照片或凭证", "photos or receipts")),
        _ => None,
    };
    match known {
        Some(text) => text.to_string(),
        None if !message.is_empty() => message.to_string(),
        None => field.to_string(),
    }
}
