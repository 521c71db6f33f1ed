#!/usr/bin/env bash
# End-to-end test: a real Linux guest under QEMU (>= 10.1, TCG) drives the edu device that a
# vfio-user server serves, through QEMU's vfio-user-pci.
#
#   scripts/e2e/qemu-guest.sh               # the vfio-user server (UVFIO_SERVE) + QEMU + guest: expects PASS
#   scripts/e2e/qemu-guest.sh --check-qemu  # no device: checks the infrastructure (expects NO-DEVICE)
#   scripts/e2e/qemu-guest.sh --qemu-edu    # QEMU's own emulated edu instead of vfio-user (expects PASS):
#                                           # checks the guest program against the reference device
#   scripts/e2e/qemu-guest.sh --private-ram # vfio-user with guest RAM that has no file descriptor:
#                                           # QEMU maps it without one, and every device DMA becomes
#                                           # VFIO_USER_DMA_READ / _WRITE (expects PASS, and checks
#                                           # the server's log shows that path)
#
# Runs scripts/e2e/setup.sh first (idempotent; root on its first run). The guest program
# (scripts/e2e/guest) prints PASS/FAIL lines and "E2E-RESULT: ..." on the serial console.
#
# Env:
#   UVFIO_SERVE        the server command, run by bash from the repository root with $SOCK set to the
#                      socket path it must listen on; default:
#                      target/release/uvfio serve --socket $SOCK --device edu   (built with cargo first)
#   UVFIO_E2E_CACHE    cache dir (default ~/.cache/uvfio-e2e)
#   UVFIO_E2E_TIMEOUT  seconds QEMU may run (default 120)
#   UVFIO_E2E_QEMU_ARGS extra QEMU arguments (word-split)
#   UVFIO_E2E_LOG      where to keep the console log (default $cache/last-console.log)
# Exit status: 0 when the guest reported what the mode expects, 1 otherwise, 2 on bad usage.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${UVFIO_E2E_CACHE:-$HOME/.cache/uvfio-e2e}
export UVFIO_E2E_CACHE=$cache
qemu_timeout=${UVFIO_E2E_TIMEOUT:-120}
keep_log=${UVFIO_E2E_LOG:-$cache/last-console.log}

mode=vfio-user
private_ram=no
for arg in "$@"; do
    case $arg in
        --private-ram) private_ram=yes ;;
        --check-qemu) mode="check-qemu" ;;
        --qemu-edu) mode="qemu-edu" ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "qemu-guest.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
    esac
done
case $mode in
    check-qemu) expect=NO-DEVICE ;;
    *) expect=PASS ;;
esac

