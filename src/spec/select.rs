//! Choosing which collectors run: the defaults, narrowed by `--only` and
//! `--skip`, each of which takes collector names or tags.

use super::Spec;

/// The operator's choice of collectors.
#[derive(Debug, Default, Clone)]
pub struct Selection {
    pub only: Vec<String>,
    pub skip: Vec<String>,
}

/// A name in `--only` or `--skip` that matches no collector and no tag.
#[derive(Debug, thiserror::Error)]
#[error("{flag} {word:?} matches no collector name or tag (see `rctr-diag collectors`)")]
pub struct UnknownSelector {
    pub flag: &'static str,
    pub word: String,
}

/// Returns the specs to run, in their declared order.
///
/// Without `--only` every default collector runs; with it, every collector
/// whose name or tag is listed runs, including ones off by default.
/// `--skip` then removes collectors by name or tag.
pub fn select(specs: &[Spec], selection: &Selection) -> Result<Vec<Spec>, UnknownSelector> {
    for (flag, words) in [("--only", &selection.only), ("--skip", &selection.skip)] {
        if let Some(word) = words
            .iter()
            .find(|word| !specs.iter().any(|s| matches(s, word)))
        {
            return Err(UnknownSelector {
                flag,
                word: word.clone(),
            });
        }
    }

    let chosen = specs.iter().filter(|spec| {
        let wanted = if selection.only.is_empty() {
            spec.default
        } else {
            selection.only.iter().any(|word| matches(spec, word))
        };
        wanted && !selection.skip.iter().any(|word| matches(spec, word))
    });
    Ok(chosen.cloned().collect())
}

fn matches(spec: &Spec, word: &str) -> bool {
    spec.name == word || spec.tags.iter().any(|tag| tag == word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse;

    fn specs() -> Vec<Spec> {
        parse(
            "t.toml",
            r#"
[[collector]]
name = "a"
kind = "containerd-version"
description = "a"
output = "a.json"
timeout = "1s"
tags = ["containerd"]

[[collector]]
name = "b"
kind = "host-info"
description = "b"
output = "b.json"
timeout = "1s"
tags = ["host"]

[[collector]]
name = "c"
kind = "host-info"
description = "c"
output = "c.json"
timeout = "1s"
tags = ["host"]
default = false
"#,
        )
        .unwrap()
    }

    fn names(selection: Selection) -> Vec<String> {
        select(&specs(), &selection)
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect()
    }

    #[test]
    fn defaults_run_without_flags() {
        assert_eq!(names(Selection::default()), ["a", "b"]);
    }

    #[test]
    fn only_by_tag_includes_non_default() {
        let only = vec!["host".to_string()];
        assert_eq!(names(Selection { only, skip: vec![] }), ["b", "c"]);
    }

    #[test]
    fn skip_by_name_and_tag() {
        let skip = vec!["a".to_string()];
        assert_eq!(names(Selection { only: vec![], skip }), ["b"]);
        let skip = vec!["host".to_string()];
        assert_eq!(names(Selection { only: vec![], skip }), ["a"]);
    }

    #[test]
    fn unknown_word_is_an_error() {
        let only = vec!["nope".to_string()];
        let err = select(&specs(), &Selection { only, skip: vec![] }).unwrap_err();
        assert!(err.to_string().contains("--only \"nope\""), "{err}");
    }
}
