//! A field's value (anything `Serialize`) handed to [`StructuredRecords`] as the
//! flattened fields PutDatas would read from its JSON: objects become dotted names,
//! scalars become fields, `null` is no field, arrays are refused.

use std::fmt;

use serde::ser::{self, Serialize, Serializer};

use super::super::record_reader::Scalar;
use super::super::{check_field_name, invalid};
use super::{StructuredRecords, MAX_NESTING_DEPTH};

/// Stops a serialization; the reason is in the writer's `refused`.
#[derive(Debug)]
pub(super) struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("the field was refused")
    }
}

impl std::error::Error for Stop {}

impl ser::Error for Stop {
    fn custom<T: fmt::Display>(_: T) -> Stop {
        Stop
    }
}

/// One field's value; the writer's `current.name` holds its dotted name, which is
/// cut back to `prefix_len` once the value is written.
pub(super) struct FieldSerializer<'w> {
    pub(super) writer: &'w mut StructuredRecords,
    pub(super) prefix_len: usize,
    pub(super) depth: usize,
}

impl<'w> FieldSerializer<'w> {
    /// Checks the name before its value, whatever the value is (as PutDatas does).
    fn check_name(&mut self) -> Result<(), Stop> {
        let writer = &mut *self.writer;
        let name = &writer.current.name;
        match check_field_name(name, || writer.field_path(), &writer.limits) {
            Ok(()) => Ok(()),
            Err(error) => Err(writer.refuse(error)),
        }
    }

    fn scalar(mut self, value: Scalar<'_>) -> Result<(), Stop> {
        self.check_name()?;
        self.writer.insert(value)?;
        self.writer.current.name.truncate(self.prefix_len);
        Ok(())
    }

    fn skip(self) -> Result<(), Stop> {
        self.writer.current.name.truncate(self.prefix_len);
        Ok(())
    }

    fn array(mut self) -> Result<Impossible, Stop> {
        self.check_name()?;
        let path = self.writer.field_path();
        Err(self.writer.refuse(invalid(
            &path,
            "arrays are not supported; send a string, number, bool or object",
        )))
    }

    fn object(mut self) -> Result<ObjectSerializer<'w>, Stop> {
        self.check_name()?;
        if self.depth >= MAX_NESTING_DEPTH {
            let path = self.writer.field_path();
            return Err(self.writer.refuse(invalid(
                &path,
                &format!("objects nested deeper than {MAX_NESTING_DEPTH} levels are not accepted"),
            )));
        }
        let own_len = self.writer.current.name.len();
        Ok(ObjectSerializer {
            writer: self.writer,
            prefix_len: self.prefix_len,
            own_len,
            depth: self.depth,
        })
    }
}

/// The serializer of a value no field can hold (arrays); it is refused first.
type Impossible = ser::Impossible<(), Stop>;

impl<'w> Serializer for FieldSerializer<'w> {
    type Ok = ();
    type Error = Stop;
    type SerializeSeq = Impossible;
    type SerializeTuple = Impossible;
    type SerializeTupleStruct = Impossible;
    type SerializeTupleVariant = Impossible;
    type SerializeMap = ObjectSerializer<'w>;
    type SerializeStruct = ObjectSerializer<'w>;
    type SerializeStructVariant = ObjectSerializer<'w>;

