//! kesu-demo: feeds realistic feedback into a running kesu and prints what
//! comes out at each step. Also the small helpers `make run` uses.
//!
//! ```text
//! kesu-demo feed [--nats URL] [--analytics URL]   submit demo feedback and follow it
//! kesu-demo keygen                                print a new contact key (base64)
//! kesu-demo ports P1 P2 ...                       each port if free, else a free one
//! kesu-demo wait-ready URL ...                    wait until each URL answers 200
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use kesu_proto::v1::analytics_service_client::AnalyticsServiceClient;
use kesu_proto::v1::*;
use prost::Message;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = args.split_first().map(|(c, r)| (c.as_str(), r)).unwrap_or(("feed", &[]));
    match command {
        "keygen" => {
            println!("{}", kesu_domain::ContactKey::generate_base64());
            Ok(())
        }
        "ports" => ports(rest),
        "wait-ready" => tokio::runtime::Runtime::new()?.block_on(wait_ready(rest)),
        "feed" => tokio::runtime::Runtime::new()?.block_on(feed(rest)),
        "-h" | "--help" | "help" => {
            println!("{}", USAGE);
            Ok(())
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

const USAGE: &str = "usage: kesu-demo [feed [--nats URL] [--analytics URL] | keygen | ports P.. | wait-ready URL..]";

fn flag(rest: &[String], name: &str, default: &str) -> String {
    rest.windows(2).find(|w| w[0] == name).map(|w| w[1].clone()).unwrap_or_else(|| default.to_string())
}

fn ports(wanted: &[String]) -> anyhow::Result<()> {
    let mut taken = Vec::new();
    for p in wanted {
        let port: u16 = p.parse().with_context(|| format!("{p:?} is not a port"))?;
        let pick = if port != 0 && !taken.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            port
        } else {
            loop {
                let free = std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port();
                if !taken.contains(&free) {
                    break free;
                }
            }
        };
        taken.push(pick);
        print!("{pick} ");
    }
    println!();
    Ok(())
}

async fn wait_ready(urls: &[String]) -> anyhow::Result<()> {
    for url in urls {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if http_status(url).await.is_ok_and(|s| s == 200) {
                break;
            }
            if Instant::now() > deadline {
                bail!("{url} did not become ready within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// A minimal HTTP/1.0 GET, enough for /readyz on localhost.
async fn http_status(url: &str) -> anyhow::Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").context("only http:// URLs")?;
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes()).await?;
    let mut head = vec![0; 64];
    let n = stream.read(&mut head).await?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("no HTTP status")
}

fn contact(kind: ContactKind, value: &str) -> Contact {
    Contact { kind: kind as i32, value: value.into(), masked: false }
}

/// The demo feedback: (channel, how it is sent, feedback).
fn demo_feedback(run: &str) -> Vec<(&'static str, bool, RawFeedback)> {
    let customer = |name: &str, contacts: Vec<Contact>, preferred: NotifyChannel, tier: &str| Customer {
        name: name.into(),
        contacts,
        preferred_channel: preferred as i32,
        tier: tier.into(),
        ..Default::default()
    };
    vec![
        (
            "app",
            true,
            RawFeedback {
                external_id: format!("{run}-app-1"),
                locale: "zh-CN".into(),
                customer: Some(customer(
                    "张三",
                    vec![contact(ContactKind::Phone, "138-1234-5678")],
                    NotifyChannel::Sms,
                    "normal",
                )),
                product: "扫地机器人 X1".into(),
                problem_type: "repair".into(),
                problem_cause: "no_power".into(),
                description: "购买的扫地机器人开机无反应，使用时间一周，已充电一整夜。".into(),
                customer_request: Some(CustomerRequest {
                    kind: CustomerRequestKind::Repair as i32,
                    detail: "希望上门维修".into(),
                }),
                urgency: Priority::Medium as i32,
                ..Default::default()
            },
        ),
        (
            "web",
            true,
            RawFeedback {
                external_id: format!("{run}-web-1"),
                locale: "en".into(),
                customer: Some(customer(
                    "Alice Chen",
                    vec![contact(ContactKind::Email, "alice@example.com")],
                    NotifyChannel::Email,
                    "vip",
                )),
                problem_type: "logistics".into(),
                problem_cause: "delivery_delay".into(),
                description: "My order SO-20261120-0042 has not arrived two weeks after dispatch.".into(),
                order_number: "SO-20261120-0042".into(),
                customer_request: Some(CustomerRequest {
                    kind: CustomerRequestKind::Explanation as i32,
                    detail: "Tell me when it arrives".into(),
                }),
                urgency: Priority::High as i32,
                ..Default::default()
            },
        ),
        (
            "phone",
            true,
            RawFeedback {
                external_id: format!("{run}-ivr-1"),
                customer: Some(customer(
                    "李四",
                    vec![contact(ContactKind::Phone, "139 8765 4321")],
                    NotifyChannel::Sms,
                    "normal",
                )),
                problem_type: "product_quality".into(),
                problem_cause: "safety_hazard".into(),
                description: "电热水壶底座漏电，手碰到有麻的感觉，请尽快处理！".into(),
                customer_request: Some(CustomerRequest {
                    kind: CustomerRequestKind::Replace as i32,
                    detail: String::new(),
                }),
                urgency: Priority::Urgent as i32,
                entered_by: "agent-007".into(),
                ..Default::default()
            },
        ),
        (
            "wechat",
            false,
            RawFeedback {
                external_id: format!("{run}-wx-1"),
                customer: Some(customer(
                    "王五",
                    vec![contact(ContactKind::Phone, "13700001111")],
                    NotifyChannel::Sms,
                    "",
                )),
                problem_type: "billing".into(),
                problem_cause: "double_charge".into(),
                description: "同一笔订单被扣了两次款，金额 299 元。".into(),
                customer_request: Some(CustomerRequest {
                    kind: CustomerRequestKind::Refund as i32,
                    detail: String::new(),
                }),
                ..Default::default()
            },
        ),
        (
            "email",
            false,
            RawFeedback {
                external_id: format!("{run}-mail-1"),
                locale: "en".into(),
                customer: Some(customer(
                    "Bob Smith",
                    vec![contact(ContactKind::Email, "bob@example.org")],
                    NotifyChannel::Email,
                    "",
                )),
                description: "Is there a way to export my order history as a spreadsheet?".into(),
                request_nature: RequestNature::Consultation as i32,
                urgency: Priority::Low as i32,
                ..Default::default()
            },
        ),
        // Issue 9's six complaints, with only the customer's words: routing
        // reads type, cause, priority and request from the text.
        six(
            "phone",
            &format!("{run}-six-outage"),
            "zh-CN",
            "王店长",
            "13900000001",
            "normal",
            ("从上午十点开始全部门店收银系统无法支付，微信支付宝都付不了款，顾客排长队，损失很大。", "请马上处理！"),
        ),
        six(
            "app",
            &format!("{run}-six-leak"),
            "zh-CN",
            "李四",
            "13900000002",
            "normal",
            ("新买的洗衣机漏电，我妈手碰到外壳被电了一下，现在已经拔了插头。", "请尽快派人来检查。"),
        ),
        six(
            "web",
            &format!("{run}-six-idea"),
            "zh-CN",
            "赵六",
            "13900000003",
            "normal",
            ("建议APP增加夜间模式，晚上用太刺眼了。", "希望下个版本加上。"),
        ),
        six(
            "wechat",
            &format!("{run}-six-robot"),
            "zh-CN",
            "张三",
            "13900000004",
            "normal",
            ("上个月买的扫地机器人开不了机，按电源键没有任何反应。", "希望换一台新的。"),
        ),
        six(
            "app",
            &format!("{run}-six-late"),
            "zh-CN",
            "钱七",
            "13900000005",
            "vip",
            ("订单下了7天了还没发货，物流信息一直没更新。", "到底什么时候发？"),
        ),
        six(
            "email",
            &format!("{run}-six-double"),
            "en-GB",
            "Alice Chen",
            "alice@example.com",
            "normal",
            (
                "I placed one order but my credit card was charged twice for the same amount.",
                "Please refund the duplicate charge.",
            ),
        ),
        (
            "web",
            true,
            RawFeedback {
                external_id: format!("{run}-web-bad"),
                customer: Some(customer("赵六", vec![], NotifyChannel::Unspecified, "")),
                description: "没有留联系方式的反馈".into(),
                ..Default::default()
            },
        ),
    ]
}

/// A feedback with nothing stated but the customer's words.
fn six(
    channel: &'static str,
    external_id: &str,
    locale: &str,
    name: &str,
    address: &str,
    tier: &str,
    (text, wants): (&str, &str),
) -> (&'static str, bool, RawFeedback) {
    let (kind, preferred) = if address.contains('@') {
        (ContactKind::Email, NotifyChannel::Email)
    } else {
        (ContactKind::Phone, NotifyChannel::Sms)
    };
    let customer = Customer {
        name: name.into(),
        contacts: vec![contact(kind, address)],
        preferred_channel: preferred as i32,
        tier: tier.into(),
        ..Default::default()
    };
    let raw = RawFeedback {
        external_id: external_id.into(),
        locale: locale.into(),
        customer: Some(customer),
        description: text.into(),
        customer_request: Some(CustomerRequest { kind: CustomerRequestKind::Unspecified as i32, detail: wants.into() }),
        ..Default::default()
    };
    (channel, true, raw)
}

/// One line per ticket of the six complaints: what routing read.
fn print_routed(routed: &std::collections::BTreeMap<String, (Ticket, String)>) {
    println!("\n== Issue 9's six complaints, as routing read them from the text ==");
    for (external_id, (t, paged)) in routed {
        let c = t.classification.clone().unwrap_or_default();
        let name = |s: &str, prefix: &str| s.trim_start_matches(prefix).to_lowercase();
        let request = name(
            CustomerRequestKind::try_from(c.request_kind).unwrap_or_default().as_str_name(),
            "CUSTOMER_REQUEST_KIND_",
        );
        let nature =
            name(RequestNature::try_from(c.request_nature).unwrap_or_default().as_str_name(), "REQUEST_NATURE_");
        let priority = name(Priority::try_from(t.priority).unwrap_or_default().as_str_name(), "PRIORITY_");
        let handlers = if t.co_handlers.is_empty() {
            t.handler.clone()
        } else {
            format!("{} + {}", t.handler, t.co_handlers.join(", "))
        };
        println!("  {external_id}");
        println!(
            "      type {}/{} (confidence {:.2}, evidence: {})",
            c.type_code,
            c.cause_code,
            c.confidence,
            c.matched_keywords.join(", ")
        );
        println!("      {nature}, asks for {request}; priority {priority} because {}", t.priority_reasons.join("; "));
        println!(
            "      department {}, handler {}{}",
            t.department,
            if handlers.is_empty() { "(none on duty)".into() } else { handlers },
            paged
        );
    }
}

async fn feed(rest: &[String]) -> anyhow::Result<()> {
    let nats_url =
        flag(rest, "--nats", &std::env::var("KESU_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into()));
    let analytics_url = flag(rest, "--analytics", "http://127.0.0.1:50055");
    let client = async_nats::connect(&nats_url).await.with_context(|| format!("connecting to {nats_url}"))?;
    let js = async_nats::jetstream::new(client.clone());
    // The event subjects only: a `>` subscription would also see JetStream's
    // deliveries to every consumer.
    let mut subscriptions = Vec::new();
    for subject in ["feedback.evt.>", "ticket.evt.>", "sla.evt.>", "notify.>"] {
        subscriptions.push(client.subscribe(subject).await?);
    }
    let mut events = futures::stream::select_all(subscriptions);
    let run = format!("demo{}", chrono::Utc::now().format("%H%M%S"));
    let feedback = demo_feedback(&run);

    println!(
        "\n== Submitting {} feedbacks (request/reply answers at once; the rest fire and forget) ==",
        feedback.len()
    );
    for (channel, wait_for_number, raw) in &feedback {
        if *wait_for_number {
            let reply = client.request(format!("feedback.submit.{channel}"), raw.encode_to_vec().into()).await?;
            let answer = SubmitFeedbackResponse::decode(reply.payload.as_ref())?;
            match SubmitOutcome::try_from(answer.outcome).unwrap_or_default() {
                SubmitOutcome::Rejected => {
                    let errors: Vec<String> =
                        answer.errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
                    println!("  {channel:<7} {:<18} REJECTED  {}", raw.external_id, errors.join("; "));
                }
                outcome => println!(
                    "  {channel:<7} {:<18} {:<9} your feedback number is {}",
                    raw.external_id,
                    outcome.as_str_name().trim_start_matches("SUBMIT_OUTCOME_"),
                    answer.feedback_number
                ),
            }
        } else {
            js.publish(format!("feedback.raw.{channel}"), raw.encode_to_vec().into()).await?.await?;
            println!("  {channel:<7} {:<18} published on feedback.raw.{channel}", raw.external_id);
        }
    }

    println!("\n== What came out at each step ==");
    let tz = chrono_tz::Asia::Shanghai;
    let expected_notifications = feedback.len() - 1;
    let mut seen_notifications = 0;
    let six_ids: Vec<String> =
        feedback.iter().map(|(_, _, f)| f.external_id.clone()).filter(|id| id.contains("-six-")).collect();
    let mut routed = std::collections::BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen_notifications < expected_notifications || routed.len() < six_ids.len() {
        let msg = match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(msg)) => msg,
            _ => break,
        };
        let subject = msg.subject.as_str();
        let payload = msg.payload.as_ref();
        if subject.starts_with("feedback.evt.") {
            let e = FeedbackEvent::decode(payload)?;
            let detail = match &e.kind {
                Some(feedback_event::Kind::Accepted(a)) => {
                    let c = a.feedback.as_ref().and_then(|f| f.customer.clone()).unwrap_or_default();
                    let contacts: Vec<&str> = c.contacts.iter().map(|p| p.masked.as_str()).collect();
                    format!("customer {} contact {} (sealed on the bus)", c.masked_name, contacts.join(","))
                }
                Some(feedback_event::Kind::Rejected(r)) => {
                    r.errors.iter().map(|e| format!("{}: {}", e.field, e.code)).collect::<Vec<_>>().join("; ")
                }
                _ => String::new(),
            };
            println!(
                "[intake]       {subject:<28} {:<16} {}:{}  {detail}",
                e.feedback_number,
                channel_name(e.channel),
                e.external_id
            );
        } else if subject.starts_with("ticket.evt.") {
            let e = TicketEvent::decode(payload)?;
            let t = e.ticket.unwrap_or_default();
            if six_ids.contains(&t.external_id) {
                match &e.kind {
                    Some(ticket_event::Kind::Created(_)) => {
                        routed.entry(t.external_id.clone()).or_insert_with(|| (t.clone(), String::new()));
                    }
                    Some(ticket_event::Kind::Escalated(x)) => {
                        let paged = format!("; department head {} paged", x.to_staff);
                        routed.entry(t.external_id.clone()).or_insert_with(|| (t.clone(), String::new())).1 = paged;
                    }
                    _ => {}
                }
            }
            let class = t.classification.unwrap_or_default();
            println!(
                "[routing]      {subject:<28} {:<16} priority {} department {} type {}/{}",
                t.feedback_number,
                Priority::try_from(t.priority)
                    .unwrap_or_default()
                    .as_str_name()
                    .trim_start_matches("PRIORITY_")
                    .to_lowercase(),
                t.department,
                class.type_code,
                class.cause_code
            );
        } else if subject.starts_with("sla.evt.") {
            let e = SlaEvent::decode(payload)?;
            if let Some(sla_event::Kind::Armed(armed)) = e.kind {
                let clocks: Vec<String> = armed
                    .clocks
                    .iter()
                    .map(|c| {
                        let due = c.deadline.as_ref().and_then(kesu_domain::time::from_timestamp).unwrap_or_default();
                        format!(
                            "{} {} → due {}",
                            SlaClockKind::try_from(c.kind)
                                .unwrap_or_default()
                                .as_str_name()
                                .trim_start_matches("SLA_CLOCK_KIND_")
                                .to_lowercase(),
                            c.target,
                            due.with_timezone(&tz).format("%m-%d %H:%M")
                        )
                    })
                    .collect();
                println!("[sla-timer]    {subject:<28} {:<16} {}", e.feedback_number, clocks.join(", "));
            }
        } else if subject.starts_with("notify.req.") {
            let r = NotificationRequest::decode(payload)?;
            let to = r.recipient.map(|r| r.masked_address).unwrap_or_default();
            println!(
                "[notification] {subject:<28} {:<16} to {to}: {}",
                r.feedback_number,
                r.body.lines().next().unwrap_or_default()
            );
        } else if subject.starts_with("notify.evt.") {
            seen_notifications += 1;
        }
    }

    print_routed(&routed);

    println!("\n== Analytics summary ({analytics_url}) ==");
    tokio::time::sleep(Duration::from_millis(500)).await;
    match AnalyticsServiceClient::connect(analytics_url.clone()).await {
        Ok(mut analytics) => {
            let mut request = tonic::Request::new(GetSummaryRequest { range: None });
            // Analytics needs a staff token: an analyst's, from the shared secret.
            if let Ok(secret) = std::env::var("KESU_AUTH_JWT_SECRET") {
                let analyst = kesu_auth::Staff::new("demo-analyst", kesu_auth::Role::Analyst, "");
                let token = kesu_auth::mint(secret.as_bytes(), &analyst, Duration::from_secs(300))?;
                request.metadata_mut().insert("authorization", format!("Bearer {token}").parse()?);
            }
            let s = analytics.get_summary(request).await?.into_inner();
            println!(
                "  feedback received {}  accepted {}  rejected {}  duplicates {}\n  tickets created {}  SLA clocks armed {}  notifications requested {}",
                s.feedback_received,
                s.feedback_accepted,
                s.feedback_rejected,
                s.feedback_duplicates,
                s.tickets_created,
                s.sla_clocks_armed,
                s.notifications_requested
            );
            let by = |rows: &[CountByKey]| {
                rows.iter().map(|r| format!("{} {}", r.key, r.count)).collect::<Vec<_>>().join(", ")
            };
            println!("  by channel: {}\n  by priority: {}", by(&s.feedback_by_channel), by(&s.tickets_by_priority));
        }
        Err(e) => println!("  analytics not reachable: {e}"),
    }
    Ok(())
}

fn channel_name(channel: i32) -> &'static str {
    kesu_proto::v1::Channel::try_from(channel).ok().and_then(kesu_domain::channel_token).unwrap_or("?")
}
