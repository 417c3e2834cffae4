//! Plugins that failed to load. A plugin that skipped itself (a snapshotter
//! whose filesystem is absent) is normal and not reported.

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
            severity: Severity::Warning,
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
