//! Keeping secrets out of the bundle.
//!
//! A bundle travels: it is attached to bug reports and read by strangers. So
//! values that commonly hold credentials are replaced by [`REDACTED`] unless
//! the operator passes `--no-redact`: every environment value of an OCI spec
//! (names are kept, they tell what was configured), values of command-line
//! flags and of labels or annotations whose name says password, token,
//! secret, credential or key. Each function returns how many values it
//! replaced, which the manifest records.

use serde_json::Value;

/// What a redacted value is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Redacts an OCI runtime spec in place; returns the number of values
/// replaced.
pub fn redact_oci_spec(spec: &mut Value) -> usize {
    let mut count = 0;
    if let Some(process) = spec.get_mut("process") {
        if let Some(env) = process.get_mut("env").and_then(Value::as_array_mut) {
            for var in env {
                count += redact_env_entry(var);
            }
        }
        if let Some(args) = process.get_mut("args").and_then(Value::as_array_mut) {
            count += redact_args(args);
        }
    }
    if let Some(annotations) = spec.get_mut("annotations") {
        count += redact_map(annotations);
    }
    if let Some(hooks) = spec.get_mut("hooks").and_then(Value::as_object_mut) {
        for hook in hooks.values_mut().filter_map(Value::as_array_mut).flatten() {
            if let Some(env) = hook.get_mut("env").and_then(Value::as_array_mut) {
                for var in env {
                    count += redact_env_entry(var);
                }
            }
            if let Some(args) = hook.get_mut("args").and_then(Value::as_array_mut) {
                count += redact_args(args);
            }
        }
    }
    count
}

/// Redacts the values of a JSON object whose keys look like credentials;
/// returns the number replaced.
pub fn redact_map(map: &mut Value) -> usize {
    let Some(map) = map.as_object_mut() else {
        return 0;
    };
    let mut count = 0;
    for (key, value) in map.iter_mut() {
        if sensitive_name(key) && value.as_str().is_some_and(|v| !v.is_empty()) {
            *value = Value::from(REDACTED);
            count += 1;
        }
    }
    count
}

/// `NAME=value` becomes `NAME=<redacted>`.
fn redact_env_entry(var: &mut Value) -> usize {
    let Some(text) = var.as_str() else {
        return 0;
    };
    match text.split_once('=') {
        Some((name, value)) if !value.is_empty() && value != REDACTED => {
            *var = Value::from(format!("{name}={REDACTED}"));
            1
        }
        _ => 0,
    }
}

/// Redacts `--password=x` and the word after `--password`, for any flag
/// whose name looks like a credential.
fn redact_args(args: &mut [Value]) -> usize {
    let mut count = 0;
    let mut next_is_secret = false;
    for arg in args.iter_mut() {
        let Some(text) = arg.as_str().map(str::to_string) else {
            next_is_secret = false;
            continue;
        };
        if next_is_secret && !text.starts_with('-') {
            *arg = Value::from(REDACTED);
            count += 1;
            next_is_secret = false;
            continue;
        }
        next_is_secret = false;
        let Some(flag) = text.strip_prefix('-') else {
            continue;
        };
        let flag = flag.trim_start_matches('-');
        match flag.split_once('=') {
            Some((name, value)) if sensitive_name(name) && !value.is_empty() => {
                let dashes = &text[..text.len() - flag.len()];
                *arg = Value::from(format!("{dashes}{name}={REDACTED}"));
                count += 1;
            }
            Some(_) => {}
            None => next_is_secret = sensitive_name(flag),
        }
    }
    count
}

/// Whether a variable, flag, label or key name suggests a credential.
pub fn sensitive_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "token",
        "secret",
        "credential",
        "apikey",
        "api-key",
        "api_key",
    ]
    .iter()
    .any(|word| name.contains(word))
        || name.ends_with("key")
        || name == "auth"
        || name.ends_with("_auth")
        || name.ends_with(".auth")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn env_values_go_names_stay() {
        let mut spec = json!({"process": {"env": ["PATH=/bin", "API_TOKEN=s3cr3t", "EMPTY="]}});
        assert_eq!(redact_oci_spec(&mut spec), 2);
        assert_eq!(
            spec["process"]["env"],
            json!(["PATH=<redacted>", "API_TOKEN=<redacted>", "EMPTY="])
        );
    }

    #[test]
    fn credential_flags_in_args() {
        let mut spec = json!({"process": {"args": [
            "app", "--password=hunter2", "--token", "abc", "--port", "80", "-api-key=k"
        ]}});
        assert_eq!(redact_oci_spec(&mut spec), 3);
        assert_eq!(
            spec["process"]["args"],
            json!([
                "app",
                "--password=<redacted>",
                "--token",
                "<redacted>",
                "--port",
                "80",
                "-api-key=<redacted>"
            ])
        );
    }

    #[test]
    fn sensitive_annotations_only() {
        let mut spec = json!({"annotations": {"io.example/db-password": "x", "owner": "team"}});
        assert_eq!(redact_oci_spec(&mut spec), 1);
        assert_eq!(spec["annotations"]["owner"], "team");
    }

    #[test]
    fn redacting_twice_counts_once() {
        let mut spec = json!({"process": {"env": ["A=b"]}});
        assert_eq!(redact_oci_spec(&mut spec), 1);
        assert_eq!(redact_oci_spec(&mut spec), 0);
    }
}
