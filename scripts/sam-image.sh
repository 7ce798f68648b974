#!/usr/bin/env bash
# Builds, once, the base image `sam local` runs the functions in, offline: a Debian
# root file system from `debootstrap --variant=minbase` (with ca-certificates: the
# functions load root certificates at init), imported into the engine and tagged
#
#   public.ecr.aws/lambda/provided:al2023-x86_64   what `sam local ... --skip-pull-image` looks for
#   fintoc-payments/lambda-base:<key>              what `--invoke-image` can name
#
# SAM CLI layers its bundled Runtime Interface Emulator onto it. The image is cached
# by content: <key> hashes the Debian release, the package list and this recipe, so a
# change to any of them builds a new one. The root file system is kept as a tarball
# under .local/sam-image/ too, so a fresh engine imports it without debootstrap.
#
#   DOCKER_HOST=... scripts/sam-image.sh        # prints the image name to pass to --invoke-image
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

release=bookworm
packages=ca-certificates
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
recipe_version=1
key="$(printf '%s\n' "$release" "$packages" "$recipe_version" | sha256sum | cut -c1-16)"
sam_tag="public.ecr.aws/lambda/provided:al2023-x86_64"
own_tag="fintoc-payments/lambda-base:$key"
cache="$LOCAL_DIR/sam-image"
tarball="$cache/rootfs-$key.tar"

[[ "$(uname -m)" == x86_64 ]] || die "the local base image is built for x86_64 hosts only (this is $(uname -m))"

current() {
  [[ "$(docker image inspect --format '{{index .Config.Labels "org.fintoc-payments.base-key"}}' "$1" 2>/dev/null)" == "$key" ]]
}

if current "$sam_tag" && current "$own_tag"; then
  echo "$own_tag"
  exit 0
fi

mkdir -p "$cache"
if [[ ! -s "$tarball" ]]; then
  command -v debootstrap >/dev/null || [[ -x /usr/sbin/debootstrap ]] \
    || die "debootstrap is missing (scripts/docker-engine.sh start installs it with apt)"
  [[ "$(id -u)" == 0 ]] || sudo -n true 2>/dev/null || die "debootstrap needs root (or passwordless sudo)"
  run_root() { if [[ "$(id -u)" == 0 ]]; then "$@"; else sudo "$@"; fi; }
  rootfs="$cache/rootfs-$key"
  run_root rm -rf "$rootfs"
  say "debootstrap $release (minbase + $packages) from $mirror: the first time only (about 40 s)" >&2
  run_root "$(command -v debootstrap || echo /usr/sbin/debootstrap)" --variant=minbase \
    --include="$packages" "$release" "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/debootstrap.log" >&2; die "debootstrap failed (log: ${cache#"$ROOT"/}/debootstrap.log)"; }
  run_root tar -C "$rootfs" -cf "$tarball.partial" .
  run_root mv "$tarball.partial" "$tarball"
  run_root rm -rf "$rootfs"
fi
say "importing the base image into the engine ($sam_tag, $own_tag)" >&2
docker import --change "LABEL org.fintoc-payments.base-key=$key" "$tarball" "$own_tag" >/dev/null
docker tag "$own_tag" "$sam_tag"
echo "$own_tag"
