//! Realistic feedback for tests.

use kesu_proto::v1::{
    Channel, Contact, ContactKind, Customer, CustomerRequest, CustomerRequestKind, NotifyChannel, OccurredAt, Priority,
    RawFeedback, RequestNature, UnknownTime, occurred_at,
};

/// A complete web feedback from a customer reachable by mobile phone.
pub fn robot_vacuum(external_id: &str) -> RawFeedback {
    RawFeedback {
        channel: Channel::Unspecified as i32,
        external_id: external_id.to_string(),
        locale: "zh-CN".into(),
        customer: Some(Customer {
            name: "张三".into(),
            tier: "normal".into(),
            contacts: vec![Contact { kind: ContactKind::Phone as i32, value: "138-1234-5678".into(), masked: false }],
            preferred_channel: NotifyChannel::Sms as i32,
            ..Default::default()
        }),
        product: "扫地机器人 X1".into(),
        order_number: "SO-20261120-0042".into(),
        occurred_at: Some(OccurredAt { when: Some(occurred_at::When::Unknown(UnknownTime {})) }),
        problem_type: "repair".into(),
        problem_cause: "no_power".into(),
        request_nature: RequestNature::Problem as i32,
        description: "购买的扫地机器人开机无反应，使用时间一周，已充电一整夜。".into(),
        customer_request: Some(CustomerRequest {
            kind: CustomerRequestKind::Repair as i32,
            detail: "希望上门维修".into(),
        }),
        urgency: Priority::High as i32,
        region: "上海".into(),
        ..Default::default()
    }
}

/// An English-speaking customer reachable by email only.
pub fn late_delivery(external_id: &str) -> RawFeedback {
    RawFeedback {
        external_id: external_id.to_string(),
        locale: "en-GB".into(),
        customer: Some(Customer {
            name: "Alice Chen".into(),
            contacts: vec![Contact {
                kind: ContactKind::Email as i32,
                value: "alice@example.com".into(),
                masked: false,
            }],
            ..Default::default()
        }),
        problem_type: "logistics".into(),
        problem_cause: "delivery_delay".into(),
        description: "My order has not arrived two weeks after dispatch.".into(),
        customer_request: Some(CustomerRequest {
            kind: CustomerRequestKind::Explanation as i32,
            detail: "Tell me where it is".into(),
        }),
        ..Default::default()
    }
}
