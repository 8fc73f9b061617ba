//! The index templates bonnie installs at start: the event log's daily indices get the
//! normalized record's fields typed (strings default to keywords, objects keyed by user or
//! metadata name are kept but not indexed), and the record indices a small fixed mapping.

use bonnie_plugin_api::PluginError;
use elasticsearch::{
    Elasticsearch,
    indices::{IndicesGetIndexTemplateParts, IndicesPutIndexTemplateParts},
};
use serde_json::{Value, json};

use crate::{Settings, client::request_error};

fn keyword() -> Value {
    json!({ "type": "keyword", "ignore_above": 1024 })
}

fn text_and_keyword() -> Value {
    json!({ "type": "text", "fields": { "keyword": { "type": "keyword", "ignore_above": 1024 } } })
}

fn stored_only() -> Value {
    json!({ "type": "object", "enabled": false })
}

/// The template of the daily event-log indices.
pub fn log_template(settings: &Settings) -> Value {
    let mut properties = serde_json::Map::new();
    properties.insert("@timestamp".into(), json!({ "type": "date" }));
    properties.insert("login_time".into(), json!({ "type": "date" }));
    for field in [
        "@version",
        "uid",
        "uids",
        "old_uids",
        "uidvalidity",
        "old_uidvalidity",
        "uidnext",
        "modseq",
        "messages",
        "unseen_messages",
        "message_size",
        "disk_quota",
        "disk_used",
        "max_messages",
        "pid",
        "client_port",
        "server_port",
        "revision",
    ] {
        properties.insert(field.into(), json!({ "type": "long" }));
    }
    properties.insert("duration".into(), json!({ "type": "double" }));
    // Folded by bonnie_mail::fold_for_search before it is sent; the analyzer folds again what
    // a query does not (lower case, ASCII folding).
    properties.insert(
        "search_text".into(),
        json!({ "type": "text", "analyzer": "bonnie_folded" }),
    );
    properties.insert("text_truncated".into(), json!({ "type": "boolean" }));
    for field in ["subject", "from", "to", "cc", "bcc", "body_text"] {
        properties.insert(field.into(), text_and_keyword());
    }
    for field in [
        "event",
        "service",
        "user",
        "user_id",
        "session_id",
        "client_ip",
        "server",
        "folder",
        "folder_name",
        "folder_owner",
        "folder_id",
        "folder_uniqueid",
        "folder_type",
        "old_folder",
        "old_folder_name",
        "message_ids",
        "message_id",
        "flags",
        "acl_subject",
        "acl_rights",
        "quota_root",
        "payload_digest",
        "object_uid",
        "object_type",
    ] {
        properties.insert(field.into(), keyword());
    }
    // Keyed by ACL subject, metadata name or UID: indexing their keys would grow the mapping
    // without bound. They stay in _source.
    for field in [
        "mailbox_acl",
        "acl",
        "metadata",
        "user_data",
        "vnd",
        "messageHeaders",
        "messageContent",
        "payloads",
    ] {
        properties.insert(field.into(), stored_only());
    }
    json!({
        "index_patterns": [format!("{}-*", settings.log_prefix)],
        "priority": 200,
        "_meta": { "bonnie_schema": SCHEMA },
        "template": {
            "settings": {
                "analysis": {
                    "analyzer": {
                        "bonnie_folded": {
                            "type": "custom",
                            "tokenizer": "standard",
                            "filter": ["lowercase", "asciifolding"]
                        }
                    }
                }
            },
            "mappings": {
                // Indexed for search, not kept: the payload holds the text.
                "_source": { "excludes": ["search_text"] },
                "dynamic_templates": [
                    { "strings_as_keywords": { "match_mapping_type": "string", "mapping": keyword() } }
                ],
                "properties": properties,
            }
        }
    })
}

/// The template of the record indices (users, folders, sessions, ...).
pub fn records_template(settings: &Settings) -> Value {
    json!({
        "index_patterns": [format!("{}*", settings.records_prefix)],
        "priority": 200,
        "_meta": { "bonnie_schema": SCHEMA },
        "template": {
            "mappings": {
                "dynamic": false,
                "properties": {
                    "collection": { "type": "keyword" },
                    "key": { "type": "keyword" },
                    "time_ms": { "type": "long" },
                    "terms": { "type": "keyword" },
                    "body": stored_only(),
                    "extra": stored_only(),
                }
            }
        }
    })
}

/// The version of what es-storage writes (templates, documents), in each template's `_meta`:
/// 1 until log documents carried their job id, 2 since.
pub const SCHEMA: u64 = 2;

/// The `bonnie_schema` of the installed template `name`, if there is one that says.
async fn installed_schema(client: &Elasticsearch, name: &str) -> Result<Option<u64>, PluginError> {
    let response = client
        .indices()
        .get_index_template(IndicesGetIndexTemplateParts::Name(name))
        .send()
        .await
        .map_err(|e| request_error(&format!("cannot read the index template {name}"), e))?;
    if !response.status_code().is_success() {
        return Ok(None);
    }
    let answer: Value = response.json().await.unwrap_or_default();
    Ok(answer["index_templates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.pointer("/index_template/_meta/bonnie_schema")?.as_u64())
        .max())
}

/// Installs (replaces) the templates (log, records, items); refused when a newer bonnie installed them (its
/// documents may hold what this one cannot read back).
pub async fn install(client: &Elasticsearch, settings: &Settings) -> Result<(), PluginError> {
    for name in [
        format!("{}-log", settings.log_prefix),
        format!("{}records", settings.records_prefix),
        format!("{}items", settings.records_prefix),
    ] {
        if let Some(newer) = installed_schema(client, &name)
            .await?
            .filter(|v| *v > SCHEMA)
        {
            return Err(PluginError::config(format!(
                "the index template {name} was installed by a newer bonnie (schema {newer}; this one knows up to {SCHEMA}): upgrade bonnie"
            )));
        }
    }
    for (name, template) in [
        (
            format!("{}-log", settings.log_prefix),
            log_template(settings),
        ),
        (
            format!("{}records", settings.records_prefix),
            records_template(settings),
        ),
        (
            format!("{}items", settings.records_prefix),
            crate::items::items_template(&settings.records_prefix),
        ),
    ] {
        let response = client
            .indices()
            .put_index_template(IndicesPutIndexTemplateParts::Name(&name))
            .body(template)
            .send()
            .await
            .map_err(|e| request_error(&format!("cannot install the index template {name}"), e))?;
        let status = response.status_code();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(PluginError::transient(format!(
                "the server refused the index template {name} ({status}): {body}"
            )));
        }
    }
    Ok(())
}
