#!/usr/bin/env bash
# Prepares a fresh Linux machine for jax_spatial: the Debian package open3d needs, a virtual
# environment in .venv, and the project with its test tools installed into it (editable).
# Safe to run again: it reinstalls only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

python_bin=${PYTHON:-}
if [ -z "$python_bin" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python_bin=$candidate; break; fi
  done
fi
if ! "$python_bin" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "jax_spatial needs Python 3.11 or newer (found: $("$python_bin" --version 2>&1))" >&2
  exit 1
fi

# open3d's Linux wheel links against libusb-1.0 (a Debian package, not a PyPI one).
if command -v dpkg >/dev/null 2>&1 && ! dpkg -s libusb-1.0-0 >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "installing libusb-1.0-0 (needed by open3d)"
  $sudo_cmd apt-get install -y -qq libusb-1.0-0 >/dev/null 2>&1 \
    || { $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq libusb-1.0-0; }
fi

# The review page's browser test (tests/test_review_page.py) drives Debian's chromium through
# chromium-driver; without them that test skips, so a failed install does not stop the setup.
if command -v dpkg >/dev/null 2>&1 \
  && ! { dpkg -s chromium >/dev/null 2>&1 && dpkg -s chromium-driver >/dev/null 2>&1; }; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "installing chromium and chromium-driver (for the review page's browser test)"
  $sudo_cmd apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
    || { $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq chromium chromium-driver; } \
    || echo "could not install chromium; the browser test will skip" >&2
fi

stamp=.venv/.jax_spatial_installed
extras=test,gemma
want=$( { cat pyproject.toml; echo "$extras"; } | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $("$python_bin" --version)"
  "$python_bin" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing jax_spatial and its dependencies into .venv (a few minutes the first time)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[$extras]"
  echo "$want" > "$stamp"
fi
