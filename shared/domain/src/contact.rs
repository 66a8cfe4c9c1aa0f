//! Customer contacts: parsed into types that only hold valid values, and
//! that print masked so they cannot leak into logs by accident.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// What kind of phone number it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhoneKind {
    /// Mainland mobile: 1[3-9] + 9 digits.
    Mobile,
    /// 400 / 800 service number (10 digits).
    Service,
    /// Landline with area code: 0 + 2-3 digit area + 7-8 digit number.
    Landline,
    /// Outside the mainland, in E.164 form (+ country code).
    International,
}

/// A valid phone number, normalised to digits (E.164 keeps its `+`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber {
    digits: String,
    kind: PhoneKind,
}

static MOBILE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^1[3-9]\d{9}$").expect("static regex"));
static SERVICE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[48]00\d{7}$").expect("static regex"));
static LANDLINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^0(10|2\d|[3-9]\d{2})\d{7,8}$").expect("static regex"));
static E164: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\+[1-9]\d{7,14}$").expect("static regex"));
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
        .expect("static regex")
});

impl PhoneNumber {
    /// Parses a phone number as people type it: spaces, dashes, dots and
    /// brackets are ignored; a +86 / 0086 prefix is dropped for mainland
    /// numbers. Extensions are not accepted.
    pub fn parse(input: &str) -> Result<Self, String> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err("phone number is empty".into());
        }
        let mut cleaned = String::with_capacity(trimmed.len());
        for (i, ch) in trimmed.chars().enumerate() {
            match ch {
                '0'..='9' => cleaned.push(ch),
                '+' if i == 0 => cleaned.push(ch),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(format!("phone number contains {ch:?}")),
            }
        }
        let national =
            cleaned.strip_prefix("+86").or_else(|| cleaned.strip_prefix("0086")).unwrap_or(&cleaned).to_string();
        let kind = if MOBILE.is_match(&national) {
            PhoneKind::Mobile
        } else if SERVICE.is_match(&national) {
            PhoneKind::Service
        } else if LANDLINE.is_match(&national) {
            PhoneKind::Landline
        } else if E164.is_match(&cleaned) && !cleaned.starts_with("+86") {
            return Ok(Self { digits: cleaned, kind: PhoneKind::International });
        } else {
            return Err(
                "not a valid phone number (mainland mobile 1[3-9]xxxxxxxxx, 400/800 number, landline with area code, or +country number)"
                    .into(),
            );
        };
        Ok(Self { digits: national, kind })
    }

    pub fn kind(&self) -> PhoneKind {
        self.kind
    }

    /// The normalised number, in clear. Handle with care.
    pub fn expose(&self) -> &str {
        &self.digits
    }

    /// Display form: first 3 and last 4 digits kept, e.g. `138****5678`.
    pub fn masked(&self) -> String {
        crate::mask::mask_digits(&self.digits)
    }

    /// Whether SMS can reach it.
    pub fn can_receive_sms(&self) -> bool {
        matches!(self.kind, PhoneKind::Mobile | PhoneKind::International)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

/// A syntactically valid email address (domain lower-cased).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, String> {
        let trimmed = input.trim();
        if trimmed.len() > 254 {
            return Err("email address is longer than 254 characters".into());
        }
        if !EMAIL.is_match(trimmed) {
            return Err("not a valid email address (expected name@domain.tld)".into());
        }
        let (local, domain) = trimmed.rsplit_once('@').expect("regex guarantees an @");
        if local.len() > 64 {
            return Err("the part before @ is longer than 64 characters".into());
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    /// The address, in clear. Handle with care.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Display form: `z***@example.com`.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').expect("valid address has an @");
        let first: String = local.chars().take(1).collect();
        format!("{first}***@{domain}")
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.masked())
    }
}

