#!/usr/bin/env bash
# Build the installer image from packaging/Dockerfile with Debian's podman and no registry: the base
# images come from packaging/base-images.sh (made once per storage root), and --pull=never.
#   bash packaging/build-image.sh cni-hwol:0.1.0
# $PODMAN as in base-images.sh. Where the base images can be pulled, the same Dockerfile builds
# unchanged with `podman build` or `docker build`.
set -euo pipefail
cd "$(dirname "$0")/.."
tag="$1"
read -r -a podman <<<"${PODMAN:-podman}"
for image in docker.io/library/debian:bookworm-slim docker.io/library/python:3.11-slim-bookworm; do
  "${podman[@]}" image exists "$image" || { bash packaging/base-images.sh && break; }
done
# The build's RUN steps fetch Debian and PyPI packages: the host's network, not a container one.
# Explicit rlimits, enough for apt, pip and PyInstaller: buildah's defaults may exceed what a
# sandboxed machine lets runc set.
# The RUN steps trust what this machine trusts (a TLS-inspecting proxy's CA, say): its certificate
# store and its /etc/pip.conf (which may name that store), read-only; the image keeps neither.
trust=(--volume /etc/ssl/certs:/etc/ssl/certs:ro)
[ -f /etc/pip.conf ] && trust+=(--volume /etc/pip.conf:/etc/pip.conf:ro)
"${podman[@]}" build --pull=never --network=host --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
  "${trust[@]}" --file packaging/Dockerfile --tag "$tag" .
