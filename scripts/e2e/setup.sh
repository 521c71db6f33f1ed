#!/usr/bin/env bash
# End-to-end test infrastructure: builds (once) and checks (every time) the cache that
# scripts/e2e/qemu-guest.sh boots a Linux guest from.
#
#   scripts/e2e/setup.sh               # everything: sid QEMU, guest kernel, busybox, guest program, initramfs
#   scripts/e2e/setup.sh --no-guest    # only the downloaded parts (no cargo build, no initramfs)
#
# The cache, ${UVFIO_E2E_CACHE:-$HOME/.cache/uvfio-e2e}, holds every download:
#   sid/                 Debian sid root (debootstrap minbase) with qemu-system-x86 and busybox-static
#   bin/qemu             runs sid's qemu-system-x86_64 on this host through sid's own loader (no chroot)
#   kernel/vmlinuz       the guest kernel, from the package linux-image-amd64 depends on in sid
#   busybox              busybox-static from sid
#   guest-target/        cargo target dir of scripts/e2e/guest
#   initramfs.cpio.gz    busybox + the guest program + /init
# Debian bookworm's QEMU (7.2) predates vfio-user-pci (QEMU 10.1), hence sid's.
# Idempotent: each step checks what exists; a second run takes seconds.
# Env: UVFIO_E2E_CACHE (cache dir), UVFIO_E2E_MIRROR (Debian mirror; default: the one apt uses here).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${UVFIO_E2E_CACHE:-$HOME/.cache/uvfio-e2e}
root=$cache/sid
build_guest=1
for arg in "$@"; do
    case $arg in
        --no-guest) build_guest=0 ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done

t0=$(date +%s)
say() { printf '[e2e-setup +%ss] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }
die() { printf '[e2e-setup] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $(uname -m) == x86_64 ]] || die "only x86_64 hosts are supported"
mkdir -p "$cache" "$cache/bin" "$cache/kernel"

need_root() { [[ $(id -u) == 0 ]] || die "$1 needs root (debootstrap/chroot); run once as root"; }

# The Debian mirror this machine's apt already uses (deb822 "URIs:" or one-line "deb URL suite").
find_mirror() {
    local f uri
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -r $f ]] || continue
        uri=$(awk '
            /^[[:space:]]*#/ { next }
            $1 == "URIs:" { for (i = 2; i <= NF; i++) print $i; next }
            $1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; break } }
        ' "$f" | grep -E '/debian/?$' | head -n1 || true)
        if [[ -n $uri ]]; then echo "${uri%/}"; return; fi
    done
    echo http://deb.debian.org/debian
}

# apt/dpkg inside the sid root want /proc; mount it for the duration of a command only.
in_sid() {
    local mounted=0 rc=0
    if ! mountpoint -q "$root/proc"; then mount -t proc proc "$root/proc" && mounted=1; fi
    local -a envs=(PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8)
    local v
    for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
        [[ -n ${!v:-} ]] && envs+=("$v=${!v}")
    done
    chroot "$root" /usr/bin/env -i "${envs[@]}" "$@" || rc=$?
    if (( mounted )); then umount "$root/proc" || umount -l "$root/proc" || true; fi
    return "$rc"
}

# 1. debootstrap on the host
if ! command -v debootstrap >/dev/null; then
    need_root "installing debootstrap"
    say "installing debootstrap (apt)"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

# 2. the sid root
if [[ ! -e $root/.uvfio-debootstrap-ok ]]; then
    need_root "debootstrap"
    mirror=${UVFIO_E2E_MIRROR:-$(find_mirror)}
    if [[ -d $root ]]; then
        say "removing an incomplete sid root"
        mountpoint -q "$root/proc" && umount -l "$root/proc"
        rm -rf --one-file-system "$root"
    fi
    say "debootstrap --variant=minbase sid from $mirror (a few minutes)"
    debootstrap --variant=minbase sid "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 \
        || { tail -n 20 "$cache/debootstrap.log" >&2; die "debootstrap failed (log: $cache/debootstrap.log)"; }
    touch "$root/.uvfio-debootstrap-ok"
    say "sid root ready"
else
    say "sid root present"
fi

