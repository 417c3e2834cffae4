//! Collector specs: what a bundle contains, declared as data.
//!
//! A spec file is TOML holding one or more `[[collector]]` tables. Each names a
//! collector kind implemented in Rust ([`crate::kinds::Kind`]), where its output
//! goes in the bundle, its deadline, its tags and whether it runs by default.
//! Specs are parsed into typed structs and validated as a whole before anything
//! runs, so a mistake in any file stops the run with an error naming the file
//! and the key, not halfway through an incident.

mod builtin;
mod select;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::kinds::Kind;

pub use builtin::BUILTIN;
pub use select::{Selection, select};

/// A validated collector spec.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub kind: Kind,
    pub description: String,
    /// Where the output goes inside the bundle: a file, or a folder when it
    /// ends with `/`.
    pub output: String,
    pub timeout: Duration,
    pub tags: Vec<String>,
    pub default: bool,
    /// Kind-specific parameters, already checked by the kind.
    pub params: toml::Table,
    /// The file the spec came from, for error messages and listings.
    pub origin: String,
    /// 0 to 100: under `--max-size`, higher-priority output is kept first.
    pub priority: u8,
}

/// A spec file that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read collector spec {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot list collector specs in {path}")]
    ListDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("collector spec {origin} is not valid TOML for a spec: {message}")]
    Syntax { origin: String, message: String },
    #[error("collector spec {origin}: {key}: {problem}")]
    Invalid {
        origin: String,
        key: String,
        problem: String,
    },
    #[error("collector name {name:?} is defined twice: in {first} and in {second}")]
    Duplicate {
        name: String,
        first: String,
        second: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    collector: Vec<RawSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: String,
    kind: String,
    description: String,
    output: String,
    timeout: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default = "default_true")]
    default: bool,
    #[serde(default)]
    params: toml::Table,
    priority: Option<u8>,
}

fn default_true() -> bool {
    true
}

/// Parses one spec file's text; `origin` names it in errors.
pub fn parse(origin: &str, text: &str) -> Result<Vec<Spec>, SpecError> {
    let raw: RawFile = toml::from_str(text).map_err(|err| SpecError::Syntax {
        origin: origin.to_string(),
        message: err.to_string().trim_end().replace('\n', " "),
    })?;
    if raw.collector.is_empty() {
        return Err(invalid(
            origin,
            "collector",
            "the file declares no [[collector]]",
        ));
    }
    raw.collector
        .into_iter()
        .enumerate()
        .map(|(index, raw)| validate(origin, index, raw))
        .collect()
}

fn validate(origin: &str, index: usize, raw: RawSpec) -> Result<Spec, SpecError> {
    let at = |key: &str| format!("collector[{index}].{key}");

    if !valid_name(&raw.name) {
        return Err(invalid(
            origin,
            &at("name"),
            &format!(
                "{:?} is not a collector name (lowercase letters, digits, '.', '-', '_')",
                raw.name
            ),
        ));
    }
    let at = |key: &str| format!("collector {:?}.{key}", raw.name);

    let kind = Kind::from_name(&raw.kind).ok_or_else(|| {
        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        invalid(
            origin,
            &at("kind"),
            &format!(
                "unknown kind {:?}; known kinds: {}",
                raw.kind,
                known.join(", ")
            ),
        )
    })?;
    if raw.description.trim().is_empty() {
        return Err(invalid(origin, &at("description"), "must not be empty"));
    }
    check_bundle_path(&raw.output).map_err(|problem| invalid(origin, &at("output"), &problem))?;

    let timeout = humantime::parse_duration(&raw.timeout).map_err(|err| {
        invalid(
            origin,
            &at("timeout"),
            &format!("{:?} is not a duration: {err}", raw.timeout),
        )
    })?;
    if timeout.is_zero() {
        return Err(invalid(origin, &at("timeout"), "must be greater than zero"));
    }
    for tag in &raw.tags {
        if !valid_name(tag) {
            return Err(invalid(
                origin,
                &at("tags"),
                &format!("{tag:?} is not a valid tag"),
            ));
        }
    }
    kind.check_params(&raw.params)
        .map_err(|problem| invalid(origin, &at("params"), &problem))?;
    if raw.priority.is_some_and(|p| p > 100) {
        return Err(invalid(origin, &at("priority"), "must be 0 to 100"));
    }
    let priority = raw.priority.unwrap_or_else(|| default_priority(&raw.tags));

    Ok(Spec {
        name: raw.name,
        kind,
        description: raw.description.trim().to_string(),
        output: raw.output,
        timeout,
        tags: raw.tags,
        default: raw.default,
        params: raw.params,
        origin: origin.to_string(),
        priority,
    })
}

/// The priority of a spec that sets none, by its tags: what the daemon
/// says and how it is configured first, then the host, then logs, then bulky
/// profiles.
pub fn default_priority(tags: &[String]) -> u8 {
    let has = |tag: &str| tags.iter().any(|t| t == tag);
    if has("containerd") || has("config") {
        80
    } else if has("host") {
        70
    } else if has("logs") {
        40
    } else if has("profiles") {
        30
    } else {
        50
    }
}

