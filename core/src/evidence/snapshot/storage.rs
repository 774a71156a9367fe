//! Places that may store a copy of the key: Secrets Manager secrets, SSM parameters, and
//! the environments of Lambda functions, CodeBuild projects and ECS task definitions.
//!
//! Values are never kept. Reading an output keeps each item's name, description and tags.
//! Of its environment variables it keeps only those whose value is an access key ID, as
//! the variable name with that ID. Every other value is dropped as soon as it is read.

use serde_json::Value;

use super::json::{field, items, mentions_word, tags, text};
use crate::evidence::{KeyLocation, KeyLocationKind, Subject};
use crate::key::AccessKeyId;

/// One secret, parameter or workload, as far as matching needs it.
#[derive(Clone, Debug)]
pub(crate) struct StoredItem {
    kind: KeyLocationKind,
    name: String,
    /// Text to search for the key ID or the owner's name, each with what it is
    /// (`name`, `description`, `tag Owner`).
    texts: Vec<(String, String)>,
    /// Access key IDs held as values, each with where (`environment variable AWS_ACCESS_KEY_ID`).
    key_values: Vec<(String, String)>,
}

/// Reads the items of one storage output: `aws secretsmanager list-secrets`
/// (`SecretList`), `aws ssm describe-parameters` or `get-parameters` (`Parameters`),
/// `aws lambda list-functions` (`Functions`), `aws codebuild batch-get-projects`
/// (`projects`) or `aws ecs describe-task-definition` (`taskDefinition`).
pub(crate) fn parse_storage(value: &Value) -> Vec<StoredItem> {
    let mut stored = Vec::new();
    for secret in items(value.get("SecretList")) {
        stored.extend(secret_item(secret));
    }
    for parameter in items(value.get("Parameters")) {
        stored.extend(parameter_item(parameter));
    }
    for function in items(value.get("Functions")) {
        stored.extend(function_item(function));
    }
    for project in items(value.get("projects")) {
        stored.extend(project_item(project));
    }
    if let Some(definition) = value.get("taskDefinition") {
        stored.extend(task_definition_item(definition, value.get("tags")));
    }
    stored
}

/// Returns true when a value is one of the storage outputs `parse_storage` reads.
pub(super) fn is_storage_output(value: &Value) -> bool {
    let Some(object) = value.as_object() else {
        return false;
    };
    ["SecretList", "Parameters", "Functions"]
        .iter()
        .any(|k| object.get(*k).is_some_and(Value::is_array))
        || object
            .get("projects")
            .and_then(Value::as_array)
            .is_some_and(|p| p.iter().any(Value::is_object))
        || object.get("taskDefinition").is_some_and(Value::is_object)
}

fn secret_item(secret: &Value) -> Option<StoredItem> {
    let name = text(secret, "Name").or_else(|| text(secret, "ARN"))?;
    let mut item = StoredItem::new(KeyLocationKind::SecretsManagerSecret, &name);
    item.add_text("description", text(secret, "Description"));
    item.add_tags(field(secret, "Tags"));
    Some(item)
}

fn parameter_item(parameter: &Value) -> Option<StoredItem> {
    let name = text(parameter, "Name")?;
    let mut item = StoredItem::new(KeyLocationKind::SsmParameter, &name);
    item.add_text("description", text(parameter, "Description"));
    item.add_tags(field(parameter, "Tags"));
    // `get-parameters` and `get-parameters-by-path` include the value.
    item.add_value("parameter value", text(parameter, "Value"));
    Some(item)
}

fn function_item(function: &Value) -> Option<StoredItem> {
    let name = text(function, "FunctionName").or_else(|| text(function, "FunctionArn"))?;
    let mut item = StoredItem::new(KeyLocationKind::LambdaEnvironment, &name);
    item.add_text("description", text(function, "Description"));
    item.add_tags(field(function, "Tags"));
    let variables = field(function, "Environment").and_then(|e| field(e, "Variables"));
    if let Some(Value::Object(variables)) = variables {
        for (variable, value) in variables {
            item.add_value(
                &format!("environment variable {variable}"),
                value.as_str().map(str::to_string),
            );
        }
    }
    Some(item)
}

fn project_item(project: &Value) -> Option<StoredItem> {
    let name = text(project, "name").or_else(|| text(project, "arn"))?;
    let mut item = StoredItem::new(KeyLocationKind::CodeBuildEnvironment, &name);
    item.add_text("description", text(project, "description"));
    item.add_tags(field(project, "tags"));
    let variables = field(project, "environment").and_then(|e| field(e, "environmentVariables"));
    for variable in items(variables) {
        let Some(variable_name) = text(variable, "name") else {
            continue;
        };
        item.add_value(
            &format!("environment variable {variable_name}"),
            text(variable, "value"),
        );
    }
    Some(item)
}

fn task_definition_item(definition: &Value, tags: Option<&Value>) -> Option<StoredItem> {
    let name = text(definition, "taskDefinitionArn").or_else(|| {
        let family = text(definition, "family")?;
        Some(match text(definition, "revision") {
            Some(revision) => format!("{family}:{revision}"),
            None => family,
        })
    })?;
    let mut item = StoredItem::new(KeyLocationKind::EcsTaskDefinition, &name);
    item.add_tags(tags);
    for container in items(field(definition, "containerDefinitions")) {
        let container_name = text(container, "name").unwrap_or_default();
        for variable in items(field(container, "environment")) {
            let Some(variable_name) = text(variable, "name") else {
                continue;
            };
            let what =
                format!("environment variable {variable_name} of container {container_name}");
            item.add_value(&what, text(variable, "value"));
        }
    }
    Some(item)
}