# sid's Release files may look expired to a host with a skewed clock; no recommends; no binary
# package caches (110 MB that apt rebuilds when needed); downloads as root (no _apt sandbox).
apt_conf='Acquire::Check-Valid-Until "false";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
APT::Sandbox::User "root";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";'
if [[ $(cat "$root/etc/apt/apt.conf.d/90uvfio-e2e" 2>/dev/null) != "$apt_conf" ]]; then
    printf '%s\n' "$apt_conf" >"$root/etc/apt/apt.conf.d/90uvfio-e2e"
fi
rm -f "$root"/var/cache/apt/*.bin

# apt's package lists (100 MB) are dropped at the end of a run and fetched again only when needed.
sid_apt_update() {
    if ! compgen -G "$root/var/lib/apt/lists/*_Packages*" >/dev/null; then
        say "apt-get update (sid)"
        in_sid apt-get update -qq
    fi
}

# 3. QEMU and busybox-static inside it
if [[ ! -x $root/usr/bin/qemu-system-x86_64 || ! -x $root/usr/bin/busybox ]]; then
    need_root "apt-get inside the sid root"
    say "apt-get install qemu-system-x86 busybox-static (sid)"
    sid_apt_update
    in_sid apt-get install -y -qq --no-install-recommends qemu-system-x86 busybox-static >"$cache/apt-qemu.log" 2>&1 \
        || { tail -n 20 "$cache/apt-qemu.log" >&2; die "apt-get install in sid failed (log: $cache/apt-qemu.log)"; }
    in_sid apt-get clean
else
    say "sid qemu-system-x86 and busybox-static present"
fi

# 4. the qemu wrapper: sid's binary through sid's loader and libraries, firmware from sid
cat >"$cache/bin/qemu.new" <<WRAP
#!/bin/sh
# Generated by scripts/e2e/setup.sh: sid's qemu-system-x86_64 run on this host without chroot.
R='$root'
exec "\$R/lib64/ld-linux-x86-64.so.2" \\
    --library-path "\$R/usr/lib/x86_64-linux-gnu:\$R/lib/x86_64-linux-gnu" \\
    "\$R/usr/bin/qemu-system-x86_64" \\
    -L "\$R/usr/share/qemu" -L "\$R/usr/share/seabios" -L "\$R/usr/lib/ipxe/qemu" \\
    "\$@"
WRAP
chmod +x "$cache/bin/qemu.new"
if cmp -s "$cache/bin/qemu.new" "$cache/bin/qemu"; then rm "$cache/bin/qemu.new"; else mv "$cache/bin/qemu.new" "$cache/bin/qemu"; fi
qemu_version=$("$cache/bin/qemu" --version | head -n1) || die "the qemu wrapper does not run"
say "qemu: $qemu_version"
ver=$(sed -E 's/.*version ([0-9]+)\.([0-9]+).*/\1 \2/' <<<"$qemu_version")
read -r qmaj qmin <<<"$ver"
(( qmaj > 10 || (qmaj == 10 && qmin >= 1) )) || die "need QEMU >= 10.1 for vfio-user-pci, have $qemu_version"
"$cache/bin/qemu" -device help 2>/dev/null | grep -q '"vfio-user-pci"' || die "this QEMU has no vfio-user-pci device"

