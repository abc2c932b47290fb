//! A point in time as a request gives it.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// A time as a request gives it: epoch milliseconds as a JSON number, or text
/// (`now`, a relative offset like `-15m` or `now-2h`, RFC 3339, or epoch
/// milliseconds as digits). Query strings always give text; JSON bodies may give
/// either, so the same value works in both places.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum TimeParam {
    /// Epoch milliseconds.
    Millis(i64),
    /// Any text form, resolved by the server against its clock.
    Text(String),
}

impl TimeParam {
    /// The time as text, the form the server parses: a number becomes its digits,
    /// which the text form reads as epoch milliseconds too.
    pub fn as_text(&self) -> Cow<'_, str> {
        match self {
            TimeParam::Millis(ms) => Cow::Owned(ms.to_string()),
            TimeParam::Text(text) => Cow::Borrowed(text),
        }
    }
}

impl From<&str> for TimeParam {
    fn from(text: &str) -> Self {
        TimeParam::Text(text.to_string())
    }
}

impl From<String> for TimeParam {
    fn from(text: String) -> Self {
        TimeParam::Text(text)
    }
}

impl From<i64> for TimeParam {
    fn from(ms: i64) -> Self {
        TimeParam::Millis(ms)
    }
}

const EXPECTED: &str =
    "a time: epoch milliseconds (a whole number) or text (RFC 3339, `now`, or relative like `-15m`)";

impl<'de> Deserialize<'de> for TimeParam {
    // By hand rather than `untagged`, so that a wrong value's error says what a time
    // may be instead of "did not match any variant".
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimeVisitor;

        impl Visitor<'_> for TimeVisitor {
            type Value = TimeParam;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str(EXPECTED)
            }

            fn visit_i64<E: de::Error>(self, ms: i64) -> Result<TimeParam, E> {
                Ok(TimeParam::Millis(ms))
            }

            fn visit_u64<E: de::Error>(self, ms: u64) -> Result<TimeParam, E> {
                i64::try_from(ms)
                    .map(TimeParam::Millis)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(ms), &self))
            }

            fn visit_f64<E: de::Error>(self, value: f64) -> Result<TimeParam, E> {
                Err(E::invalid_value(de::Unexpected::Float(value), &self))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<TimeParam, E> {
                Ok(TimeParam::Text(text.to_string()))
            }

            fn visit_string<E: de::Error>(self, text: String) -> Result<TimeParam, E> {
                Ok(TimeParam::Text(text))
            }
        }

        deserializer.deserialize_any(TimeVisitor)
    }
}

impl utoipa::PartialSchema for TimeParam {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::Int64,
                    )))
                    .description(Some("epoch milliseconds")),
            )
            .item(ObjectBuilder::new().schema_type(Type::String).description(Some(
                "RFC 3339, `now`, relative like `-15m` or `now-2h`, or epoch milliseconds as digits",
            )))
            .description(Some("A point in time"))
            .into()
    }
}

impl utoipa::ToSchema for TimeParam {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_epoch_millis_and_text_stays_text() {
        let number: TimeParam = serde_json::from_str("1796610735412").expect("number");
        assert_eq!(number, TimeParam::Millis(1_796_610_735_412));
        assert_eq!(number.as_text(), "1796610735412");
        let negative: TimeParam = serde_json::from_str("-5").expect("negative");
        assert_eq!(negative, TimeParam::Millis(-5));
        let text: TimeParam = serde_json::from_str("\"-15m\"").expect("text");
        assert_eq!(text, TimeParam::Text("-15m".into()));
        assert_eq!(text.as_text(), "-15m");
    }

    #[test]
    fn other_values_are_refused_saying_what_a_time_is() {
        for bad in ["1.5", "true", "[1]", "{}", "18446744073709551615"] {
            let error = serde_json::from_str::<TimeParam>(bad).expect_err(bad);
            assert!(
                error.to_string().contains("epoch milliseconds"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn answers_keep_the_form_they_were_given_in() {
        assert_eq!(
            serde_json::to_string(&TimeParam::Millis(7)).expect("json"),
            "7"
        );
        assert_eq!(
            serde_json::to_string(&TimeParam::from("now")).expect("json"),
            "\"now\""
        );
    }
}
