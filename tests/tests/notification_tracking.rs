//! Quiet hours in virtual time, delivery tracking from senders' reports,
//! and notification's API: ListDeliveries (masked, scoped), Resend
//! (role-checked, audited), PreviewTemplate.

use chrono::{Duration, TimeZone, Utc};
use kesu_auth::Staff;
use kesu_proto::v1::{
    DeliveryReport, DeliveryReportKind, DeliveryStatus, ListDeliveriesRequest, NotificationPurpose as P,
    NotificationRequest, NotifyChannel, PreviewTemplateRequest, Priority, ResendRequest, TicketCreated,
    ticket_event::Kind,
};
use kesu_system_tests::notification::{NotificationUnderTest, accepted, daytime, ticket, ticket_event};
use kesu_system_tests::{Bearer, Role};

fn ack(r: &NotificationRequest) -> bool {
    r.purpose == P::Acknowledgement as i32
}

#[tokio::test]
async fn customer_sms_at_22_00_goes_out_at_08_00_in_order_and_urgent_ones_at_once() {
    let shanghai = chrono_tz::Asia::Shanghai;
    let night = shanghai.with_ymd_and_hms(2026, 11, 24, 22, 0, 0).unwrap().with_timezone(&Utc);
    let mut n = NotificationUnderTest::start(night, &[]).await;
    let sms = n.customer(Some("13812345678"), None, NotifyChannel::Sms);
    let email = n.customer(None, Some("amy@example.com"), NotifyChannel::Email);
    n.feedback_event("accepted", &accepted("FB202611240501", sms.clone(), "zh-CN", Priority::Medium)).await;
    n.feedback_event("accepted", &accepted("FB202611240502", sms.clone(), "zh-CN", Priority::Low)).await;
    n.feedback_event("accepted", &accepted("FB202611240503", sms.clone(), "zh-CN", Priority::Urgent)).await;
    n.feedback_event("accepted", &accepted("FB202611240504", email, "zh-CN", Priority::Low)).await;
    let at_once = n.wait_requests("the urgent SMS and the email at once", 2, ack).await;
    let mut numbers: Vec<_> = at_once.iter().map(|r| r.feedback_number.clone()).collect();
    numbers.sort();
    assert_eq!(numbers, ["FB202611240503", "FB202611240504"]);
    let deferred = n.wait_events("deferred", 2).await;
    let morning = shanghai.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap().with_timezone(&Utc);
    for e in &deferred {
        let Some(kesu_proto::v1::notification_event::Kind::Deferred(d)) = &e.kind else { panic!("a deferred event") };
        assert_eq!(d.not_before, Some(kesu_domain::time::to_timestamp(morning)));
    }
    n.settled("FEEDBACK").await;

    // Held durably: a restart in the night changes nothing.
    n.restart().await;
    n.advance_to(morning - Duration::minutes(1));
    kesu_system_tests::notification::pause(500).await;
    assert_eq!(n.requests().await.len(), 2, "still quiet at 07:59");
    n.advance_to(morning);
    let all = n.wait_requests("the night's SMS at 08:00", 4, ack).await;
    let order: Vec<_> = all.iter().map(|r| r.feedback_number.as_str()).collect();
    assert_eq!(&order[2..], ["FB202611240501", "FB202611240502"], "released in the order they were held");
    assert_eq!(all[2].not_before, Some(kesu_domain::time::to_timestamp(morning)));
    n.stop().await;
}

