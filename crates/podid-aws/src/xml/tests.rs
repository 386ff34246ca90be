//! The writer, the serializer (one test per rule of the mapping, refusals first) and the envelope.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use super::*;

/// The members of `value`, as [`write_members`] writes them.
fn members<T: Serialize + ?Sized>(value: &T) -> Result<String, XmlError> {
    let mut w = XmlWriter::new();
    write_members(&mut w, value)?;
    Ok(w.finish())
}

/// One field holding `value`: `<V>…</V>`.
#[derive(Serialize)]
struct One<T> {
    #[serde(rename = "V")]
    v: T,
}

fn one<T: Serialize>(v: T) -> Result<String, XmlError> {
    members(&One { v })
}

/// Serializes as raw bytes (a botocore `blob`).
struct Blob;

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b"\x00\x01")
    }
}

/// A `Serialize` implementation that fails on its own.
struct Failing;

impl Serialize for Failing {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("clock unavailable"))
    }
}

#[derive(Serialize)]
enum WithData {
    Newtype(u8),
    Tuple(u8, u8),
    Struct { a: u8 },
}

#[test]
fn maps_bytes_floats_tuples_and_enum_data_are_refused() {
    let mut map = BTreeMap::new();
    map.insert("k", "v");
    assert_eq!(one(map), Err(XmlError::Unsupported("a map")));
    assert_eq!(one(Blob), Err(XmlError::Unsupported("bytes")));
    assert_eq!(
        one(1.5_f64),
        Err(XmlError::Unsupported("a floating-point number"))
    );
    assert_eq!(
        one(1.5_f32),
        Err(XmlError::Unsupported("a floating-point number"))
    );
    assert_eq!(one((1, 2)), Err(XmlError::Unsupported("a tuple")));
    // serde writes a fixed-size array as a tuple: lists are slices or `Vec`s.
    assert_eq!(one([1, 2]), Err(XmlError::Unsupported("a tuple")));
    for data in [
        WithData::Newtype(1),
        WithData::Tuple(1, 2),
        WithData::Struct { a: 1 },
    ] {
        assert_eq!(
            one(data),
            Err(XmlError::Unsupported("an enum variant with data"))
        );
    }
    // Deep inside a list of structs, too.
    assert_eq!(
        one(vec![One { v: vec![Blob] }]),
        Err(XmlError::Unsupported("bytes"))
    );
    assert_eq!(
        one(Failing),
        Err(XmlError::Custom("clock unavailable".into()))
    );
}

#[test]
fn a_result_that_is_not_a_struct_is_refused() {
    assert_eq!(members("text"), Err(XmlError::NotAStruct("a string")));
    assert_eq!(members(&7_u32), Err(XmlError::NotAStruct("an integer")));
    assert_eq!(members(&-7_i128), Err(XmlError::NotAStruct("an integer")));
    assert_eq!(members(&true), Err(XmlError::NotAStruct("a boolean")));
    assert_eq!(
        members(&vec![1, 2]),
        Err(XmlError::NotAStruct("a sequence"))
    );
    assert_eq!(
        members(&BTreeMap::<String, String>::new()),
        Err(XmlError::NotAStruct("a map"))
    );
    assert_eq!(members(&Blob), Err(XmlError::NotAStruct("bytes")));
    assert_eq!(
        members(&WithData::Newtype(1)),
        Err(XmlError::NotAStruct("an enum variant with data"))
    );
    let err = members(&Decision::ImplicitDeny).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a query-protocol result must be a struct, not an enum variant"
    );
}

#[test]
fn text_is_escaped_like_the_writer() {
    let nasty = "<a href=\"x\">Tom & Jerry's</a> ü ☃";
    let mut w = XmlWriter::new();
    w.leaf("V", nasty);
    assert_eq!(one(nasty).unwrap(), w.finish());
    assert_eq!(
        one(nasty).unwrap(),
        "<V>&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&apos;s&lt;/a&gt; ü ☃</V>"
    );
    assert_eq!(one('&').unwrap(), "<V>&amp;</V>");
    assert_eq!(one(String::new()).unwrap(), "<V></V>");
}

#[test]
fn numbers_and_booleans_are_text() {
    assert_eq!(one(0_u8).unwrap(), "<V>0</V>");
    assert_eq!(one(u64::MAX).unwrap(), "<V>18446744073709551615</V>");
    assert_eq!(one(i64::MIN).unwrap(), "<V>-9223372036854775808</V>");
    assert_eq!(one(-1_i8).unwrap(), "<V>-1</V>");
    assert_eq!(one(43_200_u32).unwrap(), "<V>43200</V>");
    assert_eq!(one(7_usize).unwrap(), "<V>7</V>");
    assert_eq!(one(u128::MAX).unwrap(), format!("<V>{}</V>", u128::MAX));
    assert_eq!(one(true).unwrap(), "<V>true</V>");
    assert_eq!(one(false).unwrap(), "<V>false</V>");
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Role<'a> {
    path: &'a str,
    role_name: &'a str,
    description: Option<&'a str>,
    max_session_duration: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<Tag<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Tag<'a> {
    key: &'a str,
    value: &'a str,
}

