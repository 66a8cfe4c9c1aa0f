#!/usr/bin/env bash
# The Python environment the tests use (the example channel adapter, the
# example sender, test servers such as an SMTP server): a venv in
# .tools/venv with the pinned packages of scripts/python.requirements.txt.
# Called by scripts/deps.sh (so by `make test`); idempotent: it reinstalls
# only when the requirements changed. Without python3 it says so and exits
# 0: the tests that need Python then skip loudly.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$root/.tools/venv
requirements=scripts/python.requirements.txt
say() { printf 'deps: %s\n' "$*" >&2; }

if ! command -v python3 >/dev/null; then
  say "python3 is missing: the tests of the Python examples (adapter, sender) and the SMTP test server will be skipped"
  say "(Debian: apt-get install python3 python3-venv)"
  exit 0
fi
stamp=$venv/.requirements.sha256
want=$(cat "$requirements" examples/*/requirements.txt 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  say "python: $venv (up to date)"
  exit 0
fi
say "python: creating $venv from $requirements"
rm -rf "$venv"
if ! python3 -m venv "$venv" >&2; then
  say "python3 -m venv failed: install the venv module (Debian: apt-get install python3-venv)"
  exit 1
fi
if ! PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install --quiet -r "$requirements" >&2; then
  say "installing $requirements from PyPI failed (see above)"
  rm -rf "$venv"
  exit 1
fi
printf '%s\n' "$want" >"$stamp"
say "python: $venv ready"
