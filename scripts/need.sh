# shellcheck shell=bash
# Sourced by scripts and benches: `need COMMAND PACKAGE [WHY]` installs a Debian package
# when the command it provides is missing. A package that starts a system service
# (prometheus on :9090, Alertmanager on :9093, nginx on :80) has it stopped, under the
# package's and the command's names: tests and benches start what they need themselves.
need() {
    local cmd=$1 pkg=$2 why=${3:-} sudo=""
    command -v "$cmd" >/dev/null 2>&1 && return 0
    echo "== installing $pkg (apt${why:+, $why})" >&2
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$pkg" >/dev/null
    $sudo systemctl stop "$pkg" 2>/dev/null || true
    $sudo systemctl stop "$cmd" 2>/dev/null || true
}