impl StoredItem {
    fn new(kind: KeyLocationKind, name: &str) -> StoredItem {
        StoredItem {
            kind,
            name: name.to_string(),
            texts: vec![("name".to_string(), name.to_string())],
            key_values: Vec::new(),
        }
    }

    fn add_text(&mut self, what: &str, value: Option<String>) {
        if let Some(value) = value {
            self.texts.push((what.to_string(), value));
        }
    }

    fn add_tags(&mut self, value: Option<&Value>) {
        for (key, value) in tags(value) {
            self.texts
                .push((format!("tag {key}"), format!("{key} {value}")));
        }
    }

    /// Keeps a value only when it is an access key ID. Any other value may be a secret, so
    /// it is dropped here.
    fn add_value(&mut self, what: &str, value: Option<String>) {
        let Some(value) = value else {
            return;
        };
        if let Ok(key) = value.trim().parse::<AccessKeyId>() {
            self.key_values.push((what.to_string(), key.to_string()));
        }
    }

    /// Returns where this item names the subject, or `None` when it does not: a value equal
    /// to the key ID, or the key ID or the owner's name (as a whole word) in its name,
    /// description or tags.
    pub(crate) fn location(&self, subject: &Subject) -> Option<KeyLocation> {
        let key = subject.key.as_str();
        let owner = subject.owner_name.as_deref().filter(|o| !o.is_empty());

        let mut matched: Vec<String> = Vec::new();
        for (what, value) in &self.key_values {
            if value == key {
                matched.push(what.clone());
            }
        }
        for (what, text) in &self.texts {
            let names_key = text.to_ascii_uppercase().contains(key);
            let names_owner = owner.is_some_and(|o| mentions_word(text, o));
            if (names_key || names_owner) && !matched.contains(what) {
                matched.push(what.clone());
            }
        }
        if matched.is_empty() {
            return None;
        }
        Some(KeyLocation {
            kind: self.kind,
            name: self.name.clone(),
            matched_by: matched.join(", "),
            // NOTE: readers stay empty, because finding who read a secret needs CloudTrail
            // events beyond the key's own and so another pass over the files.
            readers: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "AKIAQWERTYUIOPASDFGH";
    const SECRET: &str = "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";

    fn subject(owner: Option<&str>) -> Subject {
        Subject {
            key: KEY.parse().unwrap(),
            account_id: None,
            owner_name: owner.map(str::to_string),
            owner_arn: None,
        }
    }

    #[test]
    fn lambda_variable_value_matches_by_name_only() {
        let output = json!({"Functions": [{"FunctionName": "nightly-export",
            "Environment": {"Variables": {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET}}}]});
        let items = parse_storage(&output);
        assert_eq!(items.len(), 1);
        assert!(
            !format!("{items:?}").contains(SECRET),
            "the secret value is not kept"
        );
        let location = items[0].location(&subject(None)).expect("matched by value");
        assert_eq!(location.kind, KeyLocationKind::LambdaEnvironment);
        assert_eq!(
            location.matched_by,
            "environment variable AWS_ACCESS_KEY_ID"
        );
        assert!(!location.matched_by.contains(KEY));
    }

    #[test]
    fn secret_matches_tag_and_description() {
        let output = json!({"SecretList": [
            {"Name": "ci/credentials", "Description": "copy of AKIAQWERTYUIOPASDFGH", "Tags": [{"Key": "Owner", "Value": "dana"}]},
            {"Name": "dana-old", "Description": "nothing"},
            {"Name": "unrelated", "Tags": [{"Key": "Owner", "Value": "danai"}]}]});
        let items = parse_storage(&output);
        let locations: Vec<KeyLocation> = items
            .iter()
            .filter_map(|i| i.location(&subject(Some("dana"))))
            .collect();
        assert_eq!(locations.len(), 2);
        assert_eq!(locations[0].matched_by, "description, tag Owner");
        assert_eq!(locations[1].name, "dana-old");
        assert_eq!(locations[1].matched_by, "name");
    }

    #[test]
    fn codebuild_and_ecs_variables() {
        let codebuild = json!({"projects": [{"name": "build", "environment": {"environmentVariables": [
            {"name": "DEPLOY_KEY_ID", "value": KEY, "type": "PLAINTEXT"}]}}]});
        let ecs = json!({"taskDefinition": {"family": "web", "revision": 3, "containerDefinitions": [
            {"name": "app", "environment": [{"name": "KEY_ID", "value": KEY}]}]}});
        let build = &parse_storage(&codebuild)[0];
        assert_eq!(
            build.location(&subject(None)).unwrap().matched_by,
            "environment variable DEPLOY_KEY_ID"
        );
        let task = &parse_storage(&ecs)[0];
        let location = task.location(&subject(None)).unwrap();
        assert_eq!(location.name, "web:3");
        assert_eq!(
            location.matched_by,
            "environment variable KEY_ID of container app"
        );
    }

    #[test]
    fn other_key_does_not_match() {
        let output = json!({"Functions": [{"FunctionName": "f",
            "Environment": {"Variables": {"AWS_ACCESS_KEY_ID": "AKIAOTHEROTHEROTHER1"}}}]});
        assert!(
            parse_storage(&output)[0]
                .location(&subject(Some("dana")))
                .is_none()
        );
    }
}
