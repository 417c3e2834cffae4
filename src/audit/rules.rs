//! The deprecation rules: one table of everything containerd deprecated or
//! removed that a node's setup can still use, and the matching of config
//! files against it.
//!
//! The table is data so that adding a rule is one entry, reviewable against
//! containerd's own list (`pkg/deprecation/deprecation.go` per release branch
//! and the deprecation tables in `RELEASES.md`). A rule names what it matches
//! per config version as a TOML key path (`plugins."io.containerd.grpc.v1.cri"
//! .registry.mirrors`, `*` for any one key), the warning id containerd raises
//! for it when it raises one, the release that deprecated it, the release
//! that removes it and what to write instead. Removal releases move between
//! containerd releases; the table holds the latest plan, and a live warning's
//! message wins over it.
//!
//! Config version 1 names plugins by their bare id (`plugins.cri`), version 2
//! by type and id (`plugins."io.containerd.grpc.v1.cri"`), version 3 after
//! the plugin moves of containerd 2.0 (`io.containerd.cri.v1.images`, ...).

use std::fmt;

/// A `major.minor` containerd release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Release {
    pub major: u32,
    pub minor: u32,
}

impl Release {
    /// Reads `2.0`, `v2.1.9`, `1.7.24~ds1` or `2.1.9+unknown`.
    pub fn parse(text: &str) -> Option<Release> {
        let text = text.trim().trim_start_matches('v');
        let end = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let mut parts = text[..end].split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(Release { major, minor })
    }

