//! Stored copies of the key, found live: Secrets Manager secrets and SSM parameters whose
//! name, description or tags name the key or its owner, and Lambda, CodeBuild and ECS
//! environment variables whose value is the key ID.
//!
//! Values are never kept. Environment variables are reduced to those whose value is an
//! access key ID before anything else reads them, and secret and parameter values are
//! never requested. Matching is the snapshot's (`StoredItem::location`), fed the JSON the
//! AWS CLI would print for the same resources.

use aws_sdk_codebuild::types::EnvironmentVariableType;
use aws_sdk_ecs::types::{SortOrder, TaskDefinitionField, TaskDefinitionStatus};
use futures::stream::{self, StreamExt};
use serde_json::{Map, Value, json};

use super::LiveEvidence;
use super::clients::Clients;
use super::error::aws_error;
use super::operations::*;
use super::regional::{Labelled, combine, each_relevant_region, per_source};
use crate::evidence::snapshot::storage::parse_storage;
use crate::evidence::{AwsErrorKind, EvidenceError, KeyLocation, KeyLocationSearch, Subject};
use crate::key::AccessKeyId;

/// Pages read per listing and region. Enough for some thousands of resources.
const MAX_PAGES: usize = 20;

/// Task definition families read per region, newest revision of each.
const MAX_TASK_DEFINITIONS: usize = 100;

/// `DescribeTaskDefinition` calls that run at once.
const TASK_DEFINITION_FETCHES: usize = 4;

/// The maximum number of projects in one CodeBuild `BatchGetProjects` request.
const CODEBUILD_BATCH: usize = 100;

/// Returns the places in every relevant region that store the key or name its owner, with
/// the services and regions that could not be searched. Each service of each region is a
/// separate source, so one denied listing does not discard the others' results.
pub(super) async fn key_locations(
    live: &LiveEvidence,
    subject: &Subject,
) -> Result<KeyLocationSearch, EvidenceError> {
    let account = live.subject_account(subject).await?;

    let per_region = each_relevant_region(
        live,
        &account,
        &SECRETSMANAGER_LIST_SECRETS,
        |clients, region| async move {
            let (secrets, parameters, functions, projects, tasks) = tokio::join!(
                secrets(&clients, &region),
                parameters(&clients, &region),
                functions(&clients, &region),
                projects(&clients, &region),
                task_definitions(&clients, &region),
            );
            let sources = [
                ("Secrets Manager", secrets),
                ("SSM Parameter Store", parameters),
                ("Lambda", functions),
                ("CodeBuild", projects),
                ("ECS", tasks),
            ];
            let results: Vec<Labelled<KeyLocation>> = sources
                .into_iter()
                .map(|(service, items)| {
                    let label = format!("{service} in {region}");
                    let located = items
                        .map(|items| locations(&items, subject))
                        .map_err(missing_api_as_not_enabled);
                    (label, located)
                })
                .collect();
            Ok(results)
        },
    )
    .await?;

    combine("stored copies of the key", per_source(per_region))
}

/// Matches the items of one storage listing, written as the AWS CLI prints it (or a list
/// of such outputs), against the subject.
fn locations(listing: &Value, subject: &Subject) -> Vec<KeyLocation> {
    if let Value::Array(outputs) = listing {
        return outputs
            .iter()
            .flat_map(|output| locations(output, subject))
            .collect();
    }
    parse_storage(listing)
        .iter()
        .filter_map(|item| item.location(subject))
        .collect()
}

/// Counts an API the endpoint does not serve (HTTP 404, such as an emulator without
/// CodeBuild) as not enabled, so that it does not hide what the other sources found.
fn missing_api_as_not_enabled(error: EvidenceError) -> EvidenceError {
    match error {
        EvidenceError::Aws {
            operation,
            permission,
            target,
            kind: AwsErrorKind::NotFound,
            reason,
        } => EvidenceError::Aws {
            operation,
            permission,
            target,
            kind: AwsErrorKind::NotEnabled,
            reason,
        },
        other => other,
    }
}

/// Returns the value when it is an access key ID, the only kind of value kept.
fn key_id_value(value: &str) -> Option<String> {
    value
        .trim()
        .parse::<AccessKeyId>()
        .ok()
        .map(|key| key.to_string())
}

