//! Needs info: what a feedback must say before anyone can act on it.
//!
//! A feedback that can be taken but says too little is numbered, kept with
//! status *needs info*, and the customer is asked for what is missing
//! (`feedback.evt.needs_info`, the submit answer). The rules:
//!
//! - `description` is required (code `required`);
//! - a description that says nothing is `vague`: only punctuation or
//!   symbols, one or two characters repeated ("啊啊啊啊", "aaaa"), only
//!   digits, a placeholder ("有问题", "如题", "test", "see attachment"
//!   without an attachment, ...), or too short: fewer than
//!   [`MIN_WEIGHT`] (8) points, where a CJK character counts 2 and a letter
//!   or digit 1 ("没收到货" and "order late" pass, "不满意" and "bad" do not);
//! - a description that points at an attachment ("见附件", "see
//!   attached", "screenshot") when none was sent: `attachments`, code
//!   `missing_attachment`;
//! - what the customer wants (repair, refund, an answer, ...) must be said:
//!   in `customer_request`, or in the description's words (a request such
//!   as "希望换一台", "请尽快处理", "please refund", or a question, which asks
//!   for an answer; routing reads the kind from the text); consultations and
//!   suggestions need none. Otherwise `customer_request`, code `required`.

use std::collections::HashSet;

use kesu_proto::v1::{CustomerRequestKind, FieldError, RawFeedback, RequestNature};

use crate::validate::field_error;

/// The least "weight" of a description's letters and digits (a CJK
/// character counts 2, any other letter or digit 1).
pub const MIN_WEIGHT: usize = 8;

/// Descriptions that say nothing, compared after lower-casing and dropping
/// everything but letters and digits (and trailing filler particles).
const PLACEHOLDERS: &[&str] = &[
    // zh
    "有问题",
    "有个问题",
    "出问题了",
    "有问题请处理",
    "请处理",
    "请尽快处理",
    "不好用",
    "不能用",
    "用不了",
    "坏了",
    "如题",
    "同上",
    "见附件",
    "详见附件",
    "请看附件",
    "见截图",
    "如图",
    "见图",
    "无",
    "没有",
    "测试",
    "投诉",
    "我要投诉",
    "你好",
    "您好",
    "在吗",
    "在不在",
    "无描述",
    "暂无",
    // en
    "test",
    "testing",
    "na",
    "none",
    "nothing",
    "problem",
    "aproblem",
    "thereisaproblem",
    "issue",
    "itdoesnotwork",
    "itdoesntwork",
    "doesntwork",
    "doesnotwork",
    "notworking",
    "itsnotworking",
    "itisnotworking",
    "broken",
    "itsbroken",
    "help",
    "pleasehelp",
    "helpme",
    "complaint",
    "hello",
    "hi",
    "seeattachment",
    "seeattached",
    "seetheattachment",
    "pleaseseeattachment",
    "pleaseseeattached",
    "seescreenshot",
    "seethescreenshot",
    "astitle",
    "sameasabove",
    "seetitle",
    "loremipsum",
    "asdf",
    "xxx",
];

/// Phrases that point at an attachment (lower-cased).
const ATTACHMENT_REFERENCES: &[&str] = &[
    "附件",
    "附图",
    "见图",
    "如图",
    "截图",
    "见照片",
    "see attach",
    "attached",
    "attachment",
    "screenshot",
    "see photo",
    "see the photo",
    "see picture",
    "see the picture",
    "see image",
    "see the image",
];

/// Words and marks by which a description itself says what the customer
/// wants (lower-cased): a request, or a question (asking for an answer).
const REQUEST_CUES: &[&str] = &[
    "希望",
    "要求",
    "请",
    "麻烦",
    "退款",
    "退货",
    "退钱",
    "换货",
    "更换",
    "换一",
    "维修",
    "修好",
    "上门",
    "赔",
    "补发",
    "解释",
    "说明",
    "处理",
    "建议",
    "帮",
    "怎么",
    "什么时候",
    "如何",
    "能否",
    "能不能",
    "可以吗",
    "吗",
    "？",
    "?",
    "please",
    "want",
    "would like",
    "refund",
    "replace",
    "repair",
    "fix",
    "explain",
    "need",
    "could you",
    "can you",
    "suggest",
    "help",
    "return",
    "compensat",
    "send ",
];

