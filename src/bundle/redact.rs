//! Redaction: taking credentials out of text before it reaches the bundle.
//!
//! Config files, logs and command output come in many syntaxes (TOML, JSON,
//! YAML, logfmt, Go's `%+v` of a struct), so redaction works on the text, not
//! on a parsed document: a value is replaced when its key names a credential
//! (`password`, `auth`, `identitytoken`, anything ending in `token` or
//! `secret`), whatever the separator and quoting. The original layout stays,
//! so a maintainer reads the config as the operator wrote it. PEM private key
//! blocks are replaced whole. Each replacement is counted, and the count goes
//! into the manifest, so a reader knows something was taken out and where.

use std::sync::LazyLock;

use regex::{Captures, Regex};

/// What a redacted value is replaced with.
pub const MARK: &str = "[REDACTED]";

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
        if inner.is_empty() || inner == MARK || is_placeholder(value) {
            return caps[0].to_string();
        }
        count += 1;
        let quoted = if value.starts_with("\\\"") {
            format!("\\\"{MARK}\\\"")
        } else if value.starts_with('"') {
            format!("\"{MARK}\"")
        } else if value.starts_with('\'') {
            format!("'{MARK}'")
        } else {
            MARK.to_string()
        };
        format!("{}{}{}{quoted}", &caps[1], &caps[2], &caps[3])
    });
    let mut out = PEM_KEY
        .replace_all(&pass, |_: &Captures| {
            count += 1;
            format!("-----{MARK} PRIVATE KEY-----")
        })
        .into_owned();
    // Text cut at its start may begin inside a key block: drop up to its end.
    if let Some(end) = PEM_END.find(&out)
        && !out[..end.start()].contains("-----BEGIN")
    {
        count += 1;
        out = format!("-----{MARK} PRIVATE KEY-----{}", &out[end.end()..]);
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
    use super::*;

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
        assert!(out.contains("password = \"[REDACTED]\""), "{out}");
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
        assert_eq!((again.as_str(), count), ("token=[REDACTED]", 0));
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
