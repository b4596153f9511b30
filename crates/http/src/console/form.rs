//! Form bodies (`application/x-www-form-urlencoded`, fields may repeat), and service errors as
//! a person reads them: each invalid field beside its input, anything else as one notice.

use std::collections::BTreeMap;

use keyward_core::validation::FieldError;
use keyward_service::ServiceError;

/// A posted form: its fields in order (a field may repeat).
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// Reads a form body; one that does not parse is an empty form (its CSRF token is then
    /// missing, and it is refused).
    pub fn parse(body: &[u8]) -> Self {
        Self(serde_urlencoded::from_bytes(body).unwrap_or_default())
    }

    /// The first value of `name`, trimmed; `None` when absent or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Every value of `name` (checkboxes), blanks left out.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    /// A list typed into one field: items separated by commas or white space.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// What went wrong with a form: messages by field (the field names of the API), and one for
/// the whole form.
#[derive(Debug, Default, Clone)]
pub struct Problems {
    pub fields: BTreeMap<String, Vec<String>>,
    pub form: Option<String>,
}

impl Problems {
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.form.is_none()
    }

    /// The messages about `field` (`scopes` also gathers `scopes[0]`...).
    pub fn about(&self, field: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(k, _)| {
                k.as_str() == field
                    || k.strip_prefix(field)
                        .is_some_and(|rest| rest.starts_with('[') || rest.starts_with('.'))
            })
            .flat_map(|(_, v)| v.iter().map(String::as_str))
            .collect()
    }

    /// The messages about fields a form does not show (`shown` are the ones it does), each
    /// with its field's name, so none is lost.
    pub fn others(&self, shown: &[&str]) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(k, _)| {
                !shown.iter().any(|f| {
                    k.as_str() == *f
                        || k.strip_prefix(f)
                            .is_some_and(|rest| rest.starts_with('[') || rest.starts_with('.'))
                })
            })
            .flat_map(|(k, v)| v.iter().map(move |m| format!("{k}: {m}")))
            .collect()
    }

    pub fn field(field: &str, message: &str) -> Self {
        let mut p = Self::default();
        p.fields
            .entry(field.to_owned())
            .or_default()
            .push(message.to_owned());
        p
    }
}

impl From<ServiceError> for Problems {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(errors) => {
                let mut p = Problems::default();
                for FieldError { field, message } in errors.0 {
                    p.fields.entry(field).or_default().push(message);
                }
                p
            }
            ServiceError::NameTaken(_, name) => {
                Problems::field("name", &format!("'{name}' is taken by another key"))
            }
            ServiceError::Internal(_) => Problems {
                form: Some("Something went wrong on the server; try again.".to_owned()),
                ..Problems::default()
            },
            // Every other message is written for the person who made the request.
            other => Problems {
                form: Some(capitalised(&other.to_string())),
                ..Problems::default()
            },
        }
    }
}

/// A service message as a sentence.
pub fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect::<String>() + "."
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_repeat_trim_and_split() {
        let form = Form::parse(b"name=+ci+&groups=a&groups=b&groups=&scopes=read%2C+agents++x");
        assert_eq!(form.get("name"), Some("ci"));
        assert_eq!(form.get("missing"), None);
        assert_eq!(form.all("groups"), ["a", "b"]);
        assert_eq!(form.list("scopes"), ["read", "agents", "x"]);
        assert!(Form::parse(b"%zz=%").get("x").is_none());
    }

    #[test]
    fn problems_gather_by_field() {
        let mut p = Problems::field("scopes[0]", "bad");
        p.fields.insert("scopes_extra".into(), vec!["other".into()]);
        assert_eq!(p.about("scopes"), ["bad"]);
        assert_eq!(p.others(&["scopes"]), ["scopes_extra: other"]);
        assert_eq!(capitalised("no such key"), "No such key.");
    }
}