/// A parsed contact value of any kind.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum ContactValue {
    Phone(PhoneNumber),
    Email(EmailAddress),
    /// App account id or WeChat OpenID: opaque, not validated beyond shape.
    AppAccount(String),
    Wechat(String),
}

impl ContactValue {
    /// Parses `value` as the given wire kind; the error says what is wrong
    /// without echoing the value.
    pub fn parse(kind: kesu_proto::v1::ContactKind, value: &str) -> Result<Self, String> {
        use kesu_proto::v1::ContactKind as K;
        match kind {
            K::Phone => PhoneNumber::parse(value).map(ContactValue::Phone),
            K::Email => EmailAddress::parse(value).map(ContactValue::Email),
            K::AppAccount => opaque_id(value, 128).map(ContactValue::AppAccount),
            K::Wechat => opaque_id(value, 128).map(ContactValue::Wechat),
            K::Unspecified => Err("contact kind is unspecified".into()),
        }
    }

    /// The value in clear. Handle with care.
    pub fn expose(&self) -> &str {
        match self {
            ContactValue::Phone(p) => p.expose(),
            ContactValue::Email(e) => e.expose(),
            ContactValue::AppAccount(s) | ContactValue::Wechat(s) => s,
        }
    }

    pub fn masked(&self) -> String {
        match self {
            ContactValue::Phone(p) => p.masked(),
            ContactValue::Email(e) => e.masked(),
            ContactValue::AppAccount(s) | ContactValue::Wechat(s) => crate::mask::mask_opaque(s),
        }
    }

    /// A stable, normalised identity string for pseudonyms ("phone:138…").
    pub fn identity(&self) -> String {
        match self {
            ContactValue::Phone(p) => format!("phone:{}", p.expose()),
            ContactValue::Email(e) => format!("email:{}", e.expose().to_lowercase()),
            ContactValue::AppAccount(s) => format!("app:{s}"),
            ContactValue::Wechat(s) => format!("wechat:{s}"),
        }
    }
}

impl fmt::Debug for ContactValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContactValue({})", self.masked())
    }
}

fn opaque_id(value: &str, max: usize) -> Result<String, String> {
    let v = value.trim();
    if v.is_empty() {
        return Err("account id is empty".into());
    }
    if v.len() > max {
        return Err(format!("account id is longer than {max} characters"));
    }
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("account id contains spaces or control characters".into());
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainland_mobile_numbers_parse_and_mask() {
        let p = PhoneNumber::parse("+86 138-1234-5678").unwrap();
        assert_eq!(p.expose(), "13812345678");
        assert_eq!(p.kind(), PhoneKind::Mobile);
        assert_eq!(p.masked(), "138****5678");
        assert_eq!(format!("{p:?}"), "PhoneNumber(138****5678)");
    }

    #[test]
    fn service_and_landline_numbers() {
        assert_eq!(PhoneNumber::parse("400-123-4567").unwrap().kind(), PhoneKind::Service);
        assert_eq!(PhoneNumber::parse("800 123 4567").unwrap().kind(), PhoneKind::Service);
        assert_eq!(PhoneNumber::parse("010-12345678").unwrap().kind(), PhoneKind::Landline);
        assert_eq!(PhoneNumber::parse("(0755) 1234567").unwrap().kind(), PhoneKind::Landline);
        assert_eq!(PhoneNumber::parse("+44 20 7946 0958").unwrap().kind(), PhoneKind::International);
    }

    #[test]
    fn bad_phone_numbers_are_refused() {
        for bad in ["", "12812345678", "1381234567", "138123456789", "abc", "138 1234 567x", "+86 123"] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn emails_parse_and_mask() {
        let e = EmailAddress::parse(" Zhang.San@Example.COM ").unwrap();
        assert_eq!(e.expose(), "Zhang.San@example.com");
        assert_eq!(e.masked(), "Z***@example.com");
        for bad in ["", "no-at", "a@b", "a@@b.com", "a b@c.com", "a@-b.com"] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