fn invalid(origin: &str, key: &str, problem: &str) -> SpecError {
    SpecError::Invalid {
        origin: origin.to_string(),
        key: key.to_string(),
        problem: problem.to_string(),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

/// Checks that a bundle path stays inside the bundle: relative, no `..`, no
/// empty or `.` components, printable ASCII-safe characters.
pub fn check_bundle_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("must not be empty".into());
    }
    if path.starts_with('/') {
        return Err(format!("{path:?} is absolute; bundle paths are relative"));
    }
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    for part in trimmed.split('/') {
        match part {
            "" | "." => return Err(format!("{path:?} has an empty or '.' component")),
            ".." => return Err(format!("{path:?} escapes the bundle with '..'")),
            _ => {}
        }
    }
    if let Some(c) = path.chars().find(|c| c.is_control() || *c == '\\') {
        return Err(format!("{path:?} contains the character {c:?}"));
    }
    if ["manifest.json", "summary.json", "summary.md"].contains(&path) {
        return Err(format!("{path:?} is reserved for the report"));
    }
    Ok(())
}

/// Loads every spec: the built-in ones, then each folder's `*.toml` files in
/// name order. A missing system folder is fine; a missing `--collectors`
/// folder is not, since the operator named it.
pub fn load(system_dir: Option<&Path>, extra_dirs: &[PathBuf]) -> Result<Vec<Spec>, SpecError> {
    let mut specs = Vec::new();
    for (origin, text) in BUILTIN {
        specs.extend(parse(origin, text)?);
    }
    if let Some(dir) = system_dir.filter(|dir| dir.is_dir()) {
        specs.extend(load_dir(dir)?);
    }
    for dir in extra_dirs {
        specs.extend(load_dir(dir)?);
    }
    check_unique(&specs)?;
    Ok(specs)
}

fn load_dir(dir: &Path) -> Result<Vec<Spec>, SpecError> {
    let list_err = |source| SpecError::ListDir {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list_err)? {
        let path = entry.map_err(list_err)?.path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            files.push(path);
        }
    }
    files.sort();

    let mut specs = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|source| SpecError::Read {
            path: path.clone(),
            source,
        })?;
        specs.extend(parse(&path.display().to_string(), &text)?);
    }
    Ok(specs)
}

fn check_unique(specs: &[Spec]) -> Result<(), SpecError> {
    let mut seen: HashMap<&str, &Spec> = HashMap::new();
    for spec in specs {
        if let Some(first) = seen.insert(&spec.name, spec) {
            return Err(SpecError::Duplicate {
                name: spec.name.clone(),
                first: first.origin.clone(),
                second: spec.origin.clone(),
            });
        }
    }
    Ok(())
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.kind.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[collector]]
name = "x.version"
kind = "containerd-version"
description = "the version"
output = "x/version.json"
timeout = "5s"
tags = ["incident"]
"#;

    fn error_of(text: &str) -> String {
        parse("test.toml", text).unwrap_err().to_string()
    }

    #[test]
    fn parses_a_valid_spec() {
        let specs = parse("test.toml", GOOD).unwrap();
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].kind, Kind::ContainerdVersion);
        assert_eq!(specs[0].timeout, Duration::from_secs(5));
        assert!(specs[0].default);
    }

    #[test]
    fn unknown_kind_names_file_and_key() {
        let err = error_of(&GOOD.replace("containerd-version", "frobnicate"));
        assert!(err.contains("test.toml"), "{err}");
        assert!(err.contains("collector \"x.version\".kind"), "{err}");
        assert!(err.contains("frobnicate"), "{err}");
    }

    #[test]
    fn bad_duration_names_the_key() {
        let err = error_of(&GOOD.replace("\"5s\"", "\"five\""));
        assert!(err.contains(".timeout"), "{err}");
        assert!(err.contains("five"), "{err}");
    }

    #[test]
    fn escaping_output_path_is_rejected() {
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "a/../../b",
            "a//b",
            "manifest.json",
        ] {
            let err = error_of(&GOOD.replace("x/version.json", bad));
            assert!(err.contains(".output"), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_field_and_bad_toml_name_the_file() {
        let err = error_of(&GOOD.replace("tags =", "tagz ="));
        assert!(err.contains("test.toml") && err.contains("tagz"), "{err}");
        let err = error_of("[[collector]\nname = ");
        assert!(err.contains("test.toml"), "{err}");
    }

    #[test]
    fn unknown_param_is_rejected() {
        let err = error_of(&format!("{GOOD}[collector.params]\nfoo = 1\n"));
        assert!(err.contains(".params: "), "{err}");
        assert!(err.contains("foo"), "{err}");
    }

    #[test]
    fn duplicate_names_across_files_are_rejected() {
        let mut specs = parse("a.toml", GOOD).unwrap();
        specs.extend(parse("b.toml", GOOD).unwrap());
        let err = check_unique(&specs).unwrap_err().to_string();
        assert!(err.contains("a.toml") && err.contains("b.toml"), "{err}");
    }
}
