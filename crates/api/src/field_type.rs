//! Field types between the domain and the wire: the core crate and the wire crate
//! each have their own enum (neither depends on the other), and this is the one
//! place that maps them.

use logpool_core::routing::FieldType;
use logpool_wire::control as wire;

/// A type as the API writes it.
pub fn to_wire(field_type: FieldType) -> wire::FieldType {
    match field_type {
        FieldType::Text => wire::FieldType::Text,
        FieldType::Keyword => wire::FieldType::Keyword,
        FieldType::Long => wire::FieldType::Long,
        FieldType::Double => wire::FieldType::Double,
        FieldType::Bool => wire::FieldType::Bool,
        FieldType::Ip => wire::FieldType::Ip,
        FieldType::Timestamp => wire::FieldType::Timestamp,
    }
}

/// A type as a request gives it.
pub fn from_wire(field_type: wire::FieldType) -> FieldType {
    match field_type {
        wire::FieldType::Text => FieldType::Text,
        wire::FieldType::Keyword => FieldType::Keyword,
        wire::FieldType::Long => FieldType::Long,
        wire::FieldType::Double => FieldType::Double,
        wire::FieldType::Bool => FieldType::Bool,
        wire::FieldType::Ip => FieldType::Ip,
        wire::FieldType::Timestamp => FieldType::Timestamp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_every_type_maps_both_ways_under_one_name() {
        for field_type in FieldType::ALL {
            let wire = to_wire(field_type);
            assert_eq!(from_wire(wire), field_type);
            assert_eq!(
                serde_json::to_value(wire).expect("json"),
                serde_json::to_value(field_type).expect("json")
            );
            assert_eq!(serde_json::to_value(wire).expect("json"), field_type.name());
        }
    }
}