#[tokio::test]
async fn delivery_reports_track_each_notification_and_the_api_shows_it_masked_and_scoped() {
    let n = NotificationUnderTest::start(daytime(), &[]).await;
    let customer = n.customer(Some("13812345678"), Some("amy@example.com"), NotifyChannel::Sms);
    let t = ticket("T-0601", 1, customer.clone());
    let mut event = accepted(&t.feedback_number, customer, "zh-CN", Priority::High);
    if let Some(kesu_proto::v1::feedback_event::Kind::Accepted(a)) = event.kind.as_mut() {
        a.feedback.as_mut().unwrap().feedback_id = t.feedback_id.clone();
    }
    event.feedback_id = t.feedback_id.clone();
    n.feedback_event("accepted", &event).await;
    n.ticket_event("created", &ticket_event(&t, Kind::Created(TicketCreated {}))).await;
    let request = n.wait_requests("the acknowledgement", 1, ack).await.remove(0);
    assert_eq!(request.feedback_number, t.feedback_number);

    // A sender reports: sent, then delivered; a late duplicate changes nothing.
    let report = |kind: DeliveryReportKind| DeliveryReport {
        request_id: request.request_id.clone(),
        channel: NotifyChannel::Sms as i32,
        kind: kind as i32,
        sender: "test-gateway".into(),
        provider_message_id: "gw-1".into(),
        attempt: 1,
        ..Default::default()
    };
    for (kind, id) in [
        (DeliveryReportKind::Sent, "sent"),
        (DeliveryReportKind::Delivered, "delivered"),
        (DeliveryReportKind::Sent, "sent-again"),
    ] {
        n.publish(
            "notify.report.sms",
            "kesu.v1.DeliveryReport",
            &format!("{}:{id}", request.request_id),
            &report(kind),
        )
        .await;
    }
    n.wait_events("delivered", 1).await;
    n.settled("NOTIFY_REPORTS").await;
    assert_eq!(n.events("sent").await.len(), 1, "sent is announced once");
    let delivered = &n.events("delivered").await[0];
    assert_eq!(
        (delivered.purpose, delivered.feedback_number.as_str()),
        (P::Acknowledgement as i32, t.feedback_number.as_str())
    );

    // ListDeliveries: the ticket's deliveries, its feedback's acknowledgement included, masked.
    let mut agent = n.client(Role::Agent).await;
    let list = agent
        .list_deliveries(ListDeliveriesRequest { ticket_id: "T-0601".into(), page: None })
        .await
        .unwrap()
        .into_inner();
    let ack_row =
        list.deliveries.iter().find(|d| d.request_id == request.request_id).expect("the acknowledgement is listed");
    assert_eq!(ack_row.status, DeliveryStatus::Delivered as i32);
    assert_eq!((ack_row.sender.as_str(), ack_row.provider_message_id.as_str()), ("test-gateway", "gw-1"));
    assert_eq!(ack_row.masked_address, "138****5678");
    assert!(list.deliveries.iter().any(|d| d.purpose == P::Assigned as i32 && d.staff_id == "s-as-01"));
    let text = format!("{list:?}");
    assert!(!text.contains("13812345678") && !text.contains("a01@kesu.example"), "no clear address in the API");

    // Scoped: the assigned handler sees it; another handler and another department's manager do not.
    let token = |staff: &Staff| Bearer::new(&n.system.token_for(staff));
    let as_staff = |staff: Staff| {
        let endpoint = n.endpoint;
        let bearer = token(&staff);
        async move {
            kesu_proto::v1::notification_service_client::NotificationServiceClient::with_interceptor(
                endpoint.channel().await,
                bearer,
            )
            .list_deliveries(ListDeliveriesRequest { ticket_id: "T-0601".into(), page: None })
            .await
            .map(|_| ())
            .map_err(|s| s.code())
        }
    };
    assert_eq!(as_staff(Staff::new("s-as-01", Role::Handler, "after_sales")).await, Ok(()));
    assert_eq!(as_staff(Staff::new("s-as-03", Role::Handler, "after_sales")).await, Err(tonic::Code::PermissionDenied));
    assert_eq!(as_staff(Staff::new("m-1", Role::DepartmentManager, "after_sales")).await, Ok(()));
    assert_eq!(
        as_staff(Staff::new("m-2", Role::DepartmentManager, "finance")).await,
        Err(tonic::Code::PermissionDenied)
    );

    // Resend: a new request to the same customer; on another channel if asked. Handlers may not.
    let again =
        agent.resend(ResendRequest { request_id: request.request_id.clone(), channel: 0 }).await.unwrap().into_inner();
    assert_eq!((again.resent_from.as_str(), again.channel), (request.request_id.as_str(), NotifyChannel::Sms as i32));
    let by_email = agent
        .resend(ResendRequest { request_id: request.request_id.clone(), channel: NotifyChannel::Email as i32 })
        .await
        .unwrap()
        .into_inner();
    let resent = n
        .wait_requests("two resends", 2, |r| r.request_id == again.request_id || r.request_id == by_email.request_id)
        .await;
    let mail = resent.iter().find(|r| r.channel == NotifyChannel::Email as i32).unwrap();
    assert_eq!(mail.recipient.as_ref().unwrap().address, "amy@example.com");
    assert!(mail.subject.contains(&t.feedback_number));
    let denied = n
        .client(Role::Handler)
        .await
        .resend(ResendRequest { request_id: request.request_id.clone(), channel: 0 })
        .await;
    assert_eq!(denied.unwrap_err().code(), tonic::Code::PermissionDenied);
    let missing = agent.resend(ResendRequest { request_id: "nope".into(), channel: 0 }).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    n.stop().await;
}