# 5. the guest kernel: the package linux-image-amd64 depends on; since Linux 7.x in sid that one is
# a shell whose vmlinuz sits in a linux-binary-* dependency (as usr/lib/modules/VERSION/vmlinuz, not
# boot/vmlinuz-VERSION), so follow the chain until a package has it.
if [[ ! -s $cache/kernel/vmlinuz ]]; then
    need_root "apt-get download inside the sid root"
    sid_apt_update
    deps_of() { in_sid apt-cache depends "$1" | awk '$1 == "Depends:" && $2 ~ /^linux-(image|binary)-/ { print $2 }'; }
    todo=$(deps_of linux-image-amd64 | head -n1)
    [[ -n $todo ]] || die "cannot tell which kernel package linux-image-amd64 depends on in sid"
    dl=$root/var/tmp/uvfio-kernel
    x=$cache/kernel/extract
    vml=
    for _ in 1 2 3; do
        pkg=${todo%% *}
        [[ -n $pkg ]] || break
        say "downloading $pkg (sid)"
        rm -rf "$dl"; mkdir -p "$dl"
        in_sid sh -c "cd /var/tmp/uvfio-kernel && apt-get download -qq $pkg" || die "apt-get download $pkg failed"
        deb=$(find "$dl" -name "*.deb" | head -n1)
        listing=$(dpkg-deb -c "$deb")  # not piped into grep -q: SIGPIPE under pipefail
        if grep -Eq '/boot/vmlinuz-|/lib/modules/[^/]+/vmlinuz$' <<<"$listing"; then
            say "extracting vmlinuz from $(basename "$deb")"
            rm -rf "$x"; mkdir -p "$x"
            dpkg-deb -x "$deb" "$x"
            vml=$(find "$x" \( -path '*/boot/vmlinuz-*' -o -path '*/lib/modules/*/vmlinuz' \) -type f | head -n1)
            break
        fi
        todo=$(deps_of "$pkg" | tr '\n' ' ')
    done
    [[ -n $vml ]] || die "found no vmlinuz in the sid kernel packages"
    cp "$vml" "$cache/kernel/vmlinuz.new"
    if [[ $vml == */boot/vmlinuz-* ]]; then kver=${vml##*/vmlinuz-}; else kver=$(basename "$(dirname "$vml")"); fi
    echo "$kver" >"$cache/kernel/VERSION"
    echo "$pkg" >"$cache/kernel/PACKAGE"
    mv "$cache/kernel/vmlinuz.new" "$cache/kernel/vmlinuz"
    rm -rf "$x" "$dl"
    rm -f "$root"/var/cache/apt/*.bin
else
    say "guest kernel present ($(cat "$cache/kernel/VERSION" 2>/dev/null || echo '?'))"
fi

# 6. busybox (static) for the initramfs
if [[ ! -x $cache/busybox ]]; then
    cp "$root/usr/bin/busybox" "$cache/busybox.new"
    mv "$cache/busybox.new" "$cache/busybox"
fi
"$cache/busybox" true 2>/dev/null || die "$cache/busybox does not run (not static?)"

rm -rf "$root"/var/lib/apt/lists/*_{Packages,Sources,Translation,Release,InRelease}* "$root"/var/cache/apt/*.bin

if (( ! build_guest )); then
    say "done (without the guest program); cache: $cache"
    exit 0
fi

# 7. the guest program: a static binary, its own target dir in the cache
command -v cargo >/dev/null || die "cargo is needed to build the guest program"
say "building the guest program (cargo, static)"
RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet --release --locked \
    --manifest-path "$here/guest/Cargo.toml" --target x86_64-unknown-linux-gnu \
    --target-dir "$cache/guest-target"
guest_bin=$cache/guest-target/x86_64-unknown-linux-gnu/release/uvfio-e2e-guest
[[ -x $guest_bin ]] || die "no guest binary at $guest_bin"
if ldd "$guest_bin" 2>&1 | grep -q '=>'; then die "the guest program is not static"; fi

# 8. the initramfs: rebuilt when the guest program, busybox, /init or this script is newer
initrd=$cache/initramfs.cpio.gz
if [[ ! -s $initrd || $guest_bin -nt $initrd || $cache/busybox -nt $initrd || $here/init -nt $initrd || $0 -nt $initrd ]]; then
    say "building the initramfs"
    st=$cache/initramfs
    rm -rf "$st"
    mkdir -p "$st"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,root}
    cp "$cache/busybox" "$st/bin/busybox"
    ln -s busybox "$st/bin/sh"
    cp "$guest_bin" "$st/bin/uvfio-e2e-guest"
    cp "$here/init" "$st/init"
    chmod 0755 "$st/init" "$st/bin/busybox" "$st/bin/uvfio-e2e-guest"
    # busybox's cpio writes the newc archive; no host cpio needed.
    (cd "$st" && find . | LC_ALL=C sort | "$cache/busybox" cpio -o -H newc 2>/dev/null) | gzip -9 >"$initrd.new"
    mv "$initrd.new" "$initrd"
    rm -rf "$st"
    say "initramfs: $(du -h "$initrd" | cut -f1)"
else
    say "initramfs up to date"
fi
say "done; cache: $cache ($(du -sh "$cache" 2>/dev/null | cut -f1))"
