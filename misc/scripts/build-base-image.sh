#!/usr/bin/env bash
# Build the base image of our own containers (the Dagster code-location image) from Debian
# packages alone: there is no Docker Hub to pull `debian:bookworm` from, so the root filesystem
# is made with debootstrap and turned into an image with `docker import`.
#
#   misc/scripts/build-base-image.sh [IMAGE]        default IMAGE: local/debian-py:bookworm
#
# Idempotent: an IMAGE that exists already is kept (REBUILD=1 forces a new one). Needs root
# (debootstrap chroots) and the `debootstrap` package; DEBIAN_MIRROR overrides the mirror.
# About a minute on 2 cores, most of it unpacking packages.
set -euo pipefail

image="${1:-local/debian-py:bookworm}"
suite="${DEBIAN_SUITE:-bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
packages="python3,python3-venv,ca-certificates,git"

if [ -z "${REBUILD:-}" ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image exists (REBUILD=1 to rebuild)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "build-base-image: debootstrap needs root" >&2
  exit 1
fi
command -v debootstrap >/dev/null || { echo "build-base-image: apt-get install debootstrap" >&2; exit 1; }

rootfs="$(mktemp -d "${TMPDIR:-/tmp}/debian-py-rootfs.XXXXXX")"
trap 'rm -rf "$rootfs"' EXIT
start=$SECONDS
echo "debootstrap $suite ($packages) from $mirror ..."
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
  echo "build-base-image: debootstrap failed; last lines of $rootfs.log:" >&2
  tail -20 "$rootfs.log" >&2
  exit 1
}
rm -f "$rootfs.log"
# Smaller image, nothing that would go stale inside it: apt lists and caches, docs.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
       "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
tar -C "$rootfs" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  --message "debootstrap --variant=minbase --include=$packages $suite" - "$image" >/dev/null
echo "base image $image built in $((SECONDS - start)) s ($(docker image inspect -f '{{.Size}}' "$image") bytes)"
