#!/usr/bin/env bash
# Headless Chromium for the test that opens the offline `dvc plots show` page
# (tests/test_workflows.py), from Debian's `chromium` package. Does nothing if Chromium is there.
set -euo pipefail
for name in chromium chromium-browser; do
    if command -v "$name" >/dev/null 2>&1; then exit 0; fi
done
if [ "$(id -u)" = 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "error: the tests need Chromium; install Debian's package as root: apt-get install chromium" >&2
    exit 1
fi
echo "installing Debian's chromium package for the plots-page test"
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
