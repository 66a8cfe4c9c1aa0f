//! The same customer with near-identical text inside the window is merged
//! into the earlier feedback: a duplicate event pointing to its number,
//! never a second ticket, also when two intake replicas get the copies at
//! the same moment.

use kesu_proto::v1::*;
use kesu_system_tests::{Backend, TestSystem, feedback};

const WINDOW: (&str, &str) = ("KESU_INTAKE_DEDUP_WINDOW", "24h");

fn from(customer: usize, external_id: &str, description: &str) -> RawFeedback {
    let mut raw = feedback::robot_vacuum(external_id);
    raw.customer.as_mut().unwrap().contacts[0].value = format!("1380000{customer:04}");
    raw.description = description.into();
    raw
}

#[tokio::test]
async fn near_identical_text_from_the_same_customer_is_a_duplicate_of_the_first_number() {
    let system = TestSystem::start_with(Backend::Sqlite, &["intake", "routing"], &[WINDOW]).await;
    let first =
        system.submit("web", &from(1, "web-d1", "购买的扫地机器人开机无反应，使用时间一周，已充电一整夜。")).await;
    assert_eq!(first.outcome, SubmitOutcome::Accepted as i32);
    // Another channel, another id, a changed particle: the same complaint.
    let again =
        system.submit("app", &from(1, "app-d2", "购买的扫地机器人开机没反应，使用时间一周，已充电一整夜！")).await;
    assert_eq!(again.outcome, SubmitOutcome::Duplicate as i32, "{again:?}");
    assert_eq!(again.feedback_number, first.feedback_number);
    // Its resend is a duplicate too.
    let resend =
        system.submit("app", &from(1, "app-d2", "购买的扫地机器人开机没反应，使用时间一周，已充电一整夜！")).await;
    assert_eq!(resend.feedback_number, first.feedback_number);
    // Another text of the same customer, or the same text of another customer: new feedback.
    let other = system.submit("web", &from(1, "web-d3", "扫地机器人的充电座坏了，插上电源没有任何指示灯。")).await;
    let stranger =
        system.submit("web", &from(2, "web-d4", "购买的扫地机器人开机无反应，使用时间一周，已充电一整夜。")).await;
    assert_eq!((other.outcome, stranger.outcome), (SubmitOutcome::Accepted as i32, SubmitOutcome::Accepted as i32));

    let duplicates = system.wait_for("FEEDBACK", "feedback.evt.duplicate", 2).await;
    let event: FeedbackEvent = duplicates[0].decode();
    assert_eq!(
        (event.external_id.as_str(), event.feedback_number.as_str()),
        ("app-d2", first.feedback_number.as_str())
    );
    let Some(feedback_event::Kind::Duplicate(d)) = event.kind else { panic!("not a duplicate") };
    assert_eq!(d.reason, DuplicateReason::SameCustomerText as i32);
    assert_eq!(d.original_feedback_number, first.feedback_number);
    system.wait_for("TICKETS", "ticket.evt.created", 3).await;
    system.wait_until_settled("FEEDBACK", "routing").await;
    assert_eq!(system.messages("TICKETS", "ticket.evt.created").await.len(), 3);
    system.stop().await;
}

#[tokio::test]
async fn two_replicas_on_postgres_never_make_two_tickets_of_copies_sent_at_the_same_moment() {
    let Some(mut system) = TestSystem::try_start_with(Backend::Postgres, &["intake", "routing"], &[WINDOW]).await
    else {
        return;
    };
    system.start_service("intake").await;
    assert_eq!(system.instances("intake").len(), 2);
    const CUSTOMERS: usize = 12;
    // Each customer sends the same complaint twice at once: through
    // request/reply (the queue group spreads requests over both replicas)
    // and through the stream (the shared consumer spreads messages).
    let mut requests = Vec::new();
    for c in 0..CUSTOMERS {
        let a = from(c, &format!("web-r{c}"), "买的电热水壶底座漏电，手碰到有麻的感觉，请尽快处理！");
        let b = from(c, &format!("app-r{c}"), "买的电热水壶底座漏电，手碰到有麻的感觉，请尽快处理!!");
        let system = &system;
        requests.push(async move { tokio::join!(system.submit("web", &a), system.submit("app", &b)) });
    }
    let answers = futures::future::join_all(requests).await;
    for (a, b) in &answers {
        let mut outcomes = [a.outcome, b.outcome];
        outcomes.sort();
        assert_eq!(outcomes, [SubmitOutcome::Accepted as i32, SubmitOutcome::Duplicate as i32], "{a:?} {b:?}");
        assert_eq!(a.feedback_number, b.feedback_number);
    }
    for c in 0..CUSTOMERS {
        let raw = from(c, &format!("mail-r{c}"), "买的电热水壶底座漏电，手碰到有麻的感觉，请尽快处理。");
        system.publish_raw("email", &raw, None).await;
    }
    system.wait_for("FEEDBACK", "feedback.evt.duplicate", 2 * CUSTOMERS).await;
    system.wait_until_settled("FEEDBACK_RAW", "intake").await;
    system.wait_until_settled("FEEDBACK", "routing").await;
    assert_eq!(system.messages("FEEDBACK", "feedback.evt.accepted").await.len(), CUSTOMERS);
    assert_eq!(system.messages("TICKETS", "ticket.evt.created").await.len(), CUSTOMERS, "one ticket per customer");
    system.stop().await;
}
