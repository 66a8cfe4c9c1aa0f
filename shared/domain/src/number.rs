//! Feedback numbers: prefix + local date + daily serial, `FB202310010001`.
//! The serial has at least four digits and grows past 9999.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FeedbackNumber {
    prefix: String,
    date: NaiveDate,
    serial: u64,
}

impl FeedbackNumber {
    /// `prefix` must be 1–8 ASCII capital letters; `serial` starts at 1.
    pub fn new(prefix: &str, date: NaiveDate, serial: u64) -> Result<Self, String> {
        validate_prefix(prefix)?;
        if serial == 0 {
            return Err("serial starts at 1".into());
        }
        Ok(Self { prefix: prefix.to_string(), date, serial })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn date(&self) -> NaiveDate {
        self.date
    }

    pub fn serial(&self) -> u64 {
        self.serial
    }
}

/// Checks a configured number prefix.
pub fn validate_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() || prefix.len() > 8 || !prefix.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("number prefix must be 1-8 capital letters A-Z, got {prefix:?}"));
    }
    Ok(())
}

impl fmt::Display for FeedbackNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:04}", self.prefix, self.date.format("%Y%m%d"), self.serial)
    }
}

impl FromStr for FeedbackNumber {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let split = s.find(|c: char| c.is_ascii_digit()).ok_or("feedback number has no digits")?;
        let (prefix, digits) = s.split_at(split);
        if digits.len() < 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("feedback number must be a prefix, 8 date digits and a serial of at least 4 digits".into());
        }
        let date =
            NaiveDate::parse_from_str(&digits[..8], "%Y%m%d").map_err(|_| "feedback number has an invalid date")?;
        let serial: u64 = digits[8..].parse().map_err(|_| "feedback number serial is too large")?;
        Self::new(prefix, date, serial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_domain_example() {
        let n = FeedbackNumber::new("FB", NaiveDate::from_ymd_opt(2023, 10, 1).unwrap(), 1).unwrap();
        assert_eq!(n.to_string(), "FB202310010001");
        assert_eq!("FB202310010001".parse::<FeedbackNumber>().unwrap(), n);
    }

    #[test]
    fn serial_grows_past_four_digits() {
        let n = FeedbackNumber::new("CS", NaiveDate::from_ymd_opt(2024, 2, 29).unwrap(), 12345).unwrap();
        assert_eq!(n.to_string(), "CS2024022912345");
        assert_eq!(n.to_string().parse::<FeedbackNumber>().unwrap().serial(), 12345);
    }

    #[test]
    fn refuses_malformed_numbers() {
        for bad in ["", "FB", "FB2023100100", "fb202310010001", "FB202313010001", "202310010001", "FB20231001000X"] {
            assert!(bad.parse::<FeedbackNumber>().is_err(), "{bad:?}");
        }
        assert!(FeedbackNumber::new("FB", NaiveDate::from_ymd_opt(2023, 1, 1).unwrap(), 0).is_err());
    }
}
