//! Terraform's values (go-cty) as they cross the wire: MessagePack in every call, JSON in a
//! stored state being upgraded.
//!
//! A value is null, unknown (known only after apply: "known after apply" in a plan), or known.
//! cty encodes an unknown as a MessagePack extension (type 0, or 12 when Terraform refines it
//! with what it knows); every extension reads as unknown here, and unknowns are written as
//! type 0. Objects and maps are both maps by attribute name; lists and sets are arrays.
//! Numbers here are whole (every number keyward has is).

use std::collections::BTreeMap;

use serde_json::Value as Json;

/// A cty type, as the schema declares it (and as Terraform spells it in JSON: `"string"`,
/// `["set","string"]`, `["object",{...}]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    String,
    Number,
    Bool,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Object(BTreeMap<String, Type>),
}

impl Type {
    pub fn set_of_strings() -> Type {
        Type::Set(Box::new(Type::String))
    }

    pub fn map_of_strings() -> Type {
        Type::Map(Box::new(Type::String))
    }

    /// The type as Terraform reads it from a schema attribute's `type`.
    pub fn to_json(&self) -> Json {
        match self {
            Type::String => Json::from("string"),
            Type::Number => Json::from("number"),
            Type::Bool => Json::from("bool"),
            Type::List(t) => Json::Array(vec!["list".into(), t.to_json()]),
            Type::Set(t) => Json::Array(vec!["set".into(), t.to_json()]),
            Type::Map(t) => Json::Array(vec!["map".into(), t.to_json()]),
            Type::Object(attrs) => Json::Array(vec![
                "object".into(),
                Json::Object(
                    attrs
                        .iter()
                        .map(|(k, t)| (k.clone(), t.to_json()))
                        .collect(),
                ),
            ]),
        }
    }
}

/// A value of any type.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Value {
    #[default]
    Null,
    Unknown,
    Bool(bool),
    Number(i64),
    String(String),
    /// A list, set or tuple.
    List(Vec<Value>),
    /// An object or a map.
    Map(BTreeMap<String, Value>),
}

/// A value that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("Terraform sent a value this provider cannot read: {0}")]
pub struct DecodeError(String);

const UNKNOWN_EXTENSION: i8 = 0;
static NULL: Value = Value::Null;

impl Value {
    /// Decodes MessagePack (an empty buffer is null).
    pub fn from_msgpack(bytes: &[u8]) -> Result<Value, DecodeError> {
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        let raw =
            rmpv::decode::read_value(&mut &bytes[..]).map_err(|e| DecodeError(e.to_string()))?;
        Self::from_rmpv(raw)
    }

    fn from_rmpv(raw: rmpv::Value) -> Result<Value, DecodeError> {
        Ok(match raw {
            rmpv::Value::Nil => Value::Null,
            rmpv::Value::Ext(..) => Value::Unknown,
            rmpv::Value::Boolean(b) => Value::Bool(b),
            rmpv::Value::Integer(i) => Value::Number(
                i.as_i64()
                    .ok_or_else(|| DecodeError(format!("the number {i} is out of range")))?,
            ),
            rmpv::Value::F32(f) => Self::whole(f64::from(f))?,
            rmpv::Value::F64(f) => Self::whole(f)?,
            rmpv::Value::String(s) => Value::String(
                s.into_str()
                    .ok_or_else(|| DecodeError("a string is not UTF-8".into()))?,
            ),
            rmpv::Value::Binary(_) => return Err(DecodeError("a binary value".into())),
            rmpv::Value::Array(items) => Value::List(
                items
                    .into_iter()
                    .map(Self::from_rmpv)
                    .collect::<Result<_, _>>()?,
            ),
            rmpv::Value::Map(entries) => {
                let mut map = BTreeMap::new();
                for (k, v) in entries {
                    let k = match k {
                        rmpv::Value::String(s) => s
                            .into_str()
                            .ok_or_else(|| DecodeError("a key is not UTF-8".into()))?,
                        _ => return Err(DecodeError("a map key is not a string".into())),
                    };
                    map.insert(k, Self::from_rmpv(v)?);
                }
                Value::Map(map)
            }
        })
    }

    /// A number cty wrote as a float (or as a string, for big ones): keyward's are whole.
    fn whole(f: f64) -> Result<Value, DecodeError> {
        if f.fract() == 0.0 && f.abs() < 9.0e15 {
            #[allow(clippy::cast_possible_truncation)]
            Ok(Value::Number(f as i64))
        } else {
            Err(DecodeError(format!("{f} is not a whole number")))
        }
    }

    /// Encodes as MessagePack.
    pub fn to_msgpack(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = rmpv::encode::write_value(&mut out, &self.to_rmpv());
        out
    }

    fn to_rmpv(&self) -> rmpv::Value {
        match self {
            Value::Null => rmpv::Value::Nil,
            Value::Unknown => rmpv::Value::Ext(UNKNOWN_EXTENSION, vec![0]),
            Value::Bool(b) => rmpv::Value::Boolean(*b),
            Value::Number(n) => rmpv::Value::from(*n),
            Value::String(s) => rmpv::Value::from(s.as_str()),
            Value::List(items) => rmpv::Value::Array(items.iter().map(Self::to_rmpv).collect()),
            Value::Map(map) => rmpv::Value::Map(
                map.iter()
                    .map(|(k, v)| (rmpv::Value::from(k.as_str()), v.to_rmpv()))
                    .collect(),
            ),
        }
    }

