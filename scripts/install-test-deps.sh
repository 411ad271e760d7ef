#!/usr/bin/env bash
# Installs the external tools the tests drive, if they are missing: the NBD clients qemu-io
# (qemu-utils), nbdinfo/nbdcopy (libnbd-bin) and fio with its nbd engine; nbdkit, the reference
# server; ip (iproute2) and nft (nftables), which build the network namespaces and partitions of
# test/e2e/partition.test.ts; losetup, blkid and mount (util-linux, mount) and mkfs.ext4
# (e2fsprogs), with which test/eks formats and mounts loop devices as an agent does EBS drives.
set -euo pipefail

declare -A package_of=(
  [qemu-io]=qemu-utils
  [nbdinfo]=libnbd-bin
  [nbdcopy]=libnbd-bin
  [fio]=fio
  [nbdkit]=nbdkit
  [ip]=iproute2
  [nft]=nftables
  [losetup]=util-linux
  [blkid]=util-linux
  [mount]=mount
  [mkfs.ext4]=e2fsprogs
)

missing=()
for tool in "${!package_of[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${package_of[$tool]}")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "test dependencies: all present (qemu-io, nbdinfo, nbdcopy, fio, nbdkit, ip, nft, losetup, blkid, mount, mkfs.ext4)"
  exit 0
fi

mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root (or sudo) to install: ${packages[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "installing test dependencies: ${packages[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "test dependencies installed"
