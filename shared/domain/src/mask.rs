//! Display masks for personal data: what staff see outside the ticket
//! owner's view, and all that logs may ever show.

/// Keeps the first 3 and last 4 characters of a digit string:
/// `13812345678` → `138****5678`. Short values are fully masked.
pub fn mask_digits(digits: &str) -> String {
    let chars: Vec<char> = digits.chars().collect();
    if chars.len() < 8 {
        return "*".repeat(chars.len().max(4));
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

/// Masks an opaque account id: first 2 and last 2 characters kept.
pub fn mask_opaque(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= 6 {
        return "***".into();
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}***{tail}")
}

/// Masks a person's name: the first character (the family name in Chinese)
/// then `*`: `张三` → `张*`, `John Smith` → `J*`.
pub fn mask_person_name(name: &str) -> String {
    let name = name.trim();
    match name.chars().next() {
        Some(first) => format!("{first}*"),
        None => String::new(),
    }
}

const COMPANY_SUFFIXES: [&str; 12] = [
    "有限责任公司",
    "股份有限公司",
    "有限公司",
    "公司",
    "集团",
    "Co., Ltd.",
    "Co., Ltd",
    "Ltd.",
    "Ltd",
    "Inc.",
    "LLC",
    "GmbH",
];

/// Masks a company name, keeping a recognised legal-form suffix:
/// `北京某某科技有限公司` → `*公司`, `Acme Trading Ltd.` → `* Ltd.`.
pub fn mask_company_name(name: &str) -> String {
    let name = name.trim();
    if name.is_empty() {
        return String::new();
    }
    for suffix in COMPANY_SUFFIXES {
        if name.ends_with(suffix) && name.len() > suffix.len() {
            let shown = if suffix.contains("公司") { "公司" } else { suffix };
            let sep = if shown.is_ascii() { " " } else { "" };
            return format!("*{sep}{shown}");
        }
    }
    mask_person_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_domain_examples() {
        assert_eq!(mask_person_name("张三"), "张*");
        assert_eq!(mask_person_name(" 欧阳娜娜 "), "欧*");
        assert_eq!(mask_company_name("北京某某科技有限公司"), "*公司");
        assert_eq!(mask_company_name("Acme Trading Ltd."), "* Ltd.");
        assert_eq!(mask_company_name("Acme"), "A*");
        assert_eq!(mask_person_name(""), "");
    }

    #[test]
    fn digits_and_ids() {
        assert_eq!(mask_digits("13812345678"), "138****5678");
        assert_eq!(mask_digits("12345"), "*****");
        assert_eq!(mask_opaque("oAbCdEfGhIjK"), "oA***jK");
        assert_eq!(mask_opaque("short"), "***");
    }
}
