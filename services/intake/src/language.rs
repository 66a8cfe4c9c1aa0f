//! The customer's language when the adapter states none: from the script
//! of the title and description. Han characters (kana and Hangul aside)
//! carry about three Latin letters' worth of text each, so the text is
//! Chinese (`zh-CN`) when it has Han characters and at most three Latin
//! letters per Han character, English (`en`) when it has at least three
//! Latin letters otherwise; anything else (digits only, other scripts)
//! keeps the deployment's default locale.

use crate::needs_info::is_cjk;

/// `zh-CN`, `en`, or `None` when the text does not tell.
pub fn detect(texts: &[&str]) -> Option<&'static str> {
    let (mut han, mut latin, mut other_cjk) = (0usize, 0usize, 0usize);
    for c in texts.iter().flat_map(|t| t.chars()) {
        match c as u32 {
            0x3040..=0x30FF | 0xAC00..=0xD7AF => other_cjk += 1,
            _ if is_cjk(c) => han += 1,
            _ if c.is_ascii_alphabetic() => latin += 1,
            _ => {}
        }
    }
    if other_cjk > 0 && other_cjk * 4 >= han {
        // Japanese or Korean: not Chinese; no templates of ours either.
        return None;
    }
    if han > 0 && han * 3 >= latin {
        Some("zh-CN")
    } else if latin >= 3 {
        Some("en")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_and_english_are_told_apart() {
        let table: &[(&str, Option<&str>)] = &[
            ("购买的扫地机器人开机无反应，使用时间一周", Some("zh-CN")),
            ("订单 SO-20261120-0042 扣款两次", Some("zh-CN")),
            ("我的 iPhone 充不上电", Some("zh-CN")),
            ("My order has not arrived two weeks after dispatch.", Some("en")),
            ("The 扫地机器人 I bought does not power on at all", Some("en")),
            ("12345 !!!", None),
            ("ok", None),
            ("注文した商品が届きません", None),
            ("주문한 상품이 도착하지 않았습니다", None),
        ];
        for (text, expected) in table {
            assert_eq!(detect(&[text]), *expected, "{text:?}");
        }
        assert_eq!(detect(&["Broken kettle", "电热水壶底座漏电，手碰到有麻的感觉"]), Some("zh-CN"));
    }
}