/// Trailing particles that do not change a placeholder ("有问题啊").
const FILLERS: &[char] = &['啊', '呀', '吧', '呢', '哦', '嗯', '哈', '了', '的', '啦'];

/// What is missing from `raw` for someone to act on it; empty when complete.
pub fn missing(raw: &RawFeedback) -> Vec<FieldError> {
    let mut missing = Vec::new();
    let description = raw.description.trim();
    let refers_to_attachment = refers_to_attachment(description);
    let has_attachments = !raw.attachments.is_empty();
    if description.is_empty() {
        missing.push(field_error(
            "description",
            "required",
            "description is required: what happened, when and where, and what it affects",
        ));
    } else if let Some(reason) = vague(description, has_attachments) {
        missing.push(field_error("description", "vague", reason));
    }
    if refers_to_attachment && !has_attachments {
        missing.push(field_error(
            "attachments",
            "missing_attachment",
            "the description refers to an attachment, but none was sent",
        ));
    }
    let nature = RequestNature::try_from(raw.request_nature).unwrap_or_default();
    let request_needed = !matches!(nature, RequestNature::Consultation | RequestNature::Suggestion);
    let request_given = raw
        .customer_request
        .as_ref()
        .is_some_and(|r| r.kind != CustomerRequestKind::Unspecified as i32 || !r.detail.trim().is_empty())
        || states_a_request(description);
    if request_needed && !request_given {
        missing.push(field_error(
            "customer_request",
            "required",
            "customer_request is required: what the customer wants (repair, replacement, refund, an explanation, ...)",
        ));
    }
    missing
}

/// Why a (non-empty) description says nothing, if it does not.
pub fn vague(text: &str, has_attachments: bool) -> Option<&'static str> {
    let meaningful: Vec<char> = text.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect();
    if meaningful.is_empty() {
        return Some("the description has only punctuation or symbols: say what happened");
    }
    let distinct: HashSet<char> = meaningful.iter().copied().collect();
    if meaningful.len() >= 3 && distinct.len() <= 2 {
        return Some("the description only repeats a character: say what happened");
    }
    if meaningful.iter().all(|c| c.is_ascii_digit()) {
        return Some("the description has only digits: say what happened");
    }
    let normalized: String = meaningful.iter().collect();
    let trimmed = normalized.trim_end_matches(FILLERS);
    let attachment_only = refers_to_attachment(text) && has_attachments;
    if !attachment_only && (PLACEHOLDERS.contains(&normalized.as_str()) || PLACEHOLDERS.contains(&trimmed)) {
        return Some("the description is a placeholder: say what happened, when and where");
    }
    let weight: usize = meaningful.iter().map(|&c| if is_cjk(c) { 2 } else { 1 }).sum();
    if weight < MIN_WEIGHT && !attachment_only {
        return Some("the description is too short to say what happened");
    }
    None
}

/// Whether the text says what the customer wants (a request or a question).
pub fn states_a_request(text: &str) -> bool {
    let lower = text.to_lowercase();
    REQUEST_CUES.iter().any(|cue| lower.contains(cue))
}

fn refers_to_attachment(text: &str) -> bool {
    let lower = text.to_lowercase();
    ATTACHMENT_REFERENCES.iter().any(|r| lower.contains(r))
}

/// Han ideographs, kana and Hangul: one of them says about as much as a
/// short word.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK Extension A
        | 0x4E00..=0x9FFF    // CJK Unified Ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK Compatibility Ideographs
        | 0x20000..=0x2FA1F) // CJK Extensions B-F, compatibility supplement
}

#[cfg(test)]
mod tests {
    use super::*;
    use kesu_proto::v1::{Attachment, CustomerRequest};

    fn with(description: &str) -> RawFeedback {
        RawFeedback {
            description: description.into(),
            customer_request: Some(CustomerRequest { kind: CustomerRequestKind::Repair as i32, detail: String::new() }),
            ..Default::default()
        }
    }

    fn codes(raw: &RawFeedback) -> Vec<(String, String)> {
        missing(raw).into_iter().map(|e| (e.field, e.code)).collect()
    }

    fn pair(field: &str, code: &str) -> Vec<(String, String)> {
        vec![(field.to_string(), code.to_string())]
    }

