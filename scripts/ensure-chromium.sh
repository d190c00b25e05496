#!/usr/bin/env bash
# Make sure Debian's chromium is installed: the dashboard's tests drive it headless through
# Playwright (executable /usr/bin/chromium; `playwright install` is never needed).
# Idempotent and quick when it is there. Needs root to install; without root it says so and
# the dashboard's browser tests skip (under CI=true they fail instead).
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "ensure-chromium: not root, so chromium is not installed here;" \
    "the dashboard's browser tests will be skipped."
  exit 0
fi
echo "ensure-chromium: installing chromium"
apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null
}
apt_install || { apt-get update -q >/dev/null && apt_install; }
