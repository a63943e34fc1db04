//! Live service tags and meta: a running job's Consul registration changed
//! without a reload and without touching its process (`POST
//! /v3/jobs/<job>/service`, `autopilot tags` and `autopilot meta`).
//!
//! The registry keeps the change as an override of the config's tags or
//! meta, so every later registration (after an agent restart, a health
//! flip, maintenance) carries it. A reload that leaves the job unchanged
//! keeps it; one that changes the job (and so restarts it) starts again from
//! the new config.
//!
//! [`ServiceEditor`] is discovery's own interface for it, handed to the
//! control server at start-up (jobs never edit their service).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

/// Consul's limits on service meta (`structs.ValidateServiceMetadata`).
const META_MAX_PAIRS: usize = 64;
const META_KEY_MAX: usize = 128;
const META_VALUE_MAX: usize = 512;

/// A change to a service's tags and meta. Applied in this order: resets,
/// `tags` (replaces them all), `removeTags`, `addTags`, then `meta` (merged:
/// a null value removes the key). An empty edit changes nothing and just
/// reports the current registration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceEdit {
    /// Back to the config's tags first.
    #[serde(default, skip_serializing_if = "is_false")]
    pub reset_tags: bool,
    /// Back to the config's meta first.
    #[serde(default, skip_serializing_if = "is_false")]
    pub reset_meta: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_tags: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, Option<String>>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ServiceEdit {
    pub fn is_empty(&self) -> bool {
        *self == ServiceEdit::default()
    }

    /// Refuses tags and meta Consul would refuse, with the reason.
    pub fn validate(&self) -> Result<(), String> {
        let tags = self
            .tags
            .iter()
            .flatten()
            .chain(&self.add_tags)
            .chain(&self.remove_tags);
        for tag in tags {
            if tag.trim().is_empty() {
                return Err("a tag must not be empty".into());
            }
            if tag.chars().any(char::is_control) {
                return Err(format!("tag {tag:?} contains a control character"));
            }
        }
        for (key, value) in &self.meta {
            validate_meta_key(key)?;
            if let Some(v) = value
                && v.len() > META_VALUE_MAX
            {
                return Err(format!(
                    "the meta value of {key:?} is {} bytes long; Consul allows {META_VALUE_MAX}",
                    v.len()
                ));
            }
        }
        Ok(())
    }
}

fn validate_meta_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("a meta key must not be empty".into());
    }
    if key.len() > META_KEY_MAX {
        return Err(format!(
            "meta key {key:?} is longer than {META_KEY_MAX} characters"
        ));
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "meta key {key:?} may only contain letters, digits, `_` and `-` (Consul's rule)"
        ));
    }
    if key.starts_with("consul-") {
        return Err(format!(
            "meta key {key:?}: the `consul-` prefix is reserved by Consul"
        ));
    }
    Ok(())
}

/// What a running service has beyond its config: `None` keeps the config's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub tags: Option<Vec<String>>,
    pub meta: Option<BTreeMap<String, String>>,
}

impl Overrides {
    /// The tags in effect, given the config's.
    pub fn tags<'a>(&'a self, config: &'a [String]) -> &'a [String] {
        self.tags.as_deref().unwrap_or(config)
    }

    /// The meta in effect, given the config's.
    pub fn meta<'a>(
        &'a self,
        config: &'a BTreeMap<String, String>,
    ) -> &'a BTreeMap<String, String> {
        self.meta.as_ref().unwrap_or(config)
    }

    /// The overrides after `edit`, given the config's tags and meta. A result
    /// equal to the config is no override at all.
    pub fn edited(
        &self,
        config_tags: &[String],
        config_meta: &BTreeMap<String, String>,
        edit: &ServiceEdit,
    ) -> Result<Overrides, String> {
        edit.validate()?;
        let mut tags: Vec<String> = if edit.reset_tags {
            config_tags.to_vec()
        } else {
            self.tags(config_tags).to_vec()
        };
        if let Some(set) = &edit.tags {
            tags.clear();
            push_unique(&mut tags, set);
        }
        tags.retain(|t| !edit.remove_tags.contains(t));
        push_unique(&mut tags, &edit.add_tags);

        let mut meta = if edit.reset_meta {
            config_meta.clone()
        } else {
            self.meta(config_meta).clone()
        };
        for (key, value) in &edit.meta {
            match value {
                Some(v) => meta.insert(key.clone(), v.clone()),
                None => meta.remove(key),
            };
        }
        if meta.len() > META_MAX_PAIRS {
            return Err(format!(
                "the service would have {} meta keys; Consul allows {META_MAX_PAIRS}",
                meta.len()
            ));
        }
        Ok(Overrides {
            tags: (tags != config_tags).then_some(tags),
            meta: (meta != *config_meta).then_some(meta),
        })
    }
}

