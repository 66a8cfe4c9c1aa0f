//! Keyset paging for list RPCs: the page token is the `(time, id)` of the
//! last row returned, opaque to clients.

use kesu_proto::v1::PageRequest;
use tonic::Status;

/// The page size asked for, `default` when unset, at most `max`.
pub fn page_size(page: Option<&PageRequest>, default: u32, max: u32) -> i64 {
    i64::from(page.map(|p| p.page_size).filter(|s| *s > 0).unwrap_or(default).min(max))
}

/// The cursor in a page token, `None` for the first page.
pub fn cursor(page: Option<&PageRequest>) -> Result<Option<(i64, String)>, Status> {
    let Some(token) = page.map(|p| p.page_token.as_str()).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    token
        .split_once(':')
        .and_then(|(at, id)| Some((at.parse().ok()?, id.to_string())))
        .map(Some)
        .ok_or_else(|| Status::invalid_argument("page.page_token is not a token this service issued"))
}

/// The token of the next page: empty when this page was not full.
pub fn next_token<T>(rows: &[(i64, String, T)], size: i64) -> String {
    match rows.last() {
        Some((at, id, _)) if rows.len() as i64 == size => format!("{at}:{id}"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let rows = vec![(5, "a".to_string(), ()), (3, "b".to_string(), ())];
        let token = next_token(&rows, 2);
        assert_eq!(token, "3:b");
        let page = PageRequest { page_size: 2, page_token: token };
        assert_eq!(cursor(Some(&page)).unwrap(), Some((3, "b".into())));
        assert_eq!(next_token(&rows, 3), "");
        assert!(cursor(Some(&PageRequest { page_size: 0, page_token: "zzz".into() })).is_err());
        assert_eq!(page_size(None, 50, 500), 50);
        assert_eq!(page_size(Some(&PageRequest { page_size: 9999, page_token: String::new() }), 50, 500), 500);
    }
}