fn key_value_tags<'a>(
    tags: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> Vec<Value> {
    tags.filter_map(|(key, value)| Some(json!({ "Key": key?, "Value": value.unwrap_or_default() })))
        .collect()
}

/// Lists secrets with their names, descriptions and tags, never their values.
async fn secrets(clients: &Clients, region: &str) -> Result<Value, EvidenceError> {
    let mut pages = clients
        .secrets_manager()
        .list_secrets()
        .max_results(100)
        .into_paginator()
        .send();
    let mut listed = Vec::new();
    for _ in 0..MAX_PAGES {
        let Some(page) = pages.next().await else {
            break;
        };
        let page = page.map_err(|error| aws_error(&SECRETSMANAGER_LIST_SECRETS, region, &error))?;
        for secret in page.secret_list.unwrap_or_default() {
            let tags = secret
                .tags
                .iter()
                .flatten()
                .map(|t| (t.key.as_deref(), t.value.as_deref()));
            listed.push(json!({
                "Name": secret.name,
                "ARN": secret.arn,
                "Description": secret.description,
                "Tags": key_value_tags(tags),
            }));
        }
    }
    Ok(json!({ "SecretList": listed }))
}

/// Lists parameters with their names and descriptions.
///
/// NOTE: parameter tags need one `ListTagsForResource` call per parameter, so parameters
/// are matched by name and description only.
async fn parameters(clients: &Clients, region: &str) -> Result<Value, EvidenceError> {
    let mut pages = clients
        .ssm()
        .describe_parameters()
        .max_results(50)
        .into_paginator()
        .send();
    let mut listed = Vec::new();
    for _ in 0..MAX_PAGES {
        let Some(page) = pages.next().await else {
            break;
        };
        let page = page.map_err(|error| aws_error(&SSM_DESCRIBE_PARAMETERS, region, &error))?;
        for parameter in page.parameters.unwrap_or_default() {
            listed.push(json!({ "Name": parameter.name, "Description": parameter.description }));
        }
    }
    Ok(json!({ "Parameters": listed }))
}

/// Lists functions with the environment variables whose value is an access key ID.
async fn functions(clients: &Clients, region: &str) -> Result<Value, EvidenceError> {
    let mut pages = clients
        .lambda()
        .list_functions()
        .max_items(50)
        .into_paginator()
        .send();
    let mut listed = Vec::new();
    for _ in 0..MAX_PAGES {
        let Some(page) = pages.next().await else {
            break;
        };
        let page = page.map_err(|error| aws_error(&LAMBDA_LIST_FUNCTIONS, region, &error))?;
        for function in page.functions.unwrap_or_default() {
            let mut variables = Map::new();
            let environment = function
                .environment
                .as_ref()
                .and_then(|e| e.variables.as_ref());
            for (name, value) in environment.into_iter().flatten() {
                if let Some(key) = key_id_value(value) {
                    variables.insert(name.clone(), key.into());
                }
            }
            listed.push(json!({
                "FunctionName": function.function_name,
                "Description": function.description,
                "Environment": { "Variables": variables },
            }));
        }
    }
    Ok(json!({ "Functions": listed }))
}