fn push_unique(tags: &mut Vec<String>, new: &[String]) {
    for tag in new {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
}

/// A service's registration as it is now (the answer to an edit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveService {
    pub job: String,
    /// The Consul service ID, `<name>-<hostname>`.
    pub id: String,
    pub tags: Vec<String>,
    pub meta: BTreeMap<String, String>,
    /// Whether the service is registered in Consul right now (a job waiting
    /// to restart, or in maintenance, is not; the change applies when it is
    /// registered again).
    pub registered: bool,
}

/// Why an edit was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditError {
    /// Running without a `consul` section.
    NoDiscovery,
    /// No job of that name (the names are listed).
    NoSuchJob(String),
    /// The job has no `port`, so it has no registration to change.
    NotAdvertised(String),
    /// Consul would refuse these tags or meta.
    Invalid(String),
    /// The change is recorded, but Consul did not take it yet (unreachable
    /// or refusing); autopilot keeps retrying with backoff.
    Pending(String),
}

impl std::fmt::Display for EditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EditError::NoDiscovery => write!(
                f,
                "there is no `consul` section in the config, so no service is registered"
            ),
            EditError::NoSuchJob(why) | EditError::Invalid(why) => write!(f, "{why}"),
            EditError::NotAdvertised(job) => write!(
                f,
                "job {job} has no `port`, so it is not registered in Consul and has no tags"
            ),
            EditError::Pending(why) => write!(
                f,
                "the change is recorded but Consul did not take it yet ({why}); autopilot keeps \
                 retrying and applies it as soon as Consul answers"
            ),
        }
    }
}

pub type EditFuture = Pin<Box<dyn Future<Output = Result<LiveService, EditError>> + Send>>;

/// Changes a running job's tags or meta in place (the control socket's
/// `/v3/jobs/<job>/service`); an empty edit reports them.
pub trait ServiceEditor: Send + Sync {
    fn edit_service(&self, job: &str, edit: ServiceEdit) -> EditFuture;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn edits_apply_in_order_and_collapse_to_the_config() {
        let config_tags = strings(&["web", "v1"]);
        let config_meta = BTreeMap::from([("zone".to_string(), "a".to_string())]);
        let none = Overrides::default();

        let add = ServiceEdit {
            add_tags: strings(&["primary", "web"]),
            ..ServiceEdit::default()
        };
        let o = none.edited(&config_tags, &config_meta, &add).unwrap();
        assert_eq!(o.tags(&config_tags), strings(&["web", "v1", "primary"]));
        assert_eq!(o.meta, None);

        let back = ServiceEdit {
            remove_tags: strings(&["primary"]),
            ..ServiceEdit::default()
        };
        let o = o.edited(&config_tags, &config_meta, &back).unwrap();
        assert_eq!(o, Overrides::default(), "equal to the config: no override");

        let set = ServiceEdit {
            tags: Some(strings(&["a", "a", "b"])),
            remove_tags: strings(&["b"]),
            add_tags: strings(&["c"]),
            meta: BTreeMap::from([
                ("role".to_string(), Some("primary".to_string())),
                ("zone".to_string(), None),
            ]),
            ..ServiceEdit::default()
        };
        let o = none.edited(&config_tags, &config_meta, &set).unwrap();
        assert_eq!(o.tags(&config_tags), strings(&["a", "c"]));
        assert_eq!(
            o.meta(&config_meta),
            &BTreeMap::from([("role".to_string(), "primary".to_string())])
        );

        let reset = ServiceEdit {
            reset_tags: true,
            reset_meta: true,
            ..ServiceEdit::default()
        };
        assert_eq!(
            o.edited(&config_tags, &config_meta, &reset).unwrap(),
            Overrides::default()
        );
    }

    #[test]
    fn consul_rules_are_checked_before_anything_changes() {
        let bad_meta = |key: &str| ServiceEdit {
            meta: BTreeMap::from([(key.to_string(), Some("v".to_string()))]),
            ..ServiceEdit::default()
        };
        assert!(bad_meta("a b").validate().unwrap_err().contains("letters"));
        assert!(
            bad_meta("consul-x")
                .validate()
                .unwrap_err()
                .contains("reserved")
        );
        assert!(bad_meta("").validate().is_err());
        let empty_tag = ServiceEdit {
            add_tags: strings(&[" "]),
            ..ServiceEdit::default()
        };
        assert!(empty_tag.validate().unwrap_err().contains("empty"));
        assert!(ServiceEdit::default().is_empty());
    }

    #[test]
    fn the_wire_form_is_camel_case_and_strict() {
        let edit: ServiceEdit =
            serde_json::from_str(r#"{"addTags": ["p"], "meta": {"k": null}, "resetTags": true}"#)
                .unwrap();
        assert_eq!(edit.add_tags, strings(&["p"]));
        assert_eq!(edit.meta["k"], None);
        assert!(edit.reset_tags);
        assert!(serde_json::from_str::<ServiceEdit>(r#"{"tag": ["p"]}"#).is_err());
    }
}
