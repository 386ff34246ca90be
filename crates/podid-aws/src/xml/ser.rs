//! A serde [`Serializer`](serde::Serializer) for the query protocol's XML: a `Serialize` struct
//! becomes its members as elements, in field order, so a response shape is a typed struct and a
//! misspelled member name is a compile error rather than a silent wire break.
//!
//! The mapping is botocore's for query-protocol output (`botocore/parsers.py`, `QueryParser`):
//! * a struct field is `<Field>…</Field>` (name it with `#[serde(rename_all = "PascalCase")]`
//!   or `rename`); a nested struct nests;
//! * `None` writes nothing; `Some(v)` writes `v`;
//! * strings and chars are escaped text ([`escape_into`](super::escape_into)), integers decimal
//!   text, booleans `true`/`false`, a fieldless enum variant its (renamed) name;
//! * a sequence is one `<member>…</member>` per element inside its field's element, so an empty
//!   one is `<Field></Field>` (skip it with `skip_serializing_if` where the service omits it);
//! * a unit value is an empty element; at the top, a unit (struct) is an empty result.
//!
//! Refused with [`XmlError::Unsupported`], never a panic: maps (query maps are
//! `<entry><key>…`, which no podid shape uses), bytes (blobs would need base64), floats
//! (botocore's text form for them is not pinned here), tuples (serde's form of a fixed-size
//! array too: a list is a slice or a `Vec`) and enum variants with data.

use serde::Serialize;
use serde::ser::{self, Impossible};

use super::XmlWriter;

/// Why a value has no query-protocol XML form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// A serde shape the query protocol's XML does not express (or podid does not need).
    #[error("the query protocol's XML has no form for {0}")]
    Unsupported(&'static str),
    /// The value at the top is not a struct, so its members have no element names.
    #[error("a query-protocol result must be a struct, not {0}")]
    NotAStruct(&'static str),
    /// A `Serialize` implementation reported its own error.
    #[error("{0}")]
    Custom(String),
}

impl ser::Error for XmlError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Self::Custom(msg.to_string())
    }
}

/// Writes `value`'s members into `w` as elements (the value's own name is not written: the
/// caller has opened the element that holds them, e.g. `<GetRoleResult>`).
///
/// `value` must be a struct, a unit struct or `()` (no members), or a newtype or `Some` around
/// one. On an error `w` holds a partial document and should be discarded.
pub fn write_members<T: Serialize + ?Sized>(w: &mut XmlWriter, value: &T) -> Result<(), XmlError> {
    value.serialize(Root { w })
}

/// The name botocore gives each element of a list (`<Roles><member>…</member></Roles>`).
const MEMBER: &str = "member";

/// The top-level value: only a struct's members have names to write.
struct Root<'w> {
    w: &'w mut XmlWriter,
}

/// One value, written as the element `name`.
struct Element<'w> {
    w: &'w mut XmlWriter,
    name: &'static str,
}

/// A struct's fields, each an element; closes `close` (the struct's own element) at the end.
struct Members<'w> {
    w: &'w mut XmlWriter,
    close: Option<&'static str>,
}

/// A sequence's elements, each a `<member>`; closes the list's element at the end.
struct List<'w> {
    w: &'w mut XmlWriter,
    name: &'static str,
}

