//! Plugins that failed to load. A plugin that skipped itself (a snapshotter
//! whose filesystem is absent) is normal and not reported. Some daemons
//! report an optional plugin left unconfigured (containerd 1.6's devmapper)
//! as an error; that is noted at info level, not as a failure.

use super::{Finding, Input, Severity};
use crate::kinds::{PluginRecord, PluginStatus};

pub fn analyze(input: &Input) -> Vec<Finding> {
    let Some((file, plugins)) = input.json_of_kind::<Vec<PluginRecord>>("containerd-plugins")
    else {
        return Vec::new();
    };
    plugins
        .iter()
        .filter(|plugin| plugin.status == PluginStatus::Error)
        .map(|plugin| Finding {
            severity: if unconfigured(plugin) {
                Severity::Info
            } else {
                Severity::Warning
            },
            analyzer: "plugins".into(),
            title: format!("plugin {}.{} failed to load", plugin.kind, plugin.id),
            evidence: plugin.init_error.clone().unwrap_or_default(),
            file: Some(file.clone()),
            action: "Fix the cause in the error (missing binary, kernel module, or a bad \
                     setting in the plugin's config section), then restart containerd; \
                     anything that depends on this plugin is unavailable until then."
                .into(),
        })
        .collect()
}

fn unconfigured(plugin: &PluginRecord) -> bool {
    plugin
        .init_error
        .as_deref()
        .is_some_and(|error| error.ends_with("not configured"))
}
