//! Redaction: the one place that decides what of a collected document is
//! too sensitive for a bundle.
//!
//! An OCI runtime spec carries the container's environment, where
//! credentials usually live. The variable names stay (they tell a reader
//! what the container was configured with); the values go. Redaction works
//! on parsed JSON so a spec from any source (a task bundle on disk, the
//! containers API) goes through the same function.

use serde_json::Value;

/// What replaces a redacted value.
pub const REDACTED: &str = "<redacted>";

/// Replaces the value of every `process.env` entry of an OCI runtime spec
/// with [`REDACTED`], keeping the names; returns how many were redacted.
pub fn redact_oci_spec(spec: &mut Value) -> usize {
    let Some(env) = spec
        .get_mut("process")
        .and_then(|process| process.get_mut("env"))
        .and_then(Value::as_array_mut)
    else {
        return 0;
    };
    let mut redacted = 0;
    for entry in env.iter_mut() {
        let replacement = match entry.as_str() {
            Some(text) => match text.split_once('=') {
                Some((_, "")) => continue,
                Some((name, _)) => format!("{name}={REDACTED}"),
                // Not NAME=VALUE: nothing tells a name from a secret.
                None => REDACTED.to_string(),
            },
            None => REDACTED.to_string(),
        };
        *entry = Value::String(replacement);
        redacted += 1;
    }
    redacted
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn env_values_go_and_names_stay() {
        let mut spec = json!({
            "ociVersion": "1.0.2",
            "process": {
                "args": ["sleep", "3600"],
                "env": ["PATH=/usr/bin:/bin", "API_TOKEN=s3cr3t=value", "EMPTY=", "ODD"]
            }
        });
        assert_eq!(redact_oci_spec(&mut spec), 3);
        assert_eq!(
            spec["process"]["env"],
            json!([
                "PATH=<redacted>",
                "API_TOKEN=<redacted>",
                "EMPTY=",
                "<redacted>"
            ])
        );
        assert_eq!(spec["process"]["args"], json!(["sleep", "3600"]));
        assert!(!spec.to_string().contains("s3cr3t"));
    }

    #[test]
    fn a_spec_without_env_is_left_alone() {
        let mut spec = json!({"process": {"args": ["true"]}, "root": {"path": "rootfs"}});
        let before = spec.clone();
        assert_eq!(redact_oci_spec(&mut spec), 0);
        assert_eq!(spec, before);
        assert_eq!(redact_oci_spec(&mut json!("not a spec")), 0);
    }
}