/// The methods for the serde shapes the query protocol has no form for; `$refuse(what)` builds
/// the error, which differs at the top (not a struct) and inside one (unsupported).
macro_rules! refuse_unsupported {
    ($refuse:expr) => {
        fn serialize_f32(self, _: f32) -> Result<(), XmlError> {
            Err($refuse("a floating-point number"))
        }
        fn serialize_f64(self, _: f64) -> Result<(), XmlError> {
            Err($refuse("a floating-point number"))
        }
        fn serialize_bytes(self, _: &[u8]) -> Result<(), XmlError> {
            Err($refuse("bytes"))
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<(), XmlError> {
            Err($refuse("an enum variant with data"))
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, XmlError> {
            Err($refuse("a tuple"))
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, XmlError> {
            Err($refuse("a tuple struct"))
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, XmlError> {
            Err($refuse("an enum variant with data"))
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, XmlError> {
            Err($refuse("a map"))
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, XmlError> {
            Err($refuse("an enum variant with data"))
        }
    };
}

/// Every integer method, each handing its value to the context's own `integer`.
macro_rules! integers {
    () => {
        integers!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64);
        integers!(serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32);
        integers!(serialize_u64: u64, serialize_u128: u128);
    };
    ($($method:ident: $ty:ty),*) => {
        $(
            fn $method(self, v: $ty) -> Result<(), XmlError> {
                self.integer(v)
            }
        )*
    };
}

impl<'w> ser::Serializer for Element<'w> {
    type Ok = ();
    type Error = XmlError;
    type SerializeSeq = List<'w>;
    type SerializeTuple = Impossible<(), XmlError>;
    type SerializeTupleStruct = Impossible<(), XmlError>;
    type SerializeTupleVariant = Impossible<(), XmlError>;
    type SerializeMap = Impossible<(), XmlError>;
    type SerializeStruct = Members<'w>;
    type SerializeStructVariant = Impossible<(), XmlError>;

    refuse_unsupported!(XmlError::Unsupported);

    fn serialize_bool(self, v: bool) -> Result<(), XmlError> {
        self.w.leaf(self.name, if v { "true" } else { "false" });
        Ok(())
    }
    integers!();
    fn serialize_char(self, v: char) -> Result<(), XmlError> {
        self.w.leaf(self.name, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), XmlError> {
        self.w.leaf(self.name, v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), XmlError> {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), XmlError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), XmlError> {
        self.w.open(self.name);
        self.w.close(self.name);
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), XmlError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), XmlError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), XmlError> {
        value.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<List<'w>, XmlError> {
        self.w.open(self.name);
        Ok(List {
            w: self.w,
            name: self.name,
        })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Members<'w>, XmlError> {
        self.w.open(self.name);
        Ok(Members {
            w: self.w,
            close: Some(self.name),
        })
    }
}

impl Element<'_> {
    /// Decimal text; no escaping needed.
    fn integer(self, v: impl std::fmt::Display) -> Result<(), XmlError> {
        self.w.leaf_display(self.name, v);
        Ok(())
    }
}

impl<'w> ser::Serializer for Root<'w> {
    type Ok = ();
    type Error = XmlError;
    type SerializeSeq = Impossible<(), XmlError>;
    type SerializeTuple = Impossible<(), XmlError>;
    type SerializeTupleStruct = Impossible<(), XmlError>;
    type SerializeTupleVariant = Impossible<(), XmlError>;
    type SerializeMap = Impossible<(), XmlError>;
    type SerializeStruct = Members<'w>;
    type SerializeStructVariant = Impossible<(), XmlError>;

    refuse_unsupported!(XmlError::NotAStruct);

    fn serialize_bool(self, _: bool) -> Result<(), XmlError> {
        Err(XmlError::NotAStruct("a boolean"))
    }
    integers!();
    fn serialize_char(self, _: char) -> Result<(), XmlError> {
        Err(XmlError::NotAStruct("a string"))
    }
    fn serialize_str(self, _: &str) -> Result<(), XmlError> {
        Err(XmlError::NotAStruct("a string"))
    }
    fn serialize_none(self) -> Result<(), XmlError> {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), XmlError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), XmlError> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), XmlError> {
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), XmlError> {
        Err(XmlError::NotAStruct("an enum variant"))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), XmlError> {
        value.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, XmlError> {
        Err(XmlError::NotAStruct("a sequence"))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Members<'w>, XmlError> {
        Ok(Members {
            w: self.w,
            close: None,
        })
    }
}

impl Root<'_> {
    fn integer(self, _: impl std::fmt::Display) -> Result<(), XmlError> {
        Err(XmlError::NotAStruct("an integer"))
    }
}

impl ser::SerializeStruct for Members<'_> {
    type Ok = ();
    type Error = XmlError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), XmlError> {
        value.serialize(Element {
            w: &mut *self.w,
            name: key,
        })
    }

    fn end(self) -> Result<(), XmlError> {
        if let Some(name) = self.close {
            self.w.close(name);
        }
        Ok(())
    }
}

impl ser::SerializeSeq for List<'_> {
    type Ok = ();
    type Error = XmlError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), XmlError> {
        value.serialize(Element {
            w: &mut *self.w,
            name: MEMBER,
        })
    }

    fn end(self) -> Result<(), XmlError> {
        self.w.close(self.name);
        Ok(())
    }
}