    /// Reads a stored state's JSON as a value of `ty`: attributes the type does not have are
    /// dropped, and those it has but the JSON lacks are null (so a state written by an older
    /// schema of the same version still reads).
    pub fn from_json(json: &Json, ty: &Type) -> Result<Value, DecodeError> {
        if json.is_null() {
            return Ok(Value::Null);
        }
        let wrong = || DecodeError(format!("{json} is not a {}", ty.to_json()));
        Ok(match ty {
            Type::String => Value::String(json.as_str().ok_or_else(wrong)?.to_owned()),
            Type::Bool => Value::Bool(json.as_bool().ok_or_else(wrong)?),
            Type::Number => match json {
                Json::Number(n) => match n.as_i64() {
                    Some(i) => Value::Number(i),
                    None => Self::whole(n.as_f64().ok_or_else(wrong)?)?,
                },
                Json::String(s) => Value::Number(s.parse().map_err(|_| wrong())?),
                _ => return Err(wrong()),
            },
            Type::List(t) | Type::Set(t) => Value::List(
                json.as_array()
                    .ok_or_else(wrong)?
                    .iter()
                    .map(|item| Self::from_json(item, t))
                    .collect::<Result<_, _>>()?,
            ),
            Type::Map(t) => Value::Map(
                json.as_object()
                    .ok_or_else(wrong)?
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), Self::from_json(v, t)?)))
                    .collect::<Result<_, DecodeError>>()?,
            ),
            Type::Object(attrs) => {
                let object = json.as_object().ok_or_else(wrong)?;
                Value::Map(
                    attrs
                        .iter()
                        .map(|(name, t)| {
                            let v = object.get(name).unwrap_or(&Json::Null);
                            Ok((name.clone(), Self::from_json(v, t)?))
                        })
                        .collect::<Result<_, DecodeError>>()?,
                )
            }
        })
    }

    /// A string value.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// A string, or null.
    pub fn opt_string(s: Option<impl Into<String>>) -> Value {
        s.map_or(Value::Null, Value::string)
    }

    /// A list (or set) of strings.
    pub fn strings<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Value {
        Value::List(items.into_iter().map(Value::string).collect())
    }

    /// An object from its attributes.
    pub fn object<'a>(attrs: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
        Value::Map(attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown)
    }

    /// Known all the way down (no unknown inside).
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::List(items) => items.iter().all(Value::is_wholly_known),
            Value::Map(map) => map.values().all(Value::is_wholly_known),
            _ => true,
        }
    }

    /// An object's attribute (null when the object is null or has no such attribute).
    pub fn get(&self, name: &str) -> &Value {
        match self {
            Value::Map(map) => map.get(name).unwrap_or(&NULL),
            _ => &NULL,
        }
    }

    /// Sets an object's attribute (a null object becomes an object).
    pub fn set(&mut self, name: &str, value: Value) {
        if let Value::Map(map) = self {
            map.insert(name.to_owned(), value);
        } else {
            *self = Value::object([(name, value)]);
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(map) => Some(map),
            _ => None,
        }
    }

    /// A list of known strings (null: empty); `None` when unknown or not strings.
    pub fn string_list(&self) -> Option<Vec<String>> {
        match self {
            Value::Null => Some(Vec::new()),
            Value::List(items) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn values_round_trip_through_msgpack_with_unknowns() {
        let value = Value::object([
            ("id", Value::Unknown),
            ("name", Value::string("ci")),
            ("limit", Value::Number(120)),
            ("active", Value::Bool(true)),
            ("scopes", Value::strings(["read", "agent:editor"])),
            ("expires_at", Value::Null),
            ("secret", Value::object([("sink", Value::string("file"))])),
        ]);
        let bytes = value.to_msgpack();
        assert_eq!(Value::from_msgpack(&bytes).unwrap(), value);
        // cty's unknown: fixext 1, type 0.
        assert_eq!(Value::Unknown.to_msgpack(), vec![0xd4, 0, 0]);
        // A refined unknown (extension 12) reads as unknown too.
        assert_eq!(
            Value::from_msgpack(&[0xc7, 2, 12, 0x81, 0x01]).unwrap(),
            Value::Unknown
        );
        assert!(!value.is_wholly_known());
        assert!(Value::from_msgpack(&[]).unwrap().is_null());
    }

    #[test]
    fn whole_floats_read_as_numbers_and_fractions_are_refused() {
        let two = rmpv::Value::F64(2.0);
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &two).unwrap();
        assert_eq!(Value::from_msgpack(&out).unwrap(), Value::Number(2));
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &rmpv::Value::F64(2.5)).unwrap();
        assert!(Value::from_msgpack(&out).is_err());
        // Truncated: an array of two holding one.
        assert!(Value::from_msgpack(&[0x92, 0x01]).is_err());
    }

    #[test]
    fn json_state_reads_by_the_type_dropping_and_filling_attributes() {
        let ty = Type::Object(BTreeMap::from([
            ("name".to_owned(), Type::String),
            ("scopes".to_owned(), Type::set_of_strings()),
            ("limit".to_owned(), Type::Number),
        ]));
        let json = serde_json::json!({"name": "ci", "scopes": ["read"], "gone": 1});
        let value = Value::from_json(&json, &ty).unwrap();
        assert_eq!(value.get("name").as_str(), Some("ci"));
        assert_eq!(value.get("scopes").string_list().unwrap(), vec!["read"]);
        assert!(value.get("limit").is_null());
        assert!(value.get("gone").is_null());
        assert!(Value::from_json(&serde_json::json!({"name": 3}), &ty).is_err());
        assert_eq!(
            ty.to_json(),
            serde_json::json!(["object", {"limit": "number", "name": "string", "scopes": ["set", "string"]}])
        );
    }
}
