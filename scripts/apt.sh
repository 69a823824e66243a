# Sourced by scripts/setup.sh and .ci/run: apt_install PACKAGE... installs Debian packages with apt-get as
# root, or through password-less sudo; it fails (returns 1) when neither is possible.
apt_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null && sudo -n true 2>/dev/null || return 1
    sudo="sudo"
  fi
  command -v apt-get >/dev/null || return 1
  $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