#[test]
fn struct_fields_are_elements_in_field_order_and_nest() {
    let role = Role {
        path: "/",
        role_name: "app",
        description: Some("d"),
        max_session_duration: 3600,
        tags: vec![Tag {
            key: "k",
            value: "<v>",
        }],
    };
    assert_eq!(
        members(&role).unwrap(),
        "<Path>/</Path><RoleName>app</RoleName><Description>d</Description>\
         <MaxSessionDuration>3600</MaxSessionDuration>\
         <Tags><member><Key>k</Key><Value>&lt;v&gt;</Value></member></Tags>"
    );
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct GetRoleResult<'a> {
        role: Role<'a>,
    }
    let result = GetRoleResult { role };
    assert!(
        members(&result)
            .unwrap()
            .starts_with("<Role><Path>/</Path>")
    );
    assert!(members(&result).unwrap().ends_with("</Tags></Role>"));
}

#[test]
fn none_is_omitted_and_skipped_lists_are_absent() {
    let role = Role {
        path: "/",
        role_name: "r",
        description: None,
        max_session_duration: 1,
        tags: Vec::new(),
    };
    assert_eq!(
        members(&role).unwrap(),
        "<Path>/</Path><RoleName>r</RoleName><MaxSessionDuration>1</MaxSessionDuration>"
    );
    assert_eq!(one(None::<&str>).unwrap(), "");
    assert_eq!(one(Some(Some(3))).unwrap(), "<V>3</V>");
}

#[test]
fn lists_are_members_and_an_empty_list_is_an_empty_element() {
    assert_eq!(
        one(&["a", "b&c"][..]).unwrap(),
        "<V><member>a</member><member>b&amp;c</member></V>"
    );
    assert_eq!(one(Vec::<&str>::new()).unwrap(), "<V></V>");
    assert_eq!(one(Some(Vec::<u8>::new())).unwrap(), "<V></V>");
    assert_eq!(one(None::<Vec<u8>>).unwrap(), "");
    assert_eq!(
        one(vec![vec![1], vec![]]).unwrap(),
        "<V><member><member>1</member></member><member></member></V>"
    );
    assert_eq!(
        one(vec![One { v: 1 }, One { v: 2 }]).unwrap(),
        "<V><member><V>1</V></member><member><V>2</V></member></V>"
    );
    // A `None` element writes nothing, like a `None` member.
    assert_eq!(
        one(vec![Some(1), None, Some(3)]).unwrap(),
        "<V><member>1</member><member>3</member></V>"
    );
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum Decision {
    Allowed,
    ImplicitDeny,
}

#[derive(Serialize)]
struct Wrapped(&'static str);

#[derive(Serialize)]
struct Nothing;

#[test]
fn unit_variants_newtypes_and_units() {
    assert_eq!(one(Decision::Allowed).unwrap(), "<V>allowed</V>");
    assert_eq!(one(Decision::ImplicitDeny).unwrap(), "<V>implicitDeny</V>");
    assert_eq!(one(Wrapped("x<")).unwrap(), "<V>x&lt;</V>");
    assert_eq!(one(()).unwrap(), "<V></V>");
    assert_eq!(one(Nothing).unwrap(), "<V></V>");
    // At the top: no members at all, or the newtype's inner struct.
    assert_eq!(members(&()).unwrap(), "");
    assert_eq!(members(&Nothing).unwrap(), "");
    assert_eq!(members(&None::<One<u8>>).unwrap(), "");
    #[derive(Serialize)]
    struct Outer(One<u8>);
    assert_eq!(members(&Outer(One { v: 4 })).unwrap(), "<V>4</V>");
}

#[test]
fn the_envelope_wraps_the_result_and_the_request_id() {
    assert_eq!(
        query_response(
            "GetCallerIdentity",
            "https://sts.amazonaws.com/doc/2011-06-15/",
            "r-1",
            &One { v: "a&b" },
        )
        .unwrap(),
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
         <GetCallerIdentityResult><V>a&amp;b</V></GetCallerIdentityResult>\
         <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>\
         </GetCallerIdentityResponse>"
    );
    assert_eq!(
        query_response("DeleteRole", "urn:\"x\"", "<id>", &()).unwrap(),
        "<DeleteRoleResponse xmlns=\"urn:&quot;x&quot;\"><DeleteRoleResult></DeleteRoleResult>\
         <ResponseMetadata><RequestId>&lt;id&gt;</RequestId></ResponseMetadata>\
         </DeleteRoleResponse>"
    );
    assert_eq!(
        query_response("X", "urn:x", "r", &One { v: Blob }),
        Err(XmlError::Unsupported("bytes"))
    );
}

#[test]
fn writer_escapes_text() {
    let mut w = XmlWriter::new();
    w.open_ns("R", "urn:x");
    w.leaf("A", "<\"'&>");
    w.close("R");
    assert_eq!(
        w.finish(),
        "<R xmlns=\"urn:x\"><A>&lt;&quot;&apos;&amp;&gt;</A></R>"
    );
}
