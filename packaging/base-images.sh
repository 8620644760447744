#!/usr/bin/env bash
# Make packaging/Dockerfile's base images here, with mmdebstrap from Debian's archive, and tag them
# with its FROM names, so that `podman build --pull=never` needs no container registry:
#   python:3.11-slim-bookworm  Debian 12's python3 (3.11, with venv and the shared libpython that
#                              PyInstaller collects) and the build tools the Dockerfile installs
#   debian:bookworm-slim       a minimal Debian 12
# Debian's python is EXTERNALLY-MANAGED (PEP 668), so the Dockerfile builds in a venv, as it also
# does on the registry's python image. Uses $PODMAN (default: podman), e.g. a private storage root:
#   PODMAN="podman --root /tmp/x/root --runroot /tmp/x/run" bash packaging/base-images.sh
set -euo pipefail
read -r -a podman <<<"${PODMAN:-podman}"

make_image() {
  local name="$1"
  shift
  mmdebstrap --quiet --variant=minbase "$@" bookworm - |
    "${podman[@]}" import --change 'CMD ["/bin/bash"]' - "$name" >/dev/null
}

make_image docker.io/library/debian:bookworm-slim
make_image docker.io/library/python:3.11-slim-bookworm \
  --include=python3,python3-venv,libpython3.11,binutils,gcc,libc6-dev