/// Lists CodeBuild projects with their plain-text environment variables whose value is
/// an access key ID. Parameter Store and Secrets Manager variables hold references, not
/// values, so they are skipped.
async fn projects(clients: &Clients, region: &str) -> Result<Value, EvidenceError> {
    let codebuild = clients.codebuild();
    let mut pages = codebuild.list_projects().into_paginator().send();
    let mut names: Vec<String> = Vec::new();
    for _ in 0..MAX_PAGES {
        let Some(page) = pages.next().await else {
            break;
        };
        let page = page.map_err(|error| aws_error(&CODEBUILD_LIST_PROJECTS, region, &error))?;
        names.extend(page.projects.unwrap_or_default());
    }

    let mut listed = Vec::new();
    for batch in names.chunks(CODEBUILD_BATCH) {
        let output = codebuild
            .batch_get_projects()
            .set_names(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|error| aws_error(&CODEBUILD_BATCH_GET_PROJECTS, region, &error))?;
        for project in output.projects.unwrap_or_default() {
            let variables: Vec<Value> = project
                .environment
                .iter()
                .flat_map(|e| e.environment_variables.iter().flatten())
                .filter(|v| {
                    v.r#type
                        .as_ref()
                        .is_none_or(|t| *t == EnvironmentVariableType::Plaintext)
                })
                .filter_map(|v| Some(json!({ "name": v.name, "value": key_id_value(&v.value)? })))
                .collect();
            let tags = project
                .tags
                .iter()
                .flatten()
                .map(|t| (t.key.as_deref(), t.value.as_deref()));
            listed.push(json!({
                "name": project.name,
                "description": project.description,
                "environment": { "environmentVariables": variables },
                "tags": key_value_tags(tags),
            }));
        }
    }
    Ok(json!({ "projects": listed }))
}

/// Reads the newest active revision of each task definition family with its container
/// environment variables whose value is an access key ID.
///
/// NOTE: older revisions are not read, though a running service may still use one.
async fn task_definitions(clients: &Clients, region: &str) -> Result<Value, EvidenceError> {
    let ecs = clients.ecs();
    let mut pages = ecs
        .list_task_definitions()
        .status(TaskDefinitionStatus::Active)
        .sort(SortOrder::Desc)
        .into_paginator()
        .send();
    let mut newest: Vec<String> = Vec::new();
    let mut families: Vec<String> = Vec::new();
    'pages: for _ in 0..MAX_PAGES {
        let Some(page) = pages.next().await else {
            break;
        };
        let page = page.map_err(|error| aws_error(&ECS_LIST_TASK_DEFINITIONS, region, &error))?;
        for arn in page.task_definition_arns.unwrap_or_default() {
            let family = arn
                .rsplit('/')
                .next()
                .and_then(|r| r.split(':').next())
                .unwrap_or(&arn)
                .to_string();
            if families.contains(&family) {
                continue;
            }
            families.push(family);
            newest.push(arn);
            if newest.len() == MAX_TASK_DEFINITIONS {
                break 'pages;
            }
        }
    }

    let described: Vec<Result<Value, EvidenceError>> = stream::iter(newest)
        .map(|arn| async move {
            let output = ecs
                .describe_task_definition()
                .task_definition(&arn)
                .include(TaskDefinitionField::Tags)
                .send()
                .await
                .map_err(|error| aws_error(&ECS_DESCRIBE_TASK_DEFINITION, &arn, &error))?;
            Ok(task_definition_json(output))
        })
        .buffered(TASK_DEFINITION_FETCHES)
        .collect()
        .await;
    let mut listed = Vec::new();
    for value in described {
        listed.push(value?);
    }
    Ok(Value::Array(listed))
}

/// Writes a task definition as `aws ecs describe-task-definition` prints it, keeping only
/// the environment variables whose value is an access key ID.
fn task_definition_json(
    output: aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput,
) -> Value {
    let Some(definition) = output.task_definition else {
        return Value::Null;
    };
    let containers: Vec<Value> = definition
        .container_definitions
        .iter()
        .flatten()
        .map(|container| {
            let variables: Vec<Value> = container
                .environment
                .iter()
                .flatten()
                .filter_map(|v| Some(json!({ "name": v.name.as_deref()?, "value": key_id_value(v.value.as_deref()?)? })))
                .collect();
            json!({ "name": container.name, "environment": variables })
        })
        .collect();
    let tags = output
        .tags
        .iter()
        .flatten()
        .map(|t| (t.key.as_deref(), t.value.as_deref()));
    json!({
        "taskDefinition": {
            "family": definition.family,
            "revision": definition.revision,
            "containerDefinitions": containers,
        },
        "tags": key_value_tags(tags),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_key_ids_survive_as_values() {
        assert_eq!(
            key_id_value(" AKIAQWERTYUIOPASDFGH ").as_deref(),
            Some("AKIAQWERTYUIOPASDFGH")
        );
        assert_eq!(
            key_id_value("wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzzzzzzzz"),
            None
        );
    }
}