    #[test]
    fn descriptions_that_say_nothing_are_vague_in_chinese_and_english() {
        let table: &[(&str, Option<&str>)] = &[
            // zh
            ("有问题", Some("placeholder")),
            ("有问题啊！！", Some("placeholder")),
            ("有问题，请处理", Some("placeholder")),
            ("如题", Some("placeholder")),
            ("坏了", Some("placeholder")),
            ("。。。！！？", Some("punctuation")),
            ("啊啊啊啊啊啊啊", Some("repeats")),
            ("哈哈哈哈哈哈", Some("repeats")),
            ("不满意", Some("too short")),
            ("开机无反应", None),
            ("购买的产品A开机无反应，使用时间1周", None),
            ("订单 SO-1 扣款两次", None),
            // en
            ("test", Some("placeholder")),
            ("It doesn't work!", Some("placeholder")),
            ("N/A", Some("placeholder")),
            ("Please see attached", Some("placeholder")),
            ("!!!???...", Some("punctuation")),
            ("aaaaaaaaaaaa", Some("repeats")),
            ("ababababab", Some("repeats")),
            ("1234567890123", Some("digits")),
            ("bad", Some("too short")),
            ("Order late", None),
            ("My order has not arrived two weeks after dispatch.", None),
            ("The kettle base leaks current", None),
        ];
        for (text, expected) in table {
            let got = vague(text, false);
            match expected {
                None => assert_eq!(got, None, "{text:?} should be clear enough"),
                Some(word) => {
                    let reason = got.unwrap_or_else(|| panic!("{text:?} should be vague"));
                    assert!(reason.contains(word), "{text:?}: {reason:?} should say {word:?}");
                }
            }
        }
    }

    #[test]
    fn an_empty_description_is_required() {
        assert_eq!(codes(&with("  ")), pair("description", "required"));
        assert_eq!(codes(&with("有问题")), pair("description", "vague"));
        assert_eq!(codes(&with("购买的产品A开机无反应，使用时间1周")), vec![]);
    }

    #[test]
    fn an_attachment_referred_to_must_be_there() {
        let mut raw = with("见附件");
        assert_eq!(
            codes(&raw),
            vec![
                ("description".to_string(), "vague".to_string()),
                ("attachments".to_string(), "missing_attachment".to_string())
            ]
        );
        raw.attachments.push(Attachment {
            name: "photo.jpg".into(),
            uri: "s3://b/photo.jpg".into(),
            ..Default::default()
        });
        assert_eq!(codes(&raw), vec![], "with the attachment, the pointer is enough");
        let raw = with("The screen cracked on the first day, see the screenshot");
        assert_eq!(codes(&raw), pair("attachments", "missing_attachment"));
        let raw = with("屏幕第一天就裂了，详见截图");
        assert_eq!(codes(&raw), pair("attachments", "missing_attachment"));
    }

    #[test]
    fn the_customer_request_is_required_except_for_questions_and_suggestions() {
        let mut raw = with("My order has not arrived two weeks after dispatch.");
        raw.customer_request = None;
        assert_eq!(codes(&raw), pair("customer_request", "required"));
        raw.customer_request = Some(CustomerRequest { kind: 0, detail: "   ".into() });
        assert_eq!(codes(&raw), pair("customer_request", "required"));
        raw.customer_request = Some(CustomerRequest { kind: 0, detail: "尽快发货".into() });
        assert_eq!(codes(&raw), vec![]);
        raw.customer_request = None;
        raw.request_nature = RequestNature::Consultation as i32;
        assert_eq!(codes(&raw), vec![]);
        raw.request_nature = RequestNature::Suggestion as i32;
        assert_eq!(codes(&raw), vec![]);
        raw.request_nature = RequestNature::Complaint as i32;
        assert_eq!(codes(&raw), pair("customer_request", "required"));
        // Said in words, or asked as a question: routing reads the kind from the text.
        for text in [
            "上个月买的扫地机器人开不了机，希望换一台新的。",
            "订单下了7天了还没发货，到底什么时候发？",
            "My card was charged twice for one order. Please refund the duplicate charge.",
            "My parcel is two weeks late, where is it?",
        ] {
            raw.description = text.into();
            assert_eq!(codes(&raw), vec![], "{text}");
        }
    }
}
