//! Personal data typed into free text (description, title, the customer's
//! request, custom fields).
//!
//! - Phone numbers (mainland mobiles `1[3-9]` + 9 digits, with or without
//!   `+86`, spaces or hyphens; landlines starting with `0`; 400/800
//!   numbers) keep their first 3 and last 4 digits: `138****5678`.
//! - Emails keep the first character and the domain: `a***@example.com`.
//! - National id numbers (18 digits with a valid check digit, or 15
//!   digits with a plausible birth date) are removed — `[ID removed]` —
//!   before anything is stored or sealed: they are never kept.
//!
//! The masked text is what leaves intake for display and analytics; the
//! text as typed (national ids removed) travels only sealed
//! (`Feedback.sealed_description`). Other digit runs (order numbers,
//! amounts) are left alone.

use std::sync::LazyLock;

use kesu_proto::v1::RawFeedback;
use regex::Regex;

/// What replaces a national id number.
pub const ID_REMOVED: &str = "[ID removed]";

/// National-id-like digit runs, then phone numbers (mobile with optional
/// `+86`, 400/800, landline), with single spaces or hyphens between groups.
/// A match counts only if no digit touches it on either side.
static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?P<id>[0-9]{17}[0-9Xx]|[0-9]{15})",
        r"|(?P<phone>(?:\+?86[ -]?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2}",
        r"|[48]00[ -]?[0-9]{3}[ -]?[0-9]{4}",
        r"|0[0-9]{2,3}[ -]?[0-9]{7,8})",
    ))
    .expect("a valid pattern")
});

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}").expect("a valid pattern")
});

/// Replaces each national id (and, with `mask_phones`, each phone number)
/// found in `text`.
fn replace_numbers(text: &str, mask_phones: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for c in NUMBER.captures_iter(text) {
        let m = c.get(0).expect("group 0 is the match");
        let touches_digit = text[..m.start()].chars().next_back().is_some_and(|ch| ch.is_ascii_digit())
            || text[m.end()..].chars().next().is_some_and(|ch| ch.is_ascii_digit() || ch == 'X' || ch == 'x');
        if touches_digit {
            continue;
        }
        let replacement = if c.name("id").is_some() {
            if !is_national_id(m.as_str()) {
                continue;
            }
            ID_REMOVED.to_string()
        } else if mask_phones {
            mask_phone(m.as_str())
        } else {
            continue;
        };
        out.push_str(&text[last..m.start()]);
        out.push_str(&replacement);
        last = m.end();
    }
    out.push_str(&text[last..]);
    out
}

/// An 18-digit resident id with a valid ISO 7064 MOD 11-2 check digit, or
/// a 15-digit one with a plausible birth date.
pub fn is_national_id(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() == 18 && b[..17].iter().all(u8::is_ascii_digit) {
        const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        const CHECK: &[u8; 11] = b"10X98765432";
        let sum: u32 = b[..17].iter().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
        return b[17].to_ascii_uppercase() == CHECK[(sum % 11) as usize] && plausible_date(&s[6..14]);
    }
    if b.len() == 15 && b.iter().all(u8::is_ascii_digit) {
        return plausible_date(&format!("19{}", &s[6..12]));
    }
    false
}

fn plausible_date(yyyymmdd: &str) -> bool {
    chrono::NaiveDate::parse_from_str(yyyymmdd, "%Y%m%d")
        .is_ok_and(|d| (1900..=2100).contains(&chrono::Datelike::year(&d)))
}

/// The digits of `run` masked as a contact is: first 3 and last 4 kept.
fn mask_phone(run: &str) -> String {
    let digits: String = run.chars().filter(char::is_ascii_digit).collect();
    let digits = if run.trim_start().starts_with('+') || (digits.len() == 13 && digits.starts_with("861")) {
        digits.trim_start_matches("86").to_string()
    } else {
        digits
    };
    kesu_domain::mask::mask_digits(&digits)
}

fn mask_email(email: &str) -> String {
    let (local, domain) = email.split_once('@').unwrap_or((email, ""));
    let first: String = local.chars().take(1).collect();
    format!("{first}***@{domain}")
}

/// `text` without national id numbers: what may be kept (sealed).
pub fn without_national_ids(text: &str) -> String {
    replace_numbers(text, false)
}

