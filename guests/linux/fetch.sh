#!/usr/bin/env bash
# Fetch Debian 13 (trixie)'s riscv64 Linux kernel and busybox-static with apt, and unpack them.
#
#   guests/linux/fetch.sh [OUT]        (default OUT: guests/build/linux)
#
# apt reads a temporary sources list naming trixie's riscv64 packages on the Debian mirror this
# machine's apt already uses (from /etc/apt/sources.list{,.d}); its lists and cache live in a
# temporary directory removed on exit, so the machine's apt setup is untouched.  apt checks
# every file it fetches: the Release file against Debian's archive key, the package index
# against the Release file's hashes, each .deb against the index's SHA256.  The .deb files are
# kept in OUT/deb and unpacked into OUT/root; a second run with them present fetches nothing.
# Writes OUT/Image (the kernel: a RISC-V Linux Image with an EFI stub), OUT/busybox,
# OUT/modules/ (the kernel's module tree) and OUT/kernel-version.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../build/linux}
mkdir -p "$out/deb"
out=$(cd "$out" && pwd)
suite=trixie
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

have_debs() {
    compgen -G "$out/deb/linux-image-*-riscv64_*_riscv64.deb" >/dev/null &&
        compgen -G "$out/deb/busybox-static_*_riscv64.deb" >/dev/null
}

# The first Debian archive URI in the machine's apt sources (one-line or deb822 format) that is
# not the security archive: the mirror apt here is allowed to reach.
debian_mirror() {
    local files=()
    [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && files+=("$f")
    done
    [ ${#files[@]} -gt 0 ] || return 0
    {
        grep -hE '^[[:space:]]*deb[[:space:]]' "${files[@]}" |
            sed -E 's/\[[^]]*\]//' | awk '{print $2}'
        grep -hE '^[[:space:]]*URIs:' "${files[@]}" | sed -E 's/^[[:space:]]*URIs:[[:space:]]*//' |
            tr ' ' '\n'
    } | grep -E '/debian/?$' | grep -v security | head -n 1 | sed -E 's#/$##'
}

if ! have_debs; then
    mirror=$(debian_mirror)
    if [ -z "$mirror" ]; then
        echo "fetch.sh: no Debian mirror in /etc/apt/sources.list{,.d}" >&2
        exit 1
    fi
    [ -f "$keyring" ] || { echo "fetch.sh: $keyring missing (apt-get install debian-archive-keyring)" >&2; exit 1; }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial"
    echo "deb [arch=riscv64 signed-by=$keyring] $mirror $suite main" >"$tmp/sources.list"
    apt_options=(-o "Dir::Etc::sourcelist=$tmp/sources.list" -o Dir::Etc::sourceparts=-
        -o APT::Architecture=riscv64 -o APT::Architectures=riscv64
        -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache"
        -o Dir::State::status=/dev/null -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
    echo "fetch.sh: reading $suite's riscv64 package index from $mirror"
    apt-get "${apt_options[@]}" -qq update
    # the newest 6.12 kernel image in the suite (its name carries the ABI version)
    kernel=$(apt-cache "${apt_options[@]}" search --names-only '^linux-image-6\.12\.[0-9.]+\+deb13-riscv64$' |
        awk '{print $1}' | sort -V | tail -n 1)
    if [ -z "$kernel" ]; then
        echo "fetch.sh: no linux-image-6.12.*-riscv64 in $suite" >&2
        exit 1
    fi
    echo "fetch.sh: downloading $kernel and busybox-static (riscv64)"
    (cd "$out/deb" && apt-get "${apt_options[@]}" -qq download "$kernel" busybox-static:riscv64)
fi
have_debs || { echo "fetch.sh: the downloads are missing from $out/deb" >&2; exit 1; }

kernel_deb=$(ls "$out"/deb/linux-image-*-riscv64_*_riscv64.deb | sort -V | tail -n 1)
busybox_deb=$(ls "$out"/deb/busybox-static_*_riscv64.deb | sort -V | tail -n 1)
stamp="$out/root/.unpacked"
if [ ! -f "$stamp" ] || [ "$kernel_deb" -nt "$stamp" ] || [ "$busybox_deb" -nt "$stamp" ]; then
    rm -rf "$out/root"
    mkdir -p "$out/root"
    dpkg-deb -x "$kernel_deb" "$out/root"
    dpkg-deb -x "$busybox_deb" "$out/root"
    touch "$stamp"
fi
image=$(ls "$out"/root/boot/vmlinu[xz]-* | head -n 1)
version=${image##*/vmlinu?-}
ln -sfn "root/boot/${image##*/}" "$out/Image"
ln -sfn root/usr/bin/busybox "$out/busybox"
ln -sfn "root/usr/lib/modules/$version" "$out/modules"
echo "$version" >"$out/kernel-version"
echo "fetch.sh: kernel $version in $out/Image"
