//! Replicas of a service share its durable consumer and its database.

use std::collections::HashSet;

use kesu_proto::v1::ticket_service_client::TicketServiceClient;
use kesu_proto::v1::*;
use kesu_system_tests::{Backend, Endpoint, Role, TestSystem, WAIT, eventually, feedback};

const N: usize = 300;

fn handled(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("kesu_bus_consumed_total{")
                && l.contains("stream=\"FEEDBACK\"")
                && l.contains("outcome=\"ok\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn two_replicas_make_exactly_one_ticket_per_feedback(backend: Backend) {
    let env = [("KESU_ROUTING_CONSUMER_CONCURRENCY", "4"), ("KESU_ROUTING_DB_MAX_CONNECTIONS", "4")];
    let Some(mut system) = TestSystem::try_start_with(backend, &["intake", "routing"], &env).await else { return };
    let first: Endpoint = system.endpoint("routing");
    let second: Endpoint = system.start_service("routing").await;
    assert_eq!(system.instances("routing").len(), 2);

    for i in 0..N {
        system.publish_raw("app", &feedback::robot_vacuum(&format!("replica-{i}")), None).await;
    }
    let created = system.wait_for("TICKETS", "ticket.evt.created", N).await;
    // Both replicas share the consumer and the database: once it has
    // handled everything, a ticket made twice would be there now.
    system.wait_until_settled("FEEDBACK", "routing").await;
    let created_now = system.messages("TICKETS", "ticket.evt.created").await;
    assert_eq!(created_now.len(), N, "{backend:?}: no ticket twice");
    let feedback_ids: HashSet<String> =
        created.iter().map(|m| m.decode::<TicketEvent>().ticket.unwrap().feedback_id).collect();
    assert_eq!(feedback_ids.len(), N, "{backend:?}: every feedback has its ticket");

    // The shared database agrees, page by page.
    let mut client = TicketServiceClient::with_interceptor(first.channel().await, system.bearer(Role::Supervisor));
    let mut seen = HashSet::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_tickets(ListTicketsRequest {
                page: Some(PageRequest { page_size: 70, page_token: token }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        for t in page.tickets {
            assert!(seen.insert(t.feedback_id), "{backend:?}: a feedback listed twice");
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), N);

    // Both replicas did part of the work. A replica counts a message once it
    // has acknowledged it, a moment after the commit that made the ticket.
    let (a, b) = eventually("every message counted as handled", WAIT, || async {
        let a = handled(&reqwest::get(first.http_url("/metrics")).await.ok()?.text().await.ok()?);
        let b = handled(&reqwest::get(second.http_url("/metrics")).await.ok()?.text().await.ok()?);
        (a + b >= N as u64).then_some((a, b))
    })
    .await;
    assert!(a > 0 && b > 0, "{backend:?}: work was shared ({a} + {b})");
    system.stop().await;
}

#[tokio::test]
async fn two_routing_replicas_share_the_work_on_sqlite() {
    two_replicas_make_exactly_one_ticket_per_feedback(Backend::Sqlite).await;
}

#[tokio::test]
async fn two_routing_replicas_share_the_work_on_postgres() {
    two_replicas_make_exactly_one_ticket_per_feedback(Backend::Postgres).await;
}
