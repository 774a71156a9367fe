//! Reading an IAM policy document into statements: the `Statement` element as one object
//! or an array, `Action`/`NotAction` and `Resource`/`NotResource` as a string or an array,
//! and the `Condition` element.

use serde_json::{Map, Value};

use super::PolicyError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Effect {
    Allow,
    Deny,
}

/// The `Action`/`NotAction` or `Resource`/`NotResource` element of a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Scope {
    /// `Action` or `Resource`: the listed patterns.
    Listed(Vec<String>),
    /// `NotAction` or `NotResource`: everything except the listed patterns.
    AllExcept(Vec<String>),
}

#[derive(Clone, Debug)]
pub(super) struct Statement {
    pub(super) effect: Effect,
    pub(super) actions: Scope,
    pub(super) resources: Scope,
    /// The `Condition` element, or `None` when it is absent or empty.
    pub(super) condition: Option<Map<String, Value>>,
}

/// Reads the `Statement` element, which IAM allows as one object or an array of them.
/// The outer error means no statement can be read, and each inner result is one statement.
pub(super) fn parse_statements(
    document: &Value,
) -> Result<Vec<Result<Statement, PolicyError>>, PolicyError> {
    let Some(object) = document.as_object() else {
        return Err(PolicyError::NotAnObject {
            found: json_type(document),
        });
    };
    let Some(element) = object.get("Statement") else {
        return Err(PolicyError::MissingStatement);
    };

    match element {
        Value::Array(items) => Ok(items
            .iter()
            .enumerate()
            .map(|(index, item)| parse_statement(index, item))
            .collect()),
        Value::Object(_) => Ok(vec![parse_statement(0, element)]),
        other => Err(PolicyError::InvalidStatements {
            found: json_type(other),
        }),
    }
}

fn parse_statement(index: usize, value: &Value) -> Result<Statement, PolicyError> {
    let invalid = |problem: String| PolicyError::InvalidStatement { index, problem };
    let Some(object) = value.as_object() else {
        return Err(invalid(format!(
            "is a JSON {}, not an object",
            json_type(value)
        )));
    };

    let effect = match object.get("Effect") {
        Some(Value::String(text)) if text.eq_ignore_ascii_case("Allow") => Effect::Allow,
        Some(Value::String(text)) if text.eq_ignore_ascii_case("Deny") => Effect::Deny,
        Some(other) => {
            return Err(invalid(format!(
                "has Effect {other}, expected \"Allow\" or \"Deny\""
            )));
        }
        None => return Err(invalid("has no Effect".to_string())),
    };
    let actions = parse_scope(object, "Action", "NotAction").map_err(invalid)?;
    let resources = parse_scope(object, "Resource", "NotResource").map_err(invalid)?;
    let condition = match object.get("Condition") {
        None => None,
        Some(Value::Object(map)) if map.is_empty() => None,
        Some(Value::Object(map)) => Some(map.clone()),
        Some(other) => {
            return Err(invalid(format!(
                "has a Condition that is a JSON {}, not an object",
                json_type(other)
            )));
        }
    };

    Ok(Statement {
        effect,
        actions,
        resources,
        condition,
    })
}

/// Reads an element that may appear as `listed` or as its negation `excluded`, holding a
/// string or an array of strings.
fn parse_scope(object: &Map<String, Value>, listed: &str, excluded: &str) -> Result<Scope, String> {
    let patterns = |value: &Value, element: &str| -> Result<Vec<String>, String> {
        match value {
            Value::String(text) => Ok(vec![text.clone()]),
            Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    Value::String(text) => Ok(text.clone()),
                    other => Err(format!(
                        "has a {element} entry that is a JSON {}, not a string",
                        json_type(other)
                    )),
                })
                .collect(),
            other => Err(format!(
                "has a {element} that is a JSON {}, not a string or array",
                json_type(other)
            )),
        }
    };

    match (object.get(listed), object.get(excluded)) {
        (Some(value), None) => Ok(Scope::Listed(patterns(value, listed)?)),
        (None, Some(value)) => Ok(Scope::AllExcept(patterns(value, excluded)?)),
        (Some(_), Some(_)) => Err(format!("has both {listed} and {excluded}")),
        (None, None) => Err(format!("has neither {listed} nor {excluded}")),
    }
}

pub(super) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