/// `text` for display: phones and emails masked, national ids removed.
pub fn masked(text: &str) -> String {
    let text = EMAIL.replace_all(text, |c: &regex::Captures<'_>| mask_email(&c[0]));
    replace_numbers(&text, true)
}

/// Whether any free-text field of a submission holds a national id number.
pub fn contains_national_id(raw: &RawFeedback) -> bool {
    let has = |text: &str| text.bytes().filter(u8::is_ascii_digit).count() >= 15 && without_national_ids(text) != text;
    let request = raw.customer_request.as_ref().map(|r| r.detail.as_str()).unwrap_or_default();
    let customer = raw.customer.as_ref();
    [raw.description.as_str(), &raw.title, &raw.product, &raw.order_number, &raw.region, request]
        .into_iter()
        .chain(customer.iter().flat_map(|c| [c.name.as_str(), &c.company, &c.customer_number]))
        .chain(raw.custom_fields.values().map(String::as_str))
        .any(has)
}

/// Removes national id numbers from every free-text field of a submission;
/// `true` if there were any (the original bytes must then not be kept).
pub fn strip_national_ids(raw: &mut RawFeedback) -> bool {
    let mut changed = false;
    let mut strip = |s: &mut String| {
        let clean = without_national_ids(s);
        if clean != *s {
            *s = clean;
            changed = true;
        }
    };
    strip(&mut raw.description);
    strip(&mut raw.title);
    strip(&mut raw.product);
    strip(&mut raw.order_number);
    strip(&mut raw.region);
    if let Some(r) = raw.customer_request.as_mut() {
        strip(&mut r.detail);
    }
    if let Some(c) = raw.customer.as_mut() {
        strip(&mut c.name);
        strip(&mut c.company);
        strip(&mut c.customer_number);
    }
    for v in raw.custom_fields.values_mut() {
        strip(v);
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn phones_and_emails_are_masked_national_ids_removed_the_rest_kept() {
        let table = [
            ("请打电话13812345678联系我", "请打电话138****5678联系我"),
            ("call +86 138 1234 5678 please", "call 138****5678 please"),
            ("手机：138-1234-5678。", "手机：138****5678。"),
            ("座机 010-62345678 转 8", "座机 010****5678 转 8"),
            ("热线4008123456", "热线400****3456"),
            ("mail me at alice.chen@example.com.", "mail me at a***@example.com."),
            ("身份证号11010519491231002X，请核实", "身份证号[ID removed]，请核实"),
            ("id 110105194912310021 ok", "id 110105194912310021 ok"), // wrong check digit: not an id
            ("订单 SO-20261120-0042 金额 299 元", "订单 SO-20261120-0042 金额 299 元"),
            ("order 2026112000420042 is late", "order 2026112000420042 is late"),
        ];
        for (text, expected) in table {
            assert_eq!(masked(text), expected, "{text:?}");
        }
        assert_eq!(without_national_ids("身份证号11010519491231002X"), "身份证号[ID removed]");
        assert_eq!(without_national_ids("电话13812345678"), "电话13812345678", "phones stay in the sealed text");
    }

    #[test]
    fn national_ids_are_stripped_from_every_free_text_field() {
        let mut raw = RawFeedback {
            description: "我的身份证11010519491231002X".into(),
            custom_fields: [("note".to_string(), "ID 11010519491231002x".to_string())].into(),
            ..Default::default()
        };
        assert!(contains_national_id(&raw));
        assert!(strip_national_ids(&mut raw));
        assert!(!contains_national_id(&raw));
        assert!(!raw.description.contains("1101051949"));
        assert!(!raw.custom_fields["note"].contains("1101051949"));
        assert!(!strip_national_ids(&mut raw), "nothing left to strip");
    }

    proptest! {
        /// No digit of a phone beyond the first 3 and last 4 is left in the
        /// masked text, whatever surrounds it and however it is spaced.
        #[test]
        fn no_masked_phone_digit_leaks(
            second in 3u8..=9,
            rest in proptest::collection::vec(0u8..=9, 9),
            separator in prop_oneof![Just(""), Just(" "), Just("-")],
            plus in any::<bool>(),
            before in "[a-zA-Z\\p{Han}，。 ]{0,12}",
            after in "[a-zA-Z\\p{Han}，。 ]{0,12}",
        ) {
            let digits: String = std::iter::once(1u8).chain(std::iter::once(second)).chain(rest)
                .map(|d| char::from(b'0' + d)).collect();
            let spaced = format!("{}{separator}{}{separator}{}", &digits[..3], &digits[3..7], &digits[7..]);
            let phone = if plus { format!("+86 {spaced}") } else { spaced };
            let text = format!("{before} {phone} {after}");
            let out = masked(&text);
            let left: String = out.chars().filter(char::is_ascii_digit).collect();
            prop_assert_eq!(left, format!("{}{}", &digits[..3], &digits[7..]), "{:?} -> {:?}", text, out);
        }
    }
}
