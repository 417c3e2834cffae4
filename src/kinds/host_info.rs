//! `host-info`: the machine's OS, kernel, uptime, CPUs, memory and load.

use serde::Serialize;
use sysinfo::{CpuRefreshKind, System};

use super::{CollectError, Outcome};
use crate::bundle::Output;

#[derive(Serialize)]
struct HostInfo {
    hostname: Option<String>,
    os: Option<String>,
    kernel: Option<String>,
    arch: String,
    uptime_seconds: u64,
    boot_time: String,
    cpus: Cpus,
    memory: Memory,
    load_average: Load,
}

#[derive(Serialize)]
struct Cpus {
    logical: usize,
    physical: Option<usize>,
    brand: Option<String>,
}

#[derive(Serialize)]
struct Memory {
    total_bytes: u64,
    available_bytes: u64,
    used_bytes: u64,
    free_bytes: u64,
    swap_total_bytes: u64,
    swap_used_bytes: u64,
}

#[derive(Serialize)]
struct Load {
    one: f64,
    five: f64,
    fifteen: f64,
}

pub async fn collect(out: &Output) -> Result<Outcome, CollectError> {
    // sysinfo reads /proc synchronously.
    let info = tokio::task::spawn_blocking(read)
        .await
        .expect("reading host facts does not panic");
    out.put_json(&info).await?;
    Ok(Outcome::Done)
}

fn read() -> HostInfo {
    let mut system = System::new();
    system.refresh_memory();
    system.refresh_cpu_list(CpuRefreshKind::nothing());
    let load = System::load_average();
    let boot = System::boot_time();
    HostInfo {
        hostname: System::host_name(),
        os: System::long_os_version(),
        kernel: System::kernel_version(),
        arch: System::cpu_arch(),
        uptime_seconds: System::uptime(),
        boot_time: super::epoch_rfc3339(boot),
        cpus: Cpus {
            logical: system.cpus().len(),
            physical: System::physical_core_count(),
            brand: system
                .cpus()
                .first()
                .map(|cpu| cpu.brand().trim().to_string()),
        },
        memory: Memory {
            total_bytes: system.total_memory(),
            available_bytes: system.available_memory(),
            used_bytes: system.used_memory(),
            free_bytes: system.free_memory(),
            swap_total_bytes: system.total_swap(),
            swap_used_bytes: system.used_swap(),
        },
        load_average: Load {
            one: load.one,
            five: load.five,
            fifteen: load.fifteen,
        },
    }
}
