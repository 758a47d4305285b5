#!/usr/bin/env bash
# edge-csms: set up, run, test, or install as a systemd service.
#
#   ./deploy.sh run [serve options]   set up .venv and run the service in the foreground
#   ./deploy.sh test [pytest options] set up .venv with test tools; lint, type-check, test
#   sudo ./deploy.sh install          install as the systemd service "edge-csms"
#   sudo ./deploy.sh uninstall        stop and remove the service (keeps data and config)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"

die() { echo "deploy.sh: $*" >&2; exit 1; }

need_python() {
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found; install Python 3.11 or newer"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "Python 3.11 or newer is required ($("$PYTHON" --version 2>&1) found)"
    # Debian and Raspberry Pi OS ship venv/ensurepip separately.
    if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq && apt-get install -y -qq python3-venv
        else
            die "the Python venv module is missing: sudo apt-get install python3-venv"
        fi
    fi
}

# make_venv DIR EXTRAS: create DIR and install this project into it; reinstalls only
# when pyproject.toml changed since the last install.
make_venv() {
    local venv="$1" extras="$2" stamp
    need_python
    [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
    stamp="$(sha256sum "$here/pyproject.toml" | cut -c1-16)-$extras"
    if [ "$(cat "$venv/.edge-csms-installed" 2>/dev/null)" != "$stamp" ]; then
        "$venv/bin/python" -m pip install -q --upgrade pip
        "$venv/bin/python" -m pip install -q -e "$here$extras"
        echo "$stamp" > "$venv/.edge-csms-installed"
    fi
}

cmd="${1:-}"; shift || true
case "$cmd" in
run)
    make_venv "$here/.venv" ""
    cd "$here"
    # First run: make the API token (the page's login too) and show it once; only its
    # hash is kept.
    token=$("$here/.venv/bin/edge-csms" token init "$@")
    [ -z "$token" ] || echo "API token (shown once; \`edge-csms token rotate\` makes a new one): $token"
    exec "$here/.venv/bin/edge-csms" serve "$@"
    ;;
test)
    make_venv "$here/.venv" "[test]"
    # The page's browser tests drive Debian's chromium (they fail under CI without it).
    if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends chromium
    fi
    cd "$here"
    .venv/bin/ruff check edge drivers profiles tests bench
    .venv/bin/ruff format --check edge drivers profiles tests bench
    .venv/bin/mypy
    exec .venv/bin/python -m pytest "$@"
    ;;
install)
    [ "$(id -u)" = 0 ] || die "install needs root: sudo ./deploy.sh install"
    command -v systemctl >/dev/null || die "systemd is required"
    prefix=/opt/edge-csms
    id edge-csms >/dev/null 2>&1 || useradd --system --home-dir /var/lib/edge-csms \
        --shell /usr/sbin/nologin --groups dialout edge-csms
    install -d -o edge-csms -g edge-csms -m 0750 /var/lib/edge-csms
    install -d -m 0755 /etc/edge-csms "$prefix"
    # Copy the source tree (not .venv, data or caches) and install it into its own venv.
    rm -rf "$prefix/src" && install -d "$prefix/src"
    tar -C "$here" --exclude=./.venv --exclude=./data --exclude=./.git --exclude='*.pyc' \
        --exclude=.pytest_cache --exclude=.hypothesis -cf - . | tar -C "$prefix/src" -xf -
    here="$prefix/src" make_venv "$prefix/venv" "[serial]"
    # The unit makes /opt read-only to the service: compile now, or every start would.
    "$prefix/venv/bin/python" -m compileall -q "$prefix/src/edge" "$prefix/src/drivers" \
        "$prefix/src/profiles" >/dev/null
    if [ ! -f /etc/edge-csms/config.toml ]; then
        sed 's|^data_dir = .*|data_dir = "/var/lib/edge-csms"|' \
            "$here/systemd/config.example.toml" > /etc/edge-csms/config.toml
        chmod 0640 /etc/edge-csms/config.toml
        chgrp edge-csms /etc/edge-csms/config.toml
        echo "wrote /etc/edge-csms/config.toml: review it, then: systemctl restart edge-csms"
    fi
    install -m 0644 "$here/systemd/edge-csms.service" /etc/systemd/system/edge-csms.service
    systemctl daemon-reload
    systemctl enable edge-csms
    # restart, not start: a reinstall must run the new code. The unit is Type=notify,
    # so this returns once the service is listening (or has failed).
    started=yes
    systemctl restart edge-csms || started=no
    systemctl --no-pager status edge-csms || true
    [ "$started" = yes ] || die "edge-csms did not start: journalctl -u edge-csms -p warning"
    # The first install makes the API token and shows it once (only its hash is kept;
    # the file is given to the data directory's owner).
    token=$("$prefix/venv/bin/edge-csms" token init --config /etc/edge-csms/config.toml)
    [ -z "$token" ] || echo "API token (shown once): $token"
    echo "A new API token (the previous stops working):"
    echo "  sudo $prefix/venv/bin/edge-csms token rotate --config /etc/edge-csms/config.toml"
    ;;
uninstall)
    [ "$(id -u)" = 0 ] || die "uninstall needs root"
    systemctl disable --now edge-csms 2>/dev/null || true
    rm -f /etc/systemd/system/edge-csms.service
    systemctl daemon-reload
    rm -rf /opt/edge-csms
    echo "removed the service; data in /var/lib/edge-csms and /etc/edge-csms kept"
    ;;
*)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
