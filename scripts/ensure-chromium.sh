#!/usr/bin/env bash
# The dashboard's browser tests drive Debian's Chromium (playwright-core, executablePath
# /usr/bin/chromium). `npm test` runs this first, so a fresh machine gets the browser from the
# project's own files: installed with apt when missing (as root, or through sudo without a
# password). When that is impossible it says so and the browser tests fail naming the path.
set -u
CHROMIUM="${MESHPILOT_CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] && exit 0
if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "ensure-chromium: $CHROMIUM is missing and this user cannot install it (apt-get install chromium)" >&2
  exit 0
fi
echo "ensure-chromium: installing Debian's chromium for the browser tests" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! $SUDO apt-get install -y -q chromium >"$log" 2>&1; then
  $SUDO apt-get update -q >>"$log" 2>&1
  $SUDO apt-get install -y -q chromium >>"$log" 2>&1 || { echo "ensure-chromium: apt-get install chromium failed:" >&2; tail -5 "$log" >&2; }
fi
rm -f "$log"
exit 0
