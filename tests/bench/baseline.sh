#!/bin/sh
# Gathers what `rctr-diag collect` gathers the way operators do it today: one
# `ctr` call after another, each answer saved to a file, the folder packed into
# a tar.gz at the end. The collect benchmark times it against rctr-diag.
#
# usage: baseline.sh CTR ADDRESS DEBUG_SOCKET OUT_DIR [STATE_DIR]
#
#   CTR           the ctr binary of the daemon's series
#   ADDRESS       containerd's gRPC socket
#   DEBUG_SOCKET  containerd's debug socket (pprof)
#   OUT_DIR       an empty folder for the answers; OUT_DIR.tar.gz is written
#   STATE_DIR     containerd's state dir (default /run/containerd): ctr cannot
#                 find a shim that serves a group of containers by itself, so
#                 the shim's socket is read from the task's bundle there
#
# A call that fails (a subcommand this series lacks, a task that exited) leaves
# its error in its file and the script goes on, as an operator would. Exit
# status: 0 once the tar.gz is written, 2 on bad arguments.
set -u

if [ $# -lt 4 ] || [ $# -gt 5 ]; then
    echo "usage: $0 CTR ADDRESS DEBUG_SOCKET OUT_DIR [STATE_DIR]" >&2
    exit 2
fi
ctr_bin=$1
address=$2
debug_socket=$3
out=$4
state=${5:-/run/containerd}
mkdir -p "$out" || exit 2

# save FILE ARGS...: runs `ctr -a ADDRESS ARGS...` into OUT_DIR/FILE.
save() {
    file=$out/$1
    shift
    mkdir -p "$(dirname "$file")"
    "$ctr_bin" -a "$address" "$@" >"$file" 2>&1 || echo "exit status $?" >>"$file"
}

# The daemon.
save version.txt version
save info.txt info
save plugins.txt plugins ls
save deprecations.txt deprecations list
save namespaces.txt namespaces ls
save pprof/goroutines.txt pprof --debug-socket "$debug_socket" goroutines
save pprof/heap.pb.gz pprof --debug-socket "$debug_socket" heap

# The snapshotters the daemon loaded, from `ctr plugins ls`: TYPE ID PLATFORMS STATUS.
snapshotters=$(awk '$1 == "io.containerd.snapshotter.v1" && $NF == "ok" { print $2 }' \
    "$out/plugins.txt")

for ns in $("$ctr_bin" -a "$address" namespaces ls -q); do
    d=ns/$ns
    save "$d/containers.txt" -n "$ns" containers ls
    for id in $("$ctr_bin" -a "$address" -n "$ns" containers ls -q); do
        save "$d/containers/$id.json" -n "$ns" containers info "$id"
    done

    save "$d/tasks.txt" -n "$ns" tasks ls
    for id in $("$ctr_bin" -a "$address" -n "$ns" tasks ls -q); do
        save "$d/tasks/$id.ps.txt" -n "$ns" tasks ps "$id"
        save "$d/tasks/$id.metrics.txt" -n "$ns" tasks metrics "$id"

        # 2.x writes the shim's socket to bootstrap.json, 1.x to a file named address.
        bundle=$state/io.containerd.runtime.v2.task/$ns/$id
        shim_address=
        if [ -f "$bundle/bootstrap.json" ]; then
            shim_address=$(sed -n 's/.*"address":"\([^"]*\)".*/\1/p' "$bundle/bootstrap.json")
        elif [ -f "$bundle/address" ]; then
            shim_address=$(cat "$bundle/address")
        fi
        if [ -n "$shim_address" ]; then
            save "$d/tasks/$id.shim.json" -n "$ns" shim --id "$id" \
                --shim-address "$shim_address" state
        else
            save "$d/tasks/$id.shim.json" -n "$ns" shim --id "$id" state
        fi
    done

    for snapshotter in $snapshotters; do
        save "$d/snapshots/$snapshotter.usage.txt" -n "$ns" snapshots \
            --snapshotter "$snapshotter" usage
    done
    save "$d/images.txt" -n "$ns" images ls
    save "$d/leases.txt" -n "$ns" leases ls
    save "$d/content.txt" -n "$ns" content ls
done

tar -czf "$out.tar.gz" -C "$(dirname "$out")" "$(basename "$out")"
