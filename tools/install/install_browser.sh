#!/usr/bin/env bash
# Chromium and ChromeDriver from Debian's packages (chromium, chromium-driver) for the demo's
# browser test (tests/test_tools/test_demo_browser.py). Run by setup_env.sh (`make env`).
# Installs them with apt-get when they are missing and this runs as root with apt-get; never
# fails the install: where it cannot, it says why and the browser test is skipped with that
# reason. No browser is ever downloaded by a test library.
#
# Environment: MMEVF_CHROMIUM / MMEVF_CHROMEDRIVER (default /usr/bin/chromium,
#   /usr/bin/chromedriver: where the test looks), MMEVF_SKIP_BROWSER=1 (install nothing).
set -uo pipefail

CHROMIUM=${MMEVF_CHROMIUM:-/usr/bin/chromium}
CHROMEDRIVER=${MMEVF_CHROMEDRIVER:-/usr/bin/chromedriver}
say() { echo "[install_browser] $*"; }
skipped() { say "$1: the demo's browser test will be skipped (as root: apt-get install chromium chromium-driver)"; exit 0; }

if [ -x "$CHROMIUM" ] && [ -x "$CHROMEDRIVER" ]; then
    say "found $CHROMIUM and $CHROMEDRIVER"
    exit 0
fi
[ "${MMEVF_SKIP_BROWSER:-0}" = 1 ] && skipped "MMEVF_SKIP_BROWSER=1, not installing Chromium"
[ "${EUID:-$(id -u)}" = 0 ] || skipped "not root, cannot install Chromium"
command -v apt-get >/dev/null 2>&1 || skipped "no apt-get, cannot install Chromium"

say "installing Debian's chromium and chromium-driver with apt-get"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; }; then
    skipped "apt-get failed"
fi
if [ -x "$CHROMIUM" ] && [ -x "$CHROMEDRIVER" ]; then
    say "installed: $("$CHROMEDRIVER" --version 2>/dev/null | head -n 1)"
else
    skipped "apt-get installed no $CHROMIUM / $CHROMEDRIVER"
fi
