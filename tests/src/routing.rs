//! The six complaints of issue 9, as adapters send them: no type, cause or
//! urgency stated, only what the customer wrote. Routing must tell them
//! apart from the text.

use kesu_proto::v1::{
    Contact, ContactKind, Customer, CustomerRequest, CustomerRequestKind, NotifyChannel, RawFeedback,
};

/// The policy overlay system tests of routing use: staff work around the
/// clock every day, so assignment does not depend on when the test runs.
pub const ALWAYS_ON_DUTY: &str = "[calendar]\nname = \"always\"\ntime_zone = \"Asia/Shanghai\"\n\
    working_days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"]\n\
    working_hours = [\"00:00-23:59\"]\nholidays = []\nextra_working_days = []\n";

fn customer(name: &str, tier: &str, contact: Contact) -> Option<Customer> {
    let preferred = if contact_is_email(&contact) { NotifyChannel::Email } else { NotifyChannel::Sms };
    Some(Customer {
        name: name.into(),
        tier: tier.into(),
        contacts: vec![contact],
        preferred_channel: preferred as i32,
        ..Default::default()
    })
}

fn contact_is_email(c: &Contact) -> bool {
    c.kind == ContactKind::Email as i32
}

fn phone(n: &str) -> Contact {
    Contact { kind: ContactKind::Phone as i32, value: n.into(), masked: false }
}

fn email(e: &str) -> Contact {
    Contact { kind: ContactKind::Email as i32, value: e.into(), masked: false }
}

/// A feedback with only the customer's words: what happened, and what they
/// want (intake requires the latter; its kind is left for routing to read).
fn words(external_id: &str, locale: &str, who: Option<Customer>, description: &str, wants: &str) -> RawFeedback {
    RawFeedback {
        external_id: external_id.into(),
        locale: locale.into(),
        customer: who,
        description: description.into(),
        customer_request: Some(CustomerRequest { kind: CustomerRequestKind::Unspecified as i32, detail: wants.into() }),
        ..Default::default()
    }
}

/// (channel, feedback) for: a payment outage in every store, an appliance
/// leaking current, a feature suggestion, a robot that won't power on with
/// a request to exchange it, an order not shipped for 7 days (from a VIP),
/// an English double charge asking for a refund.
pub fn six_complaints(run: &str) -> Vec<(&'static str, RawFeedback)> {
    vec![
        (
            "phone",
            words(
                &format!("{run}-outage"),
                "zh-CN",
                customer("王店长", "normal", phone("13900000001")),
                "从上午十点开始全部门店收银系统无法支付，微信支付宝都付不了款，顾客排长队，损失很大。",
                "请马上处理！",
            ),
        ),
        (
            "app",
            words(
                &format!("{run}-leak"),
                "zh-CN",
                customer("李四", "normal", phone("13900000002")),
                "新买的洗衣机漏电，我妈手碰到外壳被电了一下，现在已经拔了插头。",
                "请尽快派人来检查。",
            ),
        ),
        (
            "web",
            words(
                &format!("{run}-idea"),
                "zh-CN",
                customer("赵六", "normal", phone("13900000003")),
                "建议APP增加夜间模式，晚上用太刺眼了。",
                "希望下个版本加上。",
            ),
        ),
        (
            "wechat",
            words(
                &format!("{run}-robot"),
                "zh-CN",
                customer("张三", "normal", phone("13900000004")),
                "上个月买的扫地机器人开不了机，按电源键没有任何反应。",
                "希望换一台新的。",
            ),
        ),
        (
            "app",
            words(
                &format!("{run}-late"),
                "zh-CN",
                customer("钱七", "vip", phone("13900000005")),
                "订单下了7天了还没发货，物流信息一直没更新。",
                "到底什么时候发？",
            ),
        ),
        (
            "email",
            words(
                &format!("{run}-double"),
                "en-GB",
                customer("Alice Chen", "normal", email("alice@example.com")),
                "I placed one order but my credit card was charged twice for the same amount.",
                "Please refund the duplicate charge.",
            ),
        ),
    ]
}
