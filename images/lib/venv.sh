#!/bin/sh
# Build-time only: a venv at $1 on Debian's python3 holding the locked dependencies of the
# project's extras $2 (comma-separated, from uv.lock in the working directory), hash-checked.
# Extra `uv export` flags may follow (e.g. --no-emit-package pyspark). With VENV_PACKAGES set
# (space-separated names), only those are installed, every version (transitive ones too) fixed by
# the lock's export of the extras, wheels only. uv itself comes from PyPI at UV_VERSION into a
# throwaway venv.
set -eu
target=$1 extras=$2
shift 2
python3 -m venv /tmp/uv
/tmp/uv/bin/pip install --quiet --disable-pip-version-check --no-cache-dir "uv==${UV_VERSION:?}"
export UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_NO_CACHE=1
flags=""
for extra in $(echo "$extras" | tr ',' ' '); do flags="$flags --extra $extra"; done
/tmp/uv/bin/uv venv --quiet --python /usr/bin/python3 "$target"
if [ -n "${VENV_PACKAGES:-}" ]; then
  # shellcheck disable=SC2086
  /tmp/uv/bin/uv export --frozen --no-dev $flags --no-emit-project --no-hashes \
    --output-file /tmp/requirements.txt "$@" >/dev/null
  # shellcheck disable=SC2086
  /tmp/uv/bin/uv pip install --quiet --python "$target/bin/python" --only-binary :all: \
    --constraints /tmp/requirements.txt $VENV_PACKAGES
else
  # shellcheck disable=SC2086
  /tmp/uv/bin/uv export --frozen --no-dev $flags --no-emit-project \
    --output-file /tmp/requirements.txt "$@" >/dev/null
  /tmp/uv/bin/uv pip install --quiet --python "$target/bin/python" --require-hashes --no-deps \
    --requirement /tmp/requirements.txt
fi
rm -rf /tmp/uv /tmp/requirements.txt
