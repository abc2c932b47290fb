//! The ids of alert objects in the API: the store's number behind a prefix that
//! says what it names (`al_12` a rule, `ch_3` a channel, `si_7` a silence), so an id
//! pasted into the wrong field is refused rather than misread.

use logpool_api::ApiError;
use logpool_engines::metadata::AlertObjectKind;

/// The prefix of a kind's ids.
pub fn prefix(kind: AlertObjectKind) -> &'static str {
    match kind {
        AlertObjectKind::Rule => "al_",
        AlertObjectKind::Channel => "ch_",
        AlertObjectKind::Silence => "si_",
    }
}

/// The API id of a stored object.
pub fn format_id(kind: AlertObjectKind, id: i64) -> String {
    format!("{}{id}", prefix(kind))
}

/// The stored id an API id names, `None` when it names no object of this kind.
pub fn parse_id(kind: AlertObjectKind, text: &str) -> Option<i64> {
    text.strip_prefix(prefix(kind))?
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
}

/// The stored id of a path's id; one that names nothing is a 404.
pub fn path_id(kind: AlertObjectKind, text: &str) -> Result<i64, ApiError> {
    parse_id(kind, text)
        .ok_or_else(|| ApiError::not_found(format!("{} `{text}` not found", kind.label())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_ids_round_trip_and_refuse_another_kind() {
        let id = format_id(AlertObjectKind::Rule, 42);
        assert_eq!(id, "al_42");
        assert_eq!(parse_id(AlertObjectKind::Rule, &id), Some(42));
        assert_eq!(parse_id(AlertObjectKind::Channel, &id), None);
        assert_eq!(parse_id(AlertObjectKind::Rule, "al_x"), None);
        assert_eq!(parse_id(AlertObjectKind::Rule, "42"), None);
        assert_eq!(parse_id(AlertObjectKind::Rule, "al_-1"), None);
    }
}
