//! Who may claim a plugin id.
//!
//! A manifest's `id` scopes the plugin's collections and `ctx.kv`, and any widget can write
//! any id in its manifest. So the host tells the backend where each mounted widget's
//! code comes from (its *source*: by default the iframe's URL without query or fragment), and
//! a plugin id belongs to the source of the instances that already hold it: a manifest from
//! another source that claims the id is refused with `PLUGIN_ID_TAKEN` instead of reading the
//! other widget's data. Instances registered without a source (older hosts, port mounts,
//! `srcdoc` frames) do not pin an id, and may claim one only while no source holds it.
//!
//! The backend also remembers the last source that claimed an id. While the plugin still has
//! data (collection items or kv entries), that pin outlives its instances: removing the real
//! widget does not let a widget from elsewhere take its data over. Deleting the plugin's data
//! (`DELETE /v1/plugins/{pluginId}`) releases it.

use crate::errors::{Error, ErrorCode, Result};

/// Longest accepted source, in bytes.
pub const MAX_SOURCE_LEN: usize = 2048;

/// The source of a widget served from `url`: the URL without its fragment and query, so a
/// cache-busting `?v=2` is the same widget while another path or origin is not.
pub fn source_of_url(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    url[..end].to_string()
}

/// Checks a source given by a host: non-empty, at most [`MAX_SOURCE_LEN`] bytes, no control
/// characters.
pub fn validate_source(source: &str) -> Result<()> {
    if source.is_empty() || source.len() > MAX_SOURCE_LEN || source.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "source must be 1-{MAX_SOURCE_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

/// An instance that already holds a plugin id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Its instance id.
    pub instance_id: String,
    /// Where its code comes from, when its host said.
    pub source: Option<String>,
}

/// Decides whether an instance whose code comes from `source` (None: unknown) may claim
/// `plugin_id`, given the *other* instances that hold it and `retained`, the pinned source of
/// a plugin that still has data: refused (`PLUGIN_ID_TAKEN`, the holder in `detail`) when one
/// of them names a different source. An unknown source never matches a named one.
pub fn check_claim(
    plugin_id: &str,
    source: Option<&str>,
    holders: &[Holder],
    retained: Option<&str>,
) -> Result<()> {
    if let Some(h) = holders
        .iter()
        .find(|h| h.source.is_some() && h.source.as_deref() != source)
    {
        return Err(taken(
            plugin_id,
            source,
            h.source.as_deref().unwrap_or_default(),
            Some(&h.instance_id),
        ));
    }
    match retained {
        Some(pinned) if Some(pinned) != source => Err(taken(plugin_id, source, pinned, None)),
        _ => Ok(()),
    }
}

fn taken(plugin_id: &str, source: Option<&str>, held_by: &str, instance: Option<&str>) -> Error {
    let whose = match instance {
        Some(i) => format!("instance {i:?}"),
        None => "its stored data; delete the plugin's data to free the id".to_string(),
    };
    Error::new(
        ErrorCode::PluginIdTaken,
        format!(
            "plugin id {plugin_id:?} belongs to the widget served from {held_by:?} ({whose}); \
             this one is served from {}",
            source.map_or("an unknown source".to_string(), |s| format!("{s:?}"))
        ),
    )
    .with_detail(serde_json::json!({
        "pluginId": plugin_id,
        "source": held_by,
        "instanceId": instance,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(id: &str, source: Option<&str>) -> Holder {
        Holder {
            instance_id: id.into(),
            source: source.map(Into::into),
        }
    }

    #[test]
    fn source_drops_query_and_fragment_only() {
        assert_eq!(
            source_of_url("https://w.example/forms/index.html?v=2#top"),
            "https://w.example/forms/index.html"
        );
        assert_eq!(
            source_of_url("https://w.example/a#x?y"),
            "https://w.example/a"
        );
        assert_eq!(source_of_url("/widgets/forms/"), "/widgets/forms/");
    }

    #[test]
    fn sources_are_bounded_and_printable() {
        assert!(validate_source("https://w.example/forms/").is_ok());
        assert_eq!(
            validate_source("").unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        assert!(validate_source("a\nb").is_err());
        assert!(validate_source(&"a".repeat(MAX_SOURCE_LEN + 1)).is_err());
    }

    #[test]
    fn another_source_cannot_claim_a_held_id() {
        let held = [holder("forms-1", Some("https://a/forms/"))];
        assert!(check_claim("forms", Some("https://a/forms/"), &held, None).is_ok());
        let err = check_claim("forms", Some("https://evil/forms/"), &held, None).unwrap_err();
        assert_eq!(err.code, ErrorCode::PluginIdTaken);
        assert_eq!(err.detail.unwrap()["instanceId"], "forms-1");
    }

    #[test]
    fn unnamed_sources_do_not_pin_and_cannot_claim_a_pinned_id() {
        let unnamed = [holder("old", None)];
        assert!(check_claim("forms", Some("https://a/forms/"), &unnamed, None).is_ok());
        assert!(check_claim("forms", None, &unnamed, None).is_ok());
        assert!(check_claim("forms", Some("https://b/"), &[], None).is_ok());
        let held = [holder("forms-1", Some("https://a/forms/"))];
        let err = check_claim("forms", None, &held, None).unwrap_err();
        assert_eq!(err.code, ErrorCode::PluginIdTaken);
        assert!(err.message.contains("an unknown source"), "{}", err.message);
    }

    #[test]
    fn a_pin_outlives_its_instances_while_the_plugin_has_data() {
        let err = check_claim("forms", Some("https://evil/"), &[], Some("https://a/")).unwrap_err();
        assert_eq!(err.code, ErrorCode::PluginIdTaken);
        assert!(err.detail.unwrap()["instanceId"].is_null());
        assert!(check_claim("forms", Some("https://a/"), &[], Some("https://a/")).is_ok());
        assert!(check_claim("forms", None, &[], Some("https://a/")).is_err());
    }

    #[test]
    fn a_source_of_exactly_the_longest_length_passes() {
        assert!(validate_source(&"a".repeat(MAX_SOURCE_LEN)).is_ok());
        assert!(validate_source(&"a".repeat(MAX_SOURCE_LEN + 1)).is_err());
    }
}
