# shellcheck shell=bash
# The one loader of the version matrix for every script (sourced): versions.env into the
# environment, where a variable already set wins. That is how `make up KIND_VERSION=...`
# reaches a script (make exports command-line variables), and lakehouse/versions.py reads the
# matrix by the same rule.
#
#   source scripts/versions.sh && load_versions HELM_VERSION KUBERNETES_VERSION
load_versions() {  # [KEY...]: the keys the caller needs; a missing one fails naming it
  local file key value
  file="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/versions.env"
  while IFS='=' read -r key value || [[ -n "$key" ]]; do
    [[ "$key" =~ ^[A-Z][A-Z0-9_]*$ ]] || continue
    [[ -n "${!key:-}" ]] || export "$key=$value"
  done <"$file"
  for key in "$@"; do
    [[ -n "${!key:-}" ]] || { printf 'error: %s missing from %s\n' "$key" "$file" >&2; return 1; }
  done
}