    fn serialize_bool(self, value: bool) -> Result<(), Stop> {
        self.scalar(Scalar::Bool(value))
    }
    fn serialize_i8(self, value: i8) -> Result<(), Stop> {
        self.serialize_i64(value.into())
    }
    fn serialize_i16(self, value: i16) -> Result<(), Stop> {
        self.serialize_i64(value.into())
    }
    fn serialize_i32(self, value: i32) -> Result<(), Stop> {
        self.serialize_i64(value.into())
    }
    fn serialize_i64(self, value: i64) -> Result<(), Stop> {
        self.scalar(Scalar::Long(value))
    }
    fn serialize_u8(self, value: u8) -> Result<(), Stop> {
        self.serialize_i64(value.into())
    }
    fn serialize_u16(self, value: u16) -> Result<(), Stop> {
        self.serialize_i64(value.into())
    }
    fn serialize_u32(self, value: u32) -> Result<(), Stop> {
        self.serialize_i64(value.into())
    }
    fn serialize_u64(self, value: u64) -> Result<(), Stop> {
        // As PutDatas reads a number too large for an i64.
        match i64::try_from(value) {
            Ok(value) => self.serialize_i64(value),
            Err(_) => self.serialize_f64(value as f64),
        }
    }
    fn serialize_f32(self, value: f32) -> Result<(), Stop> {
        self.serialize_f64(value.into())
    }
    fn serialize_f64(self, value: f64) -> Result<(), Stop> {
        // JSON has no NaN or infinity: a JSON writer puts `null` there.
        if !value.is_finite() {
            return self.skip();
        }
        self.scalar(Scalar::Double(value))
    }
    fn serialize_char(self, value: char) -> Result<(), Stop> {
        self.scalar(Scalar::Text(value.encode_utf8(&mut [0; 4])))
    }
    fn serialize_str(self, value: &str) -> Result<(), Stop> {
        self.scalar(Scalar::Text(value))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Stop> {
        // JSON writes bytes as an array of numbers.
        self.array().map(drop)
    }
    fn serialize_none(self) -> Result<(), Stop> {
        self.skip()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Stop> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Stop> {
        self.skip()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Stop> {
        self.skip()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Stop> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        let mut object = self.object()?;
        ser::SerializeStruct::serialize_field(&mut object, variant, value)?;
        ser::SerializeStruct::end(object)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Impossible, Stop> {
        self.array()
    }
    fn serialize_tuple(self, _: usize) -> Result<Impossible, Stop> {
        self.array()
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Impossible, Stop> {
        self.array()
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Impossible, Stop> {
        self.array()
    }
    fn serialize_map(self, _: Option<usize>) -> Result<ObjectSerializer<'w>, Stop> {
        self.object()
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<ObjectSerializer<'w>, Stop> {
        self.object()
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<ObjectSerializer<'w>, Stop> {
        // JSON writes `{"variant": {...}}`.
        let mut object = self.object()?;
        object.writer.current.name.push('.');
        object.writer.current.name.push_str(variant);
        object.own_len = object.writer.current.name.len();
        Ok(object)
    }
}

/// An object's members, each flattened under the object's name.
pub(super) struct ObjectSerializer<'w> {
    writer: &'w mut StructuredRecords,
    /// The name length to cut back to once the object is written.
    prefix_len: usize,
    /// The object's own dotted name's length.
    own_len: usize,
    depth: usize,
}

impl ObjectSerializer<'_> {
    fn member<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        value.serialize(FieldSerializer {
            writer: &mut *self.writer,
            prefix_len: self.own_len,
            depth: self.depth + 1,
        })
    }

    fn finish(self) -> Result<(), Stop> {
        self.writer.current.name.truncate(self.prefix_len);
        Ok(())
    }
}

impl ser::SerializeMap for ObjectSerializer<'_> {
    type Ok = ();
    type Error = Stop;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Stop> {
        let name = &mut self.writer.current.name;
        name.truncate(self.own_len);
        name.push('.');
        key.serialize(KeySerializer(name))
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        self.member(value)
    }

    fn end(self) -> Result<(), Stop> {
        self.finish()
    }
}

impl ser::SerializeStruct for ObjectSerializer<'_> {
    type Ok = ();
    type Error = Stop;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        let name = &mut self.writer.current.name;
        name.truncate(self.own_len);
        name.push('.');
        name.push_str(key);
        self.member(value)
    }

    fn end(self) -> Result<(), Stop> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for ObjectSerializer<'_> {
    type Ok = ();
    type Error = Stop;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }

    fn end(self) -> Result<(), Stop> {
        self.finish()
    }
}

/// A map key appended to the dotted name: text, or what JSON turns into text
/// (numbers, booleans, characters).
pub(super) struct KeySerializer<'n>(&'n mut String);

impl KeySerializer<'_> {
    fn text(self, text: &str) -> Result<(), Stop> {
        self.0.push_str(text);
        Ok(())
    }
}

impl Serializer for KeySerializer<'_> {
    type Ok = ();
    type Error = Stop;
    type SerializeSeq = Impossible;
    type SerializeTuple = Impossible;
    type SerializeTupleStruct = Impossible;
    type SerializeTupleVariant = Impossible;
    type SerializeMap = Impossible;
    type SerializeStruct = Impossible;
    type SerializeStructVariant = Impossible;

    fn serialize_bool(self, value: bool) -> Result<(), Stop> {
        self.text(if value { "true" } else { "false" })
    }
    fn serialize_i8(self, value: i8) -> Result<(), Stop> {
        self.serialize_i64(value.into())
    }
    fn serialize_i16(self, value: i16) -> Result<(), Stop> {
        self.serialize_i64(value.into())
    }
    fn serialize_i32(self, value: i32) -> Result<(), Stop> {
        self.serialize_i64(value.into())
    }
    fn serialize_i64(self, value: i64) -> Result<(), Stop> {
        self.text(itoa::Buffer::new().format(value))
    }
    fn serialize_u8(self, value: u8) -> Result<(), Stop> {
        self.serialize_u64(value.into())
    }
    fn serialize_u16(self, value: u16) -> Result<(), Stop> {
        self.serialize_u64(value.into())
    }
    fn serialize_u32(self, value: u32) -> Result<(), Stop> {
        self.serialize_u64(value.into())
    }
    fn serialize_u64(self, value: u64) -> Result<(), Stop> {
        self.text(itoa::Buffer::new().format(value))
    }
    fn serialize_f32(self, _: f32) -> Result<(), Stop> {
        Err(Stop)
    }
    fn serialize_f64(self, _: f64) -> Result<(), Stop> {
        Err(Stop)
    }
    fn serialize_char(self, value: char) -> Result<(), Stop> {
        self.text(value.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, value: &str) -> Result<(), Stop> {
        self.text(value)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Stop> {
        Err(Stop)
    }
    fn serialize_none(self) -> Result<(), Stop> {
        Err(Stop)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Stop> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Stop> {
        Err(Stop)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Stop> {
        Err(Stop)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Stop> {
        self.text(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Stop> {
        Err(Stop)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Impossible, Stop> {
        Err(Stop)
    }
    fn serialize_tuple(self, _: usize) -> Result<Impossible, Stop> {
        Err(Stop)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Impossible, Stop> {
        Err(Stop)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Impossible, Stop> {
        Err(Stop)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Impossible, Stop> {
        Err(Stop)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Impossible, Stop> {
        Err(Stop)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Impossible, Stop> {
        Err(Stop)
    }
}
