#!/usr/bin/env bash
# Builds python-provider.wasm (beside python-provider.toml) from app.py with componentize-py,
# against wit/v0.2.0, world provider-plugin. Uses `componentize-py` from PATH when it is the
# pinned version, else installs that version into .venv here (pip, ~17 MB, a few seconds).
set -euo pipefail
cd "$(dirname "$0")"
VERSION=0.25.1
TOOL=componentize-py
if [ "$("$TOOL" --version 2>/dev/null)" != "componentize-py $VERSION" ]; then
    TOOL=.venv/bin/componentize-py
    if [ "$("$TOOL" --version 2>/dev/null)" != "componentize-py $VERSION" ]; then
        python3 -m venv .venv
        .venv/bin/pip install --quiet --disable-pip-version-check "componentize-py==$VERSION"
    fi
fi
"$TOOL" --wit-path ../../wit/v0.2.0 --world provider-plugin componentize app --output python-provider.wasm