t0=$(date +%s)
say() { printf '[e2e +%ss] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/uvfio-e2e.XXXXXX")
server_pid=
stop_server() {
    [[ -n $server_pid ]] || return 0
    if kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$server_pid" 2>/dev/null; then
            say "server $server_pid ignored SIGTERM; SIGKILL"
            kill -KILL "$server_pid" 2>/dev/null || true
        fi
    fi
    server_status=0
    wait "$server_pid" 2>/dev/null || server_status=$?
    server_pid=
}
# shellcheck disable=SC2317 # called through the trap
cleanup() {
    stop_server
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

result() { # result PASS|FAIL message
    echo
    label=$mode; [[ $private_ram == yes ]] && label+=", private RAM"
    echo "==== uvfio e2e ($label): $1 — $2"
    if [[ $1 == PASS ]]; then echo "e2e: 1 passed, 0 failed"; exit 0; else echo "e2e: 0 passed, 1 failed"; exit 1; fi
}

say "setup"
"$here/setup.sh" || result FAIL "setup.sh failed"
qemu=$cache/bin/qemu
kernel=$cache/kernel/vmlinuz
initrd=$cache/initramfs.cpio.gz

# The guest's RAM is a shared memfd so that a vfio-user server can map it (or, with --private-ram,
# anonymous memory QEMU keeps to itself); 256 MiB keeps every page below the edu's 28-bit DMA limit.
ram_backend=memory-backend-memfd,id=mem,size=256M,share=on
[[ $private_ram == yes ]] && ram_backend=memory-backend-ram,id=mem,size=256M
# shellcheck disable=SC2054 # the commas are QEMU's
args=(
    -accel tcg -machine pc,memory-backend=mem -m 256M -smp 1
    -object "$ram_backend"
    -nodefaults -nographic -serial stdio -no-reboot
    -kernel "$kernel" -initrd "$initrd"
    -append 'console=ttyS0 quiet panic=-1'
)

case $mode in
    vfio-user)
        export SOCK=$tmp/vfio-user.sock
        if [[ -z ${UVFIO_SERVE:-} ]]; then
            say "cargo build --release --bin uvfio"
            (cd "$repo" && cargo build --release --locked --quiet --bin uvfio) || result FAIL "cargo build --release --locked --bin uvfio failed (or set UVFIO_SERVE to another server command)"
            # shellcheck disable=SC2016 # $SOCK is expanded by the bash that runs the server
            serve='target/release/uvfio serve --socket "$SOCK" --device edu'
        else
            serve=$UVFIO_SERVE
        fi
        say "server: $serve (SOCK=$SOCK)"
        # Debug logging shows each DMA map with or without a descriptor (checked below).
        (cd "$repo" && UVFIO_LOG=${UVFIO_LOG:-debug} exec bash -c "exec $serve") >"$tmp/server.log" 2>&1 </dev/null &
        server_pid=$!
        for _ in $(seq 300); do
            [[ -S $SOCK ]] && break
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        if [[ ! -S $SOCK ]]; then
            alive=no; kill -0 "$server_pid" 2>/dev/null && alive=yes
            stop_server
            echo "---- server log (tail)"; tail -n 30 "$tmp/server.log"
            if [[ $alive == yes ]]; then
                result FAIL "the server did not create $SOCK within 30 s"
            fi
            result FAIL "the server exited (status $server_status) before creating its socket"
        fi
        say "server $server_pid listening on $SOCK"
        args+=(-device "{\"driver\":\"vfio-user-pci\",\"socket\":{\"path\":\"$SOCK\",\"type\":\"unix\"}}")
        ;;
    qemu-edu)
        args+=(-device edu)
        ;;
esac
# shellcheck disable=SC2206 # word splitting wanted
[[ -n ${UVFIO_E2E_QEMU_ARGS:-} ]] && args+=($UVFIO_E2E_QEMU_ARGS)

log=$tmp/console.log
say "booting the guest (QEMU TCG, timeout ${qemu_timeout}s): $(cat "$cache/kernel/VERSION" 2>/dev/null)"
boot_start=$(date +%s.%N)
set +e
timeout --kill-after=10 "$qemu_timeout" "$qemu" "${args[@]}" </dev/null 2>&1 | tee "$log"
qemu_status=${PIPESTATUS[0]}
set -e
boot_secs=$(awk -v a="$(date +%s.%N)" -v b="$boot_start" 'BEGIN { printf "%.1f", a - b }')
mkdir -p "$(dirname "$keep_log")"
tr -d '\r' <"$log" >"$keep_log"

server_note=
if [[ $mode == vfio-user ]]; then
    stop_server
    server_note="; server exit status $server_status"
    cp "$tmp/server.log" "${keep_log%.log}-server.log"
    echo "---- server log (tail; all in ${keep_log%.log}-server.log)"
    tail -n 20 "$tmp/server.log"
    with_fd=$(grep -c 'DMA map .* from offset' "$tmp/server.log" || true)
    without_fd=$(grep -c 'DMA map .* without a descriptor' "$tmp/server.log" || true)
    server_note+="; DMA maps: $with_fd with a descriptor, $without_fd without"
    if [[ $private_ram == yes ]] && (( without_fd == 0 )); then
        result FAIL "--private-ram: the server's log shows no DMA map without a descriptor$server_note"
    fi
fi

got=$(sed -n 's/^.*E2E-RESULT: \([A-Z-]*\).*$/\1/p' "$keep_log" | tail -n 1)
echo "---- guest checks"
grep -E '^(PASS|FAIL) ' "$keep_log" || echo "(none)"
info="QEMU exit $qemu_status after ${boot_secs}s$server_note; console log $keep_log"
if (( qemu_status == 124 || qemu_status == 137 )); then
    result FAIL "QEMU timed out after ${qemu_timeout}s (guest result: ${got:-none}); $info"
fi
if [[ -z $got ]]; then
    result FAIL "no E2E-RESULT line on the console; $info"
fi
if [[ $got != "$expect" ]]; then
    result FAIL "guest reported $got, expected $expect; $info"
fi
if (( qemu_status != 0 )); then
    result FAIL "guest reported $got but QEMU exited with $qemu_status; $info"
fi
result PASS "guest reported $got; $info"