#[tokio::test]
async fn any_template_can_be_previewed_with_given_data() {
    let n = NotificationUnderTest::start(daytime(), &[]).await;
    let mut admin = n.client(Role::Admin).await;
    let preview = admin
        .preview_template(PreviewTemplateRequest {
            template_id: "deadline_extended".into(),
            channel: NotifyChannel::Email as i32,
            locale: "en-US".into(),
            params: [
                ("feedback_number".to_string(), "FB209912310042".to_string()),
                ("reason".into(), "parts <late>".into()),
            ]
            .into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(preview.subject, "New completion time for your feedback (FB209912310042)");
    assert!(preview.body.contains("Reason: parts <late>"));
    assert!(preview.html_body.contains("parts &lt;late&gt;"), "HTML is escaped: {}", preview.html_body);
    let bad = admin
        .preview_template(PreviewTemplateRequest {
            template_id: "report".into(),
            channel: NotifyChannel::Sms as i32,
            locale: "zh".into(),
            params: [("no_such".to_string(), "x".to_string())].into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("params") && bad.message().contains("no_such"), "{}", bad.message());
    let unknown = admin
        .preview_template(PreviewTemplateRequest {
            template_id: "nope".into(),
            channel: NotifyChannel::Sms as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(unknown.message().contains("template_id"), "{}", unknown.message());
    let denied = n.client(Role::Agent).await.preview_template(PreviewTemplateRequest::default()).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    n.stop().await;
}

#[tokio::test]
async fn a_customer_notice_that_fails_for_good_becomes_a_call_task_for_the_handler() {
    let n = NotificationUnderTest::start(daytime(), &[]).await;
    let customer = n.customer(Some("13812345678"), None, NotifyChannel::Sms);
    n.ticket_event("created", &ticket_event(&ticket("T-0701", 1, customer.clone()), Kind::Created(TicketCreated {})))
        .await;
    let resolved = kesu_proto::v1::TicketResolved::default();
    n.ticket_event("resolved", &ticket_event(&ticket("T-0701", 2, customer), Kind::Resolved(resolved))).await;
    let result = n.wait_requests("the result notice", 1, |r| r.purpose == P::ResultNotice as i32).await.remove(0);
    let failed = DeliveryReport {
        request_id: result.request_id.clone(),
        channel: NotifyChannel::Sms as i32,
        kind: DeliveryReportKind::Failed as i32,
        sender: "test-gateway".into(),
        reason: "gateway receipt UNDELIV".into(),
        retryable: false,
        attempt: 1,
        ..Default::default()
    };
    n.publish("notify.report.sms", "kesu.v1.DeliveryReport", &format!("{}:failed", result.request_id), &failed).await;
    let call = n.wait_requests("a call task", 1, |r| r.purpose == P::CallCustomer as i32).await.remove(0);
    let recipient = call.recipient.unwrap();
    assert_eq!((recipient.staff_id.as_str(), call.channel), ("s-as-01", NotifyChannel::App as i32));
    assert!(call.body.contains("处理结果"), "{}", call.body);
    n.stop().await;
}
