//! Schemas as the resources write them: attributes with their type, whether the configuration
//! sets them or the provider does, and a description (Markdown: `terraform providers schema`
//! and editors show it). [`Block::to_proto`] is what Terraform receives; [`Block::object_type`]
//! is the type of every value of the resource, used to read stored state.

use std::collections::BTreeMap;

use crate::cty::{Type, Value};
use crate::proto::tfplugin6 as tf;

/// Who sets an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The configuration must.
    Required,
    /// The configuration may; null otherwise.
    Optional,
    /// Only the provider does.
    Computed,
    /// The configuration may; otherwise the provider does (a default, or the server's value).
    OptionalComputed,
}

#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: &'static str,
    pub ty: Type,
    pub mode: Mode,
    pub sensitive: bool,
    pub description: String,
    /// A nested attribute (`secret = { sink = "file", path = "..." }`): its attributes.
    pub nested: Option<Vec<Attribute>>,
}

impl Attribute {
    fn new(name: &'static str, ty: Type, mode: Mode, description: &str) -> Self {
        Self {
            name,
            ty,
            mode,
            sensitive: false,
            description: description.to_owned(),
            nested: None,
        }
    }

    pub fn required(name: &'static str, ty: Type, description: &str) -> Self {
        Self::new(name, ty, Mode::Required, description)
    }

    pub fn optional(name: &'static str, ty: Type, description: &str) -> Self {
        Self::new(name, ty, Mode::Optional, description)
    }

    pub fn computed(name: &'static str, ty: Type, description: &str) -> Self {
        Self::new(name, ty, Mode::Computed, description)
    }

    pub fn optional_computed(name: &'static str, ty: Type, description: &str) -> Self {
        Self::new(name, ty, Mode::OptionalComputed, description)
    }

    /// A single nested object, set with `name = { ... }`.
    pub fn nested(
        name: &'static str,
        mode: Mode,
        attributes: Vec<Attribute>,
        description: &str,
    ) -> Self {
        let ty = object_type(&attributes);
        Self {
            nested: Some(attributes),
            ..Self::new(name, ty, mode, description)
        }
    }

    /// Hidden in plans and output.
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    fn to_proto(&self) -> tf::schema::Attribute {
        let (required, optional, computed) = match self.mode {
            Mode::Required => (true, false, false),
            Mode::Optional => (false, true, false),
            Mode::Computed => (false, false, true),
            Mode::OptionalComputed => (false, true, true),
        };
        let (r#type, nested_type) = match &self.nested {
            Some(attributes) => (
                Vec::new(),
                Some(tf::schema::Object {
                    attributes: attributes.iter().map(Attribute::to_proto).collect(),
                    nesting: tf::schema::object::NestingMode::Single as i32,
                    ..Default::default()
                }),
            ),
            None => (self.ty.to_json().to_string().into_bytes(), None),
        };
        tf::schema::Attribute {
            name: self.name.to_owned(),
            r#type,
            nested_type,
            description: self.description.clone(),
            required,
            optional,
            computed,
            sensitive: self.sensitive,
            description_kind: tf::StringKind::Markdown as i32,
            ..Default::default()
        }
    }
}

/// A resource's, data source's or the provider's attributes.
#[derive(Debug, Clone)]
pub struct Block {
    pub description: String,
    pub attributes: Vec<Attribute>,
}

impl Block {
    pub fn to_proto(&self, version: i64) -> tf::Schema {
        tf::Schema {
            version,
            block: Some(tf::schema::Block {
                version,
                attributes: self.attributes.iter().map(Attribute::to_proto).collect(),
                description: self.description.clone(),
                description_kind: tf::StringKind::Markdown as i32,
                ..Default::default()
            }),
        }
    }

    pub fn object_type(&self) -> Type {
        object_type(&self.attributes)
    }

    /// An object of this block with every attribute null.
    pub fn null_object(&self) -> Value {
        Value::object(self.attributes.iter().map(|a| (a.name, Value::Null)))
    }
}

fn object_type(attributes: &[Attribute]) -> Type {
    Type::Object(
        attributes
            .iter()
            .map(|a| (a.name.to_owned(), a.ty.clone()))
            .collect::<BTreeMap<_, _>>(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn attributes_say_who_sets_them_and_nested_ones_carry_no_type() {
        let block = Block {
            description: "A key".into(),
            attributes: vec![
                Attribute::required("name", Type::String, "The name."),
                Attribute::optional_computed("rate", Type::Number, "Per minute."),
                Attribute::nested(
                    "secret",
                    Mode::Optional,
                    vec![Attribute::required("sink", Type::String, "Where.")],
                    "The sink.",
                ),
                Attribute::optional("api_key", Type::String, "Admin key.").sensitive(),
            ],
        };
        let proto = block.to_proto(0).block.unwrap();
        let name = &proto.attributes[0];
        assert!(name.required && !name.optional && !name.computed);
        assert_eq!(name.r#type, b"\"string\"");
        let rate = &proto.attributes[1];
        assert!(rate.optional && rate.computed);
        let secret = &proto.attributes[2];
        assert!(secret.r#type.is_empty());
        assert_eq!(secret.nested_type.as_ref().unwrap().attributes.len(), 1);
        assert!(proto.attributes[3].sensitive);
        assert_eq!(
            block.object_type().to_json()[1]["secret"],
            serde_json::json!(["object", {"sink": "string"}])
        );
        assert!(block.null_object().get("name").is_null());
    }
}
