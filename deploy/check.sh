#!/usr/bin/env bash
# The layer contracts (import-linter) and the type check (mypy), as `make test` runs them.
# Both tools find a package by walking its folder, but this repository maps its folders into
# `shoal` (pyproject.toml: core/ -> shoal, controller/ -> shoal.controller, ...), which only the
# import system knows. So check a tree of that shape, build/src/shoal, made of links to the
# files here: it works from a fresh clone with an editable or a non-editable install, always
# checks this tree (not a stale installed copy), and mypy's messages name the files here.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
SRC=build/src

"$VENV/bin/python" - "$SRC" <<'PY'
import os
import shutil
import sys
import tomllib

src = sys.argv[1]
shutil.rmtree(src, ignore_errors=True)
with open("pyproject.toml", "rb") as f:
    package_dir = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
for package, folder in package_dir.items():
    target = os.path.join(src, *package.split("."))
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        out = os.path.join(target, os.path.relpath(root, folder))
        os.makedirs(out, exist_ok=True)
        for name in files:
            if name.endswith((".py", ".pyi", "py.typed")):
                os.symlink(os.path.abspath(os.path.join(root, name)), os.path.join(out, name))
# Deepest packages first, so that shoal/controller/ is not taken for core/controller/.
with open(src + ".sed", "w") as f:
    for package, folder in sorted(package_dir.items(), key=lambda kv: -kv[0].count(".")):
        f.write(f"s#^{src}/{package.replace('.', '/')}/#{folder}/#\n")
PY

# The contracts' names come first in a failure (pyproject.toml [tool.importlinter]).
PYTHONPATH="$SRC:." "$VENV/bin/lint-imports" --no-cache

# mypy reads the links; its messages are rewritten to name the files they point to.
set +e
"$VENV/bin/mypy" 2>&1 | sed -f "$SRC.sed"
status=${PIPESTATUS[0]}
set -e
exit "$status"
