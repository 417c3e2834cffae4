//! Keeping secrets out of the bundle.
//!
//! A bundle travels: it is attached to bug reports and read by strangers. So
//! values that commonly hold credentials are replaced by [`REDACTED`] unless
//! the operator passes `--no-redact`: every environment value of an OCI spec
//! (names are kept, they tell what was configured), values of command-line
//! flags and of labels or annotations whose name says password, token,
//! secret, credential or key. Each function returns how many values it
//! replaced, which the manifest records.
//!
//! Text (config files, logs, command output) comes in many syntaxes (TOML,
//! JSON, YAML, logfmt, Go's `%+v` of a struct), so [`redact`] works on the
//! text, not on a parsed document: a value is replaced when its key names a
//! credential (`password`, `auth`, `identitytoken`, anything ending in `token`
//! or `secret`), whatever the separator and quoting. The original layout
//! stays, so a maintainer reads a config as the operator wrote it. PEM
//! private key blocks are replaced whole.

use std::sync::LazyLock;

use regex::{Captures, Regex};
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

/// A key naming a credential, its separator, and its value.
static KEY_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r#"(?i)(^|[\s{,"'(.;&?])"#,
        r"(password|passwd|identity_?token|auths?|[a-z_-]*token|[a-z_-]*secret|private_?key)",
        r#"((?:\\?["'])?\s*[:=]\s*)"#,
        r#"(\\"(?:[^\\\n]|\\[^"\n])*\\"|"(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^\s,{}\[\]"'\n&;]+)"#,
    ))
    .expect("the credential pattern compiles")
});

/// A PEM private key block.
static PEM_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----")
        .expect("the private key pattern compiles")
});

/// The end line of a PEM private key block.
static PEM_END: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-----END [A-Z0-9 ]*PRIVATE KEY-----").expect("the key end pattern compiles")
});

/// Replaces every credential in `text`; returns the new text and how many
/// values were replaced.
pub fn redact(text: &str) -> (String, u64) {
    let mut count = 0u64;
    let pass = KEY_VALUE.replace_all(text, |caps: &Captures| {
        let value = &caps[4];
        let inner = value.trim_matches(|c| c == '"' || c == '\'' || c == '\\');
        if inner.is_empty() || inner == REDACTED || is_placeholder(value) {
            return caps[0].to_string();
        }
        count += 1;
        let quoted = if value.starts_with("\\\"") {
            format!("\\\"{REDACTED}\\\"")
        } else if value.starts_with('"') {
            format!("\"{REDACTED}\"")
        } else if value.starts_with('\'') {
            format!("'{REDACTED}'")
        } else {
            REDACTED.to_string()
        };
        format!("{}{}{}{quoted}", &caps[1], &caps[2], &caps[3])
    });
    let mut out = PEM_KEY
        .replace_all(&pass, |_: &Captures| {
            count += 1;
            format!("-----{REDACTED} PRIVATE KEY-----")
        })
        .into_owned();
    // Text cut at its start may begin inside a key block: drop up to its end.
    if let Some(end) = PEM_END.find(&out)
        && !out[..end.start()].contains("-----BEGIN")
    {
        count += 1;
        out = format!("-----{REDACTED} PRIVATE KEY-----{}", &out[end.end()..]);
    }
    (out, count)
}

/// Tells whether a bare value holds nothing secret: an empty Go map or
/// pointer in a `%+v` dump, a null, a boolean.
fn is_placeholder(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    ["map", "nil", "<nil>", "null", "none", "true", "false", "{}"].contains(&lower.as_str())
        || lower.starts_with("0x")
}

/// Redacts `data` when it is UTF-8 text; binary data is returned as it is.
pub fn redact_bytes(data: Vec<u8>) -> (Vec<u8>, u64) {
    match String::from_utf8(data) {
        Ok(text) => {
            let (out, count) = redact(&text);
            (out.into_bytes(), count)
        }
        Err(err) => (err.into_bytes(), 0),
    }
}

/// Tells whether `data` holds a PEM private key block (or its first line).
pub fn holds_private_key(data: &[u8]) -> bool {
    String::from_utf8_lossy(data).lines().any(|line| {
        let line = line.trim();
        line.starts_with("-----BEGIN") && line.ends_with("PRIVATE KEY-----")
    })
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

    #[test]
    fn redacts_toml_registry_credentials() {
        let text = r#"
[plugins."io.containerd.grpc.v1.cri".registry.configs."r.example".auth]
  username = "rctr"
  password = "hunter2"
  auth = 'dXNlcjpwYXNz'
  identitytoken = "tok"
"#;
        let (out, count) = redact(text);
        assert_eq!(count, 3, "{out}");
        for secret in ["hunter2", "dXNlcjpwYXNz", "tok\""] {
            assert!(!out.contains(secret), "{out}");
        }
        assert!(out.contains("username = \"rctr\""), "{out}");
        assert!(out.contains("password = \"<redacted>\""), "{out}");
    }

    #[test]
    fn redacts_json_go_struct_and_escaped_json() {
        let (out, n) = redact(r#"{"auths":{"r":{"auth":"c2VjcmV0"}},"registryToken":"x1"}"#);
        assert_eq!(n, 2, "{out}");
        assert!(!out.contains("c2VjcmV0") && !out.contains("x1"), "{out}");

        let (out, n) = redact("Auths:map[r:{Username:u Password:s3cr3t IdentityToken:t0k}]");
        assert!(
            n >= 2 && !out.contains("s3cr3t") && !out.contains("t0k"),
            "{out}"
        );
        let dump = "Configs:map[r:{Auth:0xc0001 TLS:<nil>}] Auths:map[] Headers:map[]";
        assert_eq!(redact(dump), (dump.to_string(), 0));

        let (out, n) = redact(r#"config="{\"password\":\"s3cr3t\",\"x\":1}""#);
        assert_eq!(n, 1, "{out}");
        assert!(!out.contains("s3cr3t"), "{out}");
    }

    #[test]
    fn leaves_empty_values_and_plain_text_alone() {
        let text = "password = \"\"\nauthor = \"me\"\ntokens = 3\nno secrets here\n";
        let (out, count) = redact(text);
        assert_eq!((out.as_str(), count), (text, 0));
        let (again, count) = redact(&redact("token=abc").0);
        assert_eq!((again.as_str(), count), ("token=<redacted>", 0));
    }

    #[test]
    fn replaces_private_key_blocks() {
        let text = "a\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\nb";
        assert!(holds_private_key(text.as_bytes()));
        let (out, count) = redact(text);
        assert_eq!(count, 1);
        assert!(!out.contains("MIIE"), "{out}");
        assert!(!holds_private_key(b"-----BEGIN CERTIFICATE-----\nx"));
        let (out, _) = redact("MIIE\n-----END PRIVATE KEY-----\ntail");
        assert!(!out.contains("MIIE") && out.ends_with("tail"), "{out}");
    }
}
