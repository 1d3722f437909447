# shellcheck shell=bash
# Sourced by the other scripts: makes sure the Python venv that provides libtorch 2.13.0
# (for tch 0.26) and cmake (for chemfiles' build-from-sources) exists, then exports the
# variables cargo needs. Safe to source repeatedly: a complete venv is never rebuilt.
#
# The venv lives outside the checkout so that every clone on this machine shares the
# ~2.5 GB download. Override its place with BOLTZGEN_VENV.

BOLTZGEN_TORCH_VERSION=2.13.0
# chemfiles 0.10 declares cmake_minimum_required < 3.5, which CMake 4 refuses.
BOLTZGEN_CMAKE_SPEC="cmake>=3.20,<4"
BOLTZGEN_VENV="${BOLTZGEN_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/boltzgen/venv}"
_boltzgen_marker="$BOLTZGEN_VENV/.boltzgen-ready-torch-$BOLTZGEN_TORCH_VERSION-cmake3"

if [ ! -f "$_boltzgen_marker" ]; then
    echo "boltzgen: setting up the Python venv at $BOLTZGEN_VENV (torch==$BOLTZGEN_TORCH_VERSION, cmake 3); this happens once" >&2
    mkdir -p "$(dirname "$BOLTZGEN_VENV")"
    if [ ! -x "$BOLTZGEN_VENV/bin/python" ]; then
        python3 -m venv "$BOLTZGEN_VENV" || return 1 2>/dev/null || exit 1
    fi
    "$BOLTZGEN_VENV/bin/python" -m pip install --quiet "torch==$BOLTZGEN_TORCH_VERSION" "$BOLTZGEN_CMAKE_SPEC" numpy \
        || return 1 2>/dev/null || exit 1
    "$BOLTZGEN_VENV/bin/python" -c "import torch; assert torch.__version__.startswith('$BOLTZGEN_TORCH_VERSION'), torch.__version__" \
        || return 1 2>/dev/null || exit 1
    touch "$_boltzgen_marker"
fi

# Open MPI (the `mpi` feature: `mpirun -np N boltzgen sample …`) and libclang (bindgen, which
# mpi-sys runs to read mpi.h), from Debian's packages, once. A build without the feature needs
# neither; the scripts build with it so that the MPI tests run.
if ! command -v mpicc >/dev/null 2>&1 || ! command -v mpirun >/dev/null 2>&1 \
    || ! ldconfig -p 2>/dev/null | grep -q 'libclang-[0-9.]*\.so '; then
    echo "boltzgen: installing Open MPI and libclang from Debian's packages; this happens once" >&2
    _boltzgen_sudo=""
    if [ "$(id -u)" -ne 0 ]; then _boltzgen_sudo="sudo"; fi
    _boltzgen_apt() {
        $_boltzgen_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            libopenmpi-dev openmpi-bin libclang-dev >/dev/null
    }
    # A fresh machine may have no package lists yet: update them only when the install fails.
    _boltzgen_apt || { $_boltzgen_sudo apt-get update >/dev/null && _boltzgen_apt; } \
        || return 1 2>/dev/null || exit 1
    unset -f _boltzgen_apt
    unset _boltzgen_sudo
fi

# tch's build script asks this python where torch lives; cmake comes from the same venv.
export PATH="$BOLTZGEN_VENV/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
# The venv's python (with torch): tests export TorchScript fixtures with it.
export BOLTZGEN_PYTHON="$BOLTZGEN_VENV/bin/python"
# Every build of the scripts enables the C ABI and MPI. One feature set for all of them
# matters: cargo names the cdylib target/release/libboltzgen.so whatever the features, so a
# build without `capi` would replace the library that the C tests link against (and a second
# feature set would build the crate twice).
export BOLTZGEN_CARGO_FEATURES="boltzgen/capi,boltzgen/mpi"
unset _boltzgen_marker