    /// The release after this one in the same series.
    pub fn next_minor(self) -> Release {
        Release {
            major: self.major,
            minor: self.minor + 1,
        }
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// What part of a node a rule looks at besides the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    None,
    /// Images whose stored manifest is Docker schema 1.
    Schema1Images,
    /// Containers created with the runtime named by the rule's `runtime`.
    Runtime(&'static str),
    /// Containers carrying the label named by the rule's `label`.
    Label(&'static str),
}

/// One place in a config file a rule looks at.
#[derive(Debug, Clone, Copy)]
pub struct Match {
    /// Config versions (the file's `version`, 1 when absent) this path is
    /// read in.
    pub versions: &'static [i64],
    /// A TOML key path; `*` stands for any one key, an empty path for the
    /// whole file.
    pub path: &'static str,
    /// When set, the value must equal this (strings as written, numbers in
    /// decimal); otherwise any value that is not empty, zero or false counts.
    pub value: Option<&'static str>,
}

/// One deprecated or removed feature.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// This tool's name for the rule; equal to the tail of containerd's
    /// warning id when there is one.
    pub id: &'static str,
    /// What is deprecated, in a few words.
    pub title: &'static str,
    /// The id containerd's warning service uses, if it raises one.
    pub warning: Option<&'static str>,
    /// Where it shows in config files.
    pub matches: &'static [Match],
    /// What it shows as in the daemon's content.
    pub content: Content,
    /// The release that deprecated it.
    pub deprecated_in: &'static str,
    /// The release that removes it (or stops honouring it); `None` when no
    /// removal is scheduled (migration notes).
    pub removed_in: Option<&'static str>,
    /// What to do instead.
    pub instead: &'static str,
}

const V1: &[i64] = &[1];
const V2: &[i64] = &[2];
const V3: &[i64] = &[3];
const ALL: &[i64] = &[1, 2, 3];

const fn at(versions: &'static [i64], path: &'static str) -> Match {
    Match {
        versions,
        path,
        value: None,
    }
}

const fn is(versions: &'static [i64], path: &'static str, value: &'static str) -> Match {
    Match {
        versions,
        path,
        value: Some(value),
    }
}

const RUNTIME_V1: &str = "io.containerd.runtime.v1.linux";
const RUNC_V1: &str = "io.containerd.runc.v1";

/// Every rule. Keep ids unique; the unit tests check the table's shape.
pub const RULES: &[Rule] = &[
    // CRI properties removed in 2.0.
    Rule {
        id: "cri-systemd-cgroup-v1",
        title: "`systemd_cgroup` of the CRI plugin",
        warning: Some("io.containerd.deprecation/cri-systemd-cgroup-v1"),
        matches: &[
            at(V1, "plugins.cri.systemd_cgroup"),
            at(V2, r#"plugins."io.containerd.grpc.v1.cri".systemd_cgroup"#),
        ],
        content: Content::None,
        deprecated_in: "1.3",
        removed_in: Some("2.0"),
        instead: "set `SystemdCgroup = true` in the runc runtime's `options`",
    },
    Rule {
        id: "cri-untrusted-workload-runtime",
        title: "`untrusted_workload_runtime` of the CRI plugin",
        warning: Some("io.containerd.deprecation/cri-untrusted-workload-runtime"),
        matches: &[
            at(
                V1,
                "plugins.cri.containerd.untrusted_workload_runtime.runtime_type",
            ),
            at(
                V2,
                r#"plugins."io.containerd.grpc.v1.cri".containerd.untrusted_workload_runtime.runtime_type"#,
            ),
        ],
        content: Content::None,
        deprecated_in: "1.2",
        removed_in: Some("2.0"),
        instead: "define an `untrusted` runtime under `containerd.runtimes`",
    },
    Rule {
        id: "cri-default-runtime",
        title: "`default_runtime` of the CRI plugin",
        warning: Some("io.containerd.deprecation/cri-default-runtime"),
        matches: &[
            at(V1, "plugins.cri.containerd.default_runtime.runtime_type"),
            at(
                V2,
                r#"plugins."io.containerd.grpc.v1.cri".containerd.default_runtime.runtime_type"#,
            ),
        ],
        content: Content::None,
        deprecated_in: "1.3",
        removed_in: Some("2.0"),
        instead: "define the runtime under `containerd.runtimes` and name it in \
                  `default_runtime_name`",
    },
    Rule {
        id: "cri-runtime-engine",
        title: "`runtime_engine` of a CRI runtime",
        warning: Some("io.containerd.deprecation/cri-runtime-engine"),
        matches: &[
            at(V1, "plugins.cri.containerd.runtimes.*.runtime_engine"),
            at(V1, "plugins.cri.containerd.*.runtime_engine"),
            at(
                V2,
                r#"plugins."io.containerd.grpc.v1.cri".containerd.runtimes.*.runtime_engine"#,
            ),
            at(
                V2,
                r#"plugins."io.containerd.grpc.v1.cri".containerd.*.runtime_engine"#,
            ),
        ],
        content: Content::None,
        deprecated_in: "1.3",
        removed_in: Some("2.0"),
        instead: "use a runtime v2 shim (`runtime_type = \"io.containerd.runc.v2\"`) with \
                  `options.BinaryName`",
    },
    Rule {
        id: "cri-runtime-root",
        title: "`runtime_root` of a CRI runtime",
        warning: Some("io.containerd.deprecation/cri-runtime-root"),
        matches: &[
            at(V1, "plugins.cri.containerd.runtimes.*.runtime_root"),
            at(V1, "plugins.cri.containerd.*.runtime_root"),
            at(
                V2,
                r#"plugins."io.containerd.grpc.v1.cri".containerd.runtimes.*.runtime_root"#,
            ),
            at(
                V2,
                r#"plugins."io.containerd.grpc.v1.cri".containerd.*.runtime_root"#,
            ),
        ],
        content: Content::None,
        deprecated_in: "1.3",
        removed_in: Some("2.0"),
        instead: "set `Root` in the runtime's `options`",
    },
    Rule {
        id: "cri-criu-path",
        title: "`CriuPath` in CRI runtime options",
        warning: Some("io.containerd.deprecation/cri-criu-path"),
        matches: &[
            at(V1, "plugins.cri.containerd.runtimes.*.options.CriuPath"),
            at(
                V2,
                r#"plugins."io.containerd.grpc.v1.cri".containerd.runtimes.*.options.CriuPath"#,
            ),
            at(
                V3,
                r#"plugins."io.containerd.cri.v1.runtime".containerd.runtimes.*.options.CriuPath"#,
            ),
        ],
        content: Content::None,
        deprecated_in: "1.7",
        removed_in: Some("2.0"),
        instead: "put the `criu` binary in containerd's `$PATH`",
    },
    // Removed in 2.0 without a warning: the daemon says nothing about them.
    Rule {
        id: "cri-disable-cgroup",
        title: "`disable_cgroup` of the CRI plugin",
        warning: None,
        matches: &[
            at(V1, "plugins.cri.disable_cgroup"),
            at(V2, r#"plugins."io.containerd.grpc.v1.cri".disable_cgroup"#),
        ],
        content: Content::None,
        deprecated_in: "2.0",
        removed_in: Some("2.0"),
        instead: "delegate a cgroup v2 subtree to the daemon (rootless setups) instead",
    },
    Rule {
        id: "cri-no-pivot",
        title: "`containerd.no_pivot` of the CRI plugin (runtime v1 only)",
        warning: None,
        matches: &[
            at(V1, "plugins.cri.containerd.no_pivot"),
            at(
                V2,
                r#"plugins."io.containerd.grpc.v1.cri".containerd.no_pivot"#,
            ),
        ],
        content: Content::None,
        deprecated_in: "1.4",
        removed_in: Some("2.0"),
        instead: "set `NoPivotRoot = true` in the runc runtime's `options`",
    },
    // Runtimes and snapshotters removed in 2.0.
    Rule {
        id: "runtime-v1",
        title: "runtime v1 (`io.containerd.runtime.v1.linux`)",
        warning: Some("io.containerd.deprecation/runtime-v1"),
        matches: &[
            is(
                V1,
                "plugins.cri.containerd.runtimes.*.runtime_type",
                RUNTIME_V1,
            ),
            is(V1, "plugins.cri.containerd.*.runtime_type", RUNTIME_V1),
            is(
                V2,
                r#"plugins."io.containerd.grpc.v1.cri".containerd.runtimes.*.runtime_type"#,
                RUNTIME_V1,
            ),
            is(
                V2,
                r#"plugins."io.containerd.grpc.v1.cri".containerd.*.runtime_type"#,
                RUNTIME_V1,
            ),
            is(
                V3,
                r#"plugins."io.containerd.cri.v1.runtime".containerd.runtimes.*.runtime_type"#,
                RUNTIME_V1,
            ),
        ],
        content: Content::Runtime(RUNTIME_V1),
        deprecated_in: "1.4",
        removed_in: Some("2.0"),
        instead: "use `io.containerd.runc.v2`; recreate containers that use runtime v1",
    },
    Rule {
        id: "runtime-runc-v1",
        title: "the `io.containerd.runc.v1` shim",
        warning: Some("io.containerd.deprecation/runtime-runc-v1"),
        matches: &[
            is(
                V1,
                "plugins.cri.containerd.runtimes.*.runtime_type",
                RUNC_V1,
            ),
            is(V1, "plugins.cri.containerd.*.runtime_type", RUNC_V1),
            is(
                V2,
                r#"plugins."io.containerd.grpc.v1.cri".containerd.runtimes.*.runtime_type"#,
                RUNC_V1,
            ),
            is(
                V2,
                r#"plugins."io.containerd.grpc.v1.cri".containerd.*.runtime_type"#,
                RUNC_V1,
            ),
            is(
                V3,
                r#"plugins."io.containerd.cri.v1.runtime".containerd.runtimes.*.runtime_type"#,
                RUNC_V1,
            ),
        ],
        content: Content::Runtime(RUNC_V1),
        deprecated_in: "1.4",
        removed_in: Some("2.0"),
        instead: "use `io.containerd.runc.v2`; recreate containers that use runc.v1",
    },
    Rule {
        id: "aufs-snapshotter",
        title: "the aufs snapshotter",
        warning: Some("io.containerd.deprecation/aufs-snapshotter"),
        matches: &[
            at(V1, "plugins.aufs.*"),
            at(&[2, 3], r#"plugins."io.containerd.snapshotter.v1.aufs".*"#),
            is(V1, "plugins.cri.containerd.snapshotter", "aufs"),
            is(V1, "plugins.cri.containerd.runtimes.*.snapshotter", "aufs"),
            is(
                V2,
                r#"plugins."io.containerd.grpc.v1.cri".containerd.snapshotter"#,
                "aufs",
            ),
            is(
                V2,
                r#"plugins."io.containerd.grpc.v1.cri".containerd.runtimes.*.snapshotter"#,
                "aufs",
            ),
            is(
                V3,
                r#"plugins."io.containerd.cri.v1.images".snapshotter"#,
                "aufs",
            ),
            is(
                V3,
                r#"plugins."io.containerd.cri.v1.runtime".containerd.runtimes.*.snapshotter"#,
                "aufs",
            ),
        ],
        content: Content::None,
        deprecated_in: "1.5",
        removed_in: Some("2.0"),
        instead: "use the overlayfs snapshotter",
    },
    Rule {
        id: "restart-logpath",
        title: "the `containerd.io/restart.logpath` container label",
        warning: Some("io.containerd.deprecation/restart-logpath"),
        matches: &[],
        content: Content::Label("containerd.io/restart.logpath"),
        deprecated_in: "1.5",
        removed_in: Some("2.0"),
        instead: "label the container with `containerd.io/restart.loguri` instead",
    },
    Rule {
        id: "cri-api-v1alpha2",
        title: "CRI API v1alpha2",
        warning: Some("io.containerd.deprecation/cri-api-v1alpha2"),
        // No setting turns it on: a client (an old kubelet or crictl) calling
        // the v1alpha2 API raises it, so only the daemon can tell.
        matches: &[],
        content: Content::None,
        deprecated_in: "1.7",
        removed_in: Some("2.0"),
        instead: "upgrade the CRI clients (kubelet 1.26+, crictl 1.26+) to CRI v1",
    },
    Rule {
        id: "pull-schema-1-image",
        title: "Docker schema 1 images",
        warning: Some("io.containerd.deprecation/pull-schema-1-image"),
        matches: &[],
        content: Content::Schema1Images,
        deprecated_in: "1.7",
        // Pulling is disabled in 2.0 (an environment variable re-enables it
        // until 2.1), so 2.0 is where it breaks.
        removed_in: Some("2.0"),
        instead: "rebuild or re-push the image as Docker schema 2 or OCI and pull it again",
    },
    Rule {
        id: "go-plugin-library",
        title: "Go plugin libraries (`plugin_dir`)",
        warning: Some("io.containerd.deprecation/go-plugin-library"),
        matches: &[at(ALL, "plugin_dir")],
        content: Content::None,
        deprecated_in: "2.0",
        removed_in: Some("2.1"),
        instead: "run the plugin out of process as a proxy plugin or a shim binary",
    },
    // Registry properties: removal planned, moved from 2.1 to 2.3 to 2.4.
    Rule {
        id: "cri-registry-mirrors",
        title: "`registry.mirrors` of the CRI plugin",
        warning: Some("io.containerd.deprecation/cri-registry-mirrors"),
        matches: &[
            at(V1, "plugins.cri.registry.mirrors"),
            at(
                V2,
                r#"plugins."io.containerd.grpc.v1.cri".registry.mirrors"#,
            ),
            at(
                V3,
                r#"plugins."io.containerd.cri.v1.images".registry.mirrors"#,
            ),
        ],
        content: Content::None,
        deprecated_in: "1.5",
        removed_in: Some("2.4"),
        instead: "set `registry.config_path` and describe mirrors in `hosts.toml` files",
    },
    Rule {
        id: "cri-registry-configs",
        title: "`registry.configs` of the CRI plugin",
        warning: Some("io.containerd.deprecation/cri-registry-configs"),
        matches: &[
            at(V1, "plugins.cri.registry.configs"),
            at(
                V2,
                r#"plugins."io.containerd.grpc.v1.cri".registry.configs"#,
            ),
            at(
                V3,
                r#"plugins."io.containerd.cri.v1.images".registry.configs"#,
            ),
        ],
        content: Content::None,
        deprecated_in: "1.5",
        removed_in: Some("2.4"),
        instead: "set `registry.config_path` and describe TLS in `hosts.toml` files; pass \
                  credentials as image pull secrets",
    },
    Rule {
        id: "cri-registry-auths",
        title: "`registry.auths` of the CRI plugin",
        warning: Some("io.containerd.deprecation/cri-registry-auths"),
        matches: &[
            at(V1, "plugins.cri.registry.auths"),
            at(V2, r#"plugins."io.containerd.grpc.v1.cri".registry.auths"#),
            at(
                V3,
                r#"plugins."io.containerd.cri.v1.images".registry.auths"#,
            ),
        ],
        content: Content::None,
        deprecated_in: "1.3",
        removed_in: Some("2.4"),
        instead: "pass credentials as image pull secrets (ImagePullSecrets)",
    },
    // Tracing settings: removal planned, moved from 2.0 to 2.3 to 2.4.
    Rule {
        id: "tracing-processor-config",
        title: "settings of the OTLP tracing processor plugin",
        warning: Some("io.containerd.deprecation/tracing-processor-config"),
        matches: &[
            at(V1, "plugins.otlp.*"),
            at(
                &[2, 3],
                r#"plugins."io.containerd.tracing.processor.v1.otlp".*"#,
            ),
        ],
        content: Content::None,
        deprecated_in: "1.6",
        removed_in: Some("2.4"),
        instead: "set OTEL_EXPORTER_OTLP_* environment variables (endpoint, protocol, \
                  insecure) on the daemon",
    },
    Rule {
        id: "tracing-service-config",
        title: "settings of the tracing service plugin",
        warning: Some("io.containerd.deprecation/tracing-service-config"),
        matches: &[
            at(V1, "plugins.tracing.*"),
            at(&[2, 3], r#"plugins."io.containerd.internal.v1.tracing".*"#),
        ],
        content: Content::None,
        deprecated_in: "1.6",
        removed_in: Some("2.4"),
        instead: "set OTEL_SERVICE_NAME and OTEL_TRACES_SAMPLER* environment variables on \
                  the daemon",
    },
    Rule {
        id: "cri-cni-bin-dir",
        title: "`cni.bin_dir` of the CRI plugin",
        warning: Some("io.containerd.deprecation/cri-cni-bin-dir"),
        matches: &[
            at(V1, "plugins.cri.cni.bin_dir"),
            at(V2, r#"plugins."io.containerd.grpc.v1.cri".cni.bin_dir"#),
            at(V3, r#"plugins."io.containerd.cri.v1.runtime".cni.bin_dir"#),
        ],
        content: Content::None,
        deprecated_in: "2.1",
        removed_in: Some("2.4"),
        instead: "write `bin_dirs = [...]` (a list) in the same section",
    },
    Rule {
        id: "enable-cdi",
        title: "`enable_cdi` of the CRI plugin",
        warning: Some("io.containerd.deprecation/enable-cdi"),
        matches: &[
            at(V2, r#"plugins."io.containerd.grpc.v1.cri".enable_cdi"#),
            at(V3, r#"plugins."io.containerd.cri.v1.runtime".enable_cdi"#),
        ],
        content: Content::None,
        deprecated_in: "2.3",
        removed_in: None,
        instead: "drop the setting: CDI is always enabled",
    },
    // Version 3 migration: containerd 2.x migrates older files in memory at
    // every start; nothing breaks yet, but the file should move.
    Rule {
        id: "config-version",
        title: "a config file older than version 3",
        warning: None,
        matches: &[at(V1, ""), is(V2, "version", "2")],
        content: Content::None,
        deprecated_in: "2.0",
        removed_in: None,
        instead: "run `containerd config migrate` and review its output (keep the old file \
                  while a rollback to 1.x is possible)",
    },
    Rule {
        id: "config-v3-cri-split",
        title: "the CRI plugin's settings (split in version 3)",
        warning: None,
        matches: &[
            at(V1, "plugins.cri"),
            at(V2, r#"plugins."io.containerd.grpc.v1.cri""#),
        ],
        content: Content::None,
        deprecated_in: "2.0",
        removed_in: None,
        instead: "in version 3, image settings (registry, snapshotter, `sandbox_image`) go \
                  to `io.containerd.cri.v1.images`, runtime settings (containerd.runtimes, \
                  cni, ...) to `io.containerd.cri.v1.runtime`",
    },
    Rule {
        id: "config-v3-sandbox-image",
        title: "`sandbox_image` of the CRI plugin",
        warning: None,
        matches: &[
            at(V1, "plugins.cri.sandbox_image"),
            at(V2, r#"plugins."io.containerd.grpc.v1.cri".sandbox_image"#),
        ],
        content: Content::None,
        deprecated_in: "2.0",
        removed_in: None,
        instead: "in version 3, write `pinned_images.sandbox` under \
                  `io.containerd.cri.v1.images`",
    },
    Rule {
        id: "config-v3-cgroups-monitor",
        title: "the cgroups task monitor plugin's old name",
        warning: None,
        matches: &[
            at(V1, "plugins.cgroups.*"),
            at(V2, r#"plugins."io.containerd.monitor.v1.cgroups".*"#),
        ],
        content: Content::None,
        deprecated_in: "2.0",
        removed_in: None,
        instead: "in version 3, the section is `io.containerd.monitor.task.v1.cgroups`",
    },
    Rule {
        id: "config-v3-restart-monitor",
        title: "the restart monitor plugin's old name",
        warning: None,
        matches: &[
            at(V1, "plugins.restart.*"),
            at(V2, r#"plugins."io.containerd.internal.v1.restart".*"#),
        ],
        content: Content::None,
        deprecated_in: "2.0",
        removed_in: None,
        instead: "in version 3, the section is `io.containerd.monitor.container.v1.restart`",
    },
    // Old names in a version 3 file are not migrated: their settings are
    // ignored without a word from the daemon.
    Rule {
        id: "config-v3-ignored-section",
        title: "a version 2 section in a version 3 file (ignored)",
        warning: None,
        matches: &[
            at(V3, r#"plugins."io.containerd.grpc.v1.cri".registry"#),
            at(V3, r#"plugins."io.containerd.grpc.v1.cri".containerd"#),
            at(V3, r#"plugins."io.containerd.grpc.v1.cri".cni"#),
            at(V3, r#"plugins."io.containerd.grpc.v1.cri".sandbox_image"#),
            at(V3, r#"plugins."io.containerd.monitor.v1.cgroups""#),
            at(V3, r#"plugins."io.containerd.internal.v1.restart""#),
        ],
        content: Content::None,
        deprecated_in: "2.0",
        removed_in: Some("2.0"),
        instead: "move the settings to their version 3 sections \
                  (`io.containerd.cri.v1.images`, `io.containerd.cri.v1.runtime`, \
                  `io.containerd.monitor.task.v1.cgroups`, \
                  `io.containerd.monitor.container.v1.restart`)",
    },
    // Raised by newer daemons for things outside the config file; listed so
    // every warning id maps to a rule.
    Rule {
        id: "nri-v010-plugin",
        title: "NRI 0.1.0-style plugins",
        warning: Some("io.containerd.deprecation/nri-v010-plugin"),
        matches: &[],
        content: Content::None,
        deprecated_in: "2.2",
        removed_in: None,
        instead: "run NRI 0.1.0 plugins only through the v010-adapter plugin",
    },
    Rule {
        id: "nri-plugin-interface",
        title: "an NRI plugin on a deprecated interface",
        warning: Some("io.containerd.deprecation/nri-plugin-interface"),
        matches: &[],
        content: Content::None,
        deprecated_in: "2.3",
        removed_in: None,
        instead: "upgrade the NRI plugin",
    },
    Rule {
        id: "cgroup-v1",
        title: "cgroup v1 on the host",
        warning: Some("io.containerd.deprecation/cgroup-v1"),
        matches: &[],
        content: Content::None,
        deprecated_in: "2.2",
        removed_in: None,
        instead: "boot the host with cgroup v2 (unified hierarchy)",
    },
    Rule {
        id: "cri-create-container-checkpoint-restore",
        title: "restoring a checkpoint in CRI CreateContainer",
        warning: Some("io.containerd.deprecation/cri-create-container-checkpoint-restore"),
        matches: &[],
        content: Content::None,
        deprecated_in: "2.2",
        removed_in: Some("2.4"),
        instead: "restore checkpoints through the CRI's dedicated calls",
    },
    Rule {
        id: "runc-options-task-api-address",
        title: "`task_api_address` in runc options",
        warning: Some("io.containerd.deprecation/runc-options-task-api-address"),
        matches: &[],
        content: Content::None,
        deprecated_in: "2.3",
        removed_in: None,
        instead: "set `task_api_address` on the CreateTask request",
    },
    Rule {
        id: "runc-options-task-api-version",
        title: "`task_api_version` in runc options",
        warning: Some("io.containerd.deprecation/runc-options-task-api-version"),
        matches: &[],
        content: Content::None,
        deprecated_in: "2.3",
        removed_in: None,
        instead: "set `task_api_version` on the CreateTask request",
    },
];

/// Looks a rule up by the warning id containerd raises.
pub fn by_warning(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|rule| rule.warning == Some(id))
}

/// Looks a rule up by its own id.
pub fn by_id(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|rule| rule.id == id)
}

/// One segment of a key path: a key, or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Any,
}

/// Splits a TOML key path into segments; quoted segments keep their dots.
fn segments(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut chars = path.chars().peekable();
    while chars.peek().is_some() {
        let mut key = String::new();
        let mut quoted = false;
        if chars.peek() == Some(&'"') {
            quoted = true;
            chars.next();
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                key.push(c);
            }
        }
        for c in chars.by_ref() {
            if c == '.' {
                break;
            }
            key.push(c);
        }
        out.push(if key == "*" && !quoted {
            Segment::Any
        } else {
            Segment::Key(key)
        });
    }
    out
}

/// Renders concrete keys as a TOML key path, quoting where TOML needs it.
pub fn render_path(keys: &[String]) -> String {
    keys.iter()
        .map(|key| {
            let bare = !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if bare {
                key.clone()
            } else {
                format!("{key:?}")
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Whether a value counts as set: not empty, zero or false.
fn is_set(value: &toml::Value) -> bool {
    use toml::Value;
    match value {
        Value::String(s) => !s.is_empty(),
        Value::Integer(n) => *n != 0,
        Value::Float(f) => *f != 0.0,
        Value::Boolean(b) => *b,
        Value::Datetime(_) => true,
        Value::Array(a) => !a.is_empty(),
        Value::Table(t) => !t.is_empty(),
    }
}

fn equals(value: &toml::Value, wanted: &str) -> bool {
    use toml::Value;
    match value {
        Value::String(s) => s == wanted,
        Value::Integer(n) => n.to_string() == wanted,
        Value::Boolean(b) => b.to_string() == wanted,
        _ => false,
    }
}

impl Match {
    /// The key paths in `file` (a config of `version`) this match hits.
    pub fn find(&self, file: &toml::Table, version: i64) -> Vec<String> {
        if !self.versions.contains(&version) {
            return Vec::new();
        }
        let root = toml::Value::Table(file.clone());
        let mut hits = Vec::new();
        walk(
            &root,
            &segments(self.path),
            &mut Vec::new(),
            &mut |keys, value| {
                let hit = match self.value {
                    Some(wanted) => equals(value, wanted),
                    None => is_set(value),
                };
                if hit {
                    hits.push(render_path(keys));
                }
            },
        );
        hits
    }
}

fn walk(
    value: &toml::Value,
    rest: &[Segment],
    keys: &mut Vec<String>,
    found: &mut dyn FnMut(&[String], &toml::Value),
) {
    let Some((first, rest)) = rest.split_first() else {
        found(keys, value);
        return;
    };
    let Some(table) = value.as_table() else {
        return;
    };
    match first {
        Segment::Key(key) => {
            if let Some(child) = table.get(key) {
                keys.push(key.clone());
                walk(child, rest, keys, found);
                keys.pop();
            }
        }
        Segment::Any => {
            for (key, child) in table {
                keys.push(key.clone());
                walk(child, rest, keys, found);
                keys.pop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_and_warnings_are_unique() {
        let mut ids = HashSet::new();
        let mut warnings = HashSet::new();
        for rule in RULES {
            assert!(ids.insert(rule.id), "{} twice", rule.id);
            if let Some(warning) = rule.warning {
                assert!(warnings.insert(warning), "{warning} twice");
                assert_eq!(
                    warning.strip_prefix("io.containerd.deprecation/"),
                    Some(rule.id),
                    "a rule with a warning is named after it"
                );
            }
        }
    }

    #[test]
    fn releases_parse_and_removal_follows_deprecation() {
        for rule in RULES {
            let deprecated = Release::parse(rule.deprecated_in).expect(rule.id);
            if let Some(removed) = rule.removed_in {
                let removed = Release::parse(removed).expect(rule.id);
                assert!(deprecated <= removed, "{}", rule.id);
            }
            assert!(!rule.instead.is_empty() && !rule.title.is_empty());
        }
    }

    #[test]
    fn every_rule_is_detectable_somehow() {
        for rule in RULES {
            assert!(
                !rule.matches.is_empty() || rule.content != Content::None || rule.warning.is_some(),
                "{} can never fire",
                rule.id
            );
            for m in rule.matches {
                assert!(!m.versions.is_empty(), "{}", rule.id);
                assert!(m.versions.iter().all(|v| (1..=3).contains(v)));
            }
        }
    }

    /// Every id of containerd's warning list, per series (pkg/deprecation).
    const KNOWN_WARNINGS: &[&str] = &[
        "pull-schema-1-image",
        "go-plugin-library",
        "cri-systemd-cgroup-v1",
        "cri-untrusted-workload-runtime",
        "cri-default-runtime",
        "cri-runtime-engine",
        "cri-runtime-root",
        "cri-registry-mirrors",
        "cri-registry-auths",
        "cri-registry-configs",
        "cri-api-v1alpha2",
        "aufs-snapshotter",
        "restart-logpath",
        "runtime-v1",
        "runtime-runc-v1",
        "cri-criu-path",
        "tracing-processor-config",
        "tracing-service-config",
        "cri-cni-bin-dir",
        "nri-v010-plugin",
        "cgroup-v1",
        "cri-create-container-checkpoint-restore",
        "nri-plugin-interface",
        "enable-cdi",
        "runc-options-task-api-address",
        "runc-options-task-api-version",
    ];

    #[test]
    fn every_known_warning_id_maps_to_a_rule() {
        for id in KNOWN_WARNINGS {
            let full = format!("io.containerd.deprecation/{id}");
            assert!(by_warning(&full).is_some(), "no rule for {full}");
        }
    }

    #[test]
    fn key_paths_split_on_unquoted_dots() {
        assert_eq!(
            segments(r#"plugins."io.containerd.grpc.v1.cri".containerd.*.x"#),
            vec![
                Segment::Key("plugins".into()),
                Segment::Key("io.containerd.grpc.v1.cri".into()),
                Segment::Key("containerd".into()),
                Segment::Any,
                Segment::Key("x".into()),
            ]
        );
        assert!(segments("").is_empty());
    }

    #[test]
    fn wildcards_and_values_match() {
        let file: toml::Table = toml::from_str(
            r#"
            [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.old]
              runtime_type = "io.containerd.runc.v1"
            [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.new]
              runtime_type = "io.containerd.runc.v2"
            "#,
        )
        .unwrap();
        let m = is(
            V2,
            r#"plugins."io.containerd.grpc.v1.cri".containerd.runtimes.*.runtime_type"#,
            RUNC_V1,
        );
        assert_eq!(
            m.find(&file, 2),
            vec![r#"plugins."io.containerd.grpc.v1.cri".containerd.runtimes.old.runtime_type"#]
        );
        assert!(m.find(&file, 3).is_empty(), "other config versions");
    }

    #[test]
    fn empty_values_do_not_count() {
        let file: toml::Table = toml::from_str(
            r#"
            [plugins."io.containerd.grpc.v1.cri"]
              systemd_cgroup = false
            [plugins."io.containerd.grpc.v1.cri".registry.mirrors]
            "#,
        )
        .unwrap();
        for id in ["cri-systemd-cgroup-v1", "cri-registry-mirrors"] {
            let rule = by_id(id).unwrap();
            assert!(rule.matches.iter().all(|m| m.find(&file, 2).is_empty()));
        }
    }

    #[test]
    fn release_parsing() {
        let r = |s| Release::parse(s);
        assert_eq!(r("2.0"), Some(Release { major: 2, minor: 0 }));
        assert_eq!(r("v1.7.24~ds1"), Some(Release { major: 1, minor: 7 }));
        assert_eq!(r("2.1.9+unknown"), Some(Release { major: 2, minor: 1 }));
        assert_eq!(r("devel"), None);
        assert!(r("1.7").unwrap() < r("2.0").unwrap());
    }
}
