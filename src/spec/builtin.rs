//! The built-in collector specs, embedded from the `collectors/` folder so
//! the binary needs no files beside it.

/// Embeds `collectors/<area>.toml` for each area, with its path.
macro_rules! builtin {
    ($($area:literal),* $(,)?) => {
        &[$((
            concat!("collectors/", $area, ".toml"),
            include_str!(concat!("../../collectors/", $area, ".toml")),
        )),*]
    };
}

/// Every built-in spec file: its path in the source tree and its text.
pub const BUILTIN: &[(&str, &str)] = builtin![
    "containerd",
    "host",
    "workload",
    "shims",
    "profiles",
    "audit",
    "config",
    "logs"
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::BUILTIN;
    use crate::spec::{check_bundle_path, load, parse};

    #[test]
    fn every_file_in_the_collectors_folder_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/collectors");
        let embedded: HashSet<&str> = BUILTIN.iter().map(|(origin, _)| *origin).collect();
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let origin = format!("collectors/{name}");
            assert!(
                embedded.contains(origin.as_str()),
                "{origin} is not in BUILTIN"
            );
        }
    }

    #[test]
    fn builtin_specs_are_valid_unique_and_described() {
        let specs = load(None, &[]).expect("built-in specs load");
        assert!(!specs.is_empty());
        let mut outputs = HashSet::new();
        for spec in &specs {
            assert!(
                spec.description.len() >= 20,
                "{} needs a description",
                spec.name
            );
            assert!(!spec.tags.is_empty(), "{} has no tags", spec.name);
            check_bundle_path(&spec.output).unwrap();
            assert!(
                outputs.insert(spec.output.clone()),
                "{} reuses an output",
                spec.name
            );
        }
    }

    #[test]
    fn builtin_spec_names_start_with_their_file_area() {
        for (origin, text) in BUILTIN {
            let area = origin
                .trim_start_matches("collectors/")
                .trim_end_matches(".toml");
            for spec in parse(origin, text).unwrap() {
                assert!(
                    spec.name.starts_with(&format!("{area}.")),
                    "{} in {origin}",
                    spec.name
                );
            }
        }
    }
}
