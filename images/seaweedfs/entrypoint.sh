#!/bin/bash
# The seaweedfs image's entrypoint: S3 credentials from the environment (the chart's Secret)
# become the gateway's identities file, written under /tmp with owner-only permissions, so no
# key is ever in an argument list, a ConfigMap or a layer. Then weed runs with the given args.
set -euo pipefail

args=("$@")
if [[ -n "${AWS_ACCESS_KEY_ID:-}" || -n "${AWS_SECRET_ACCESS_KEY:-}" ]]; then
  [[ -n "${AWS_ACCESS_KEY_ID:-}" && -n "${AWS_SECRET_ACCESS_KEY:-}" ]] || {
    echo "seaweedfs-entrypoint: set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither" >&2
    exit 64
  }
  config="$(mktemp /tmp/s3-identities.XXXXXX.json)"
  # The key and secret are JSON-escaped by Python-free means: reject what would need escaping.
  for value in "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"; do
    [[ "$value" =~ ^[A-Za-z0-9+/=_.:@-]+$ ]] || {
      echo "seaweedfs-entrypoint: S3 credentials may hold only letters, digits and +/=_.:@-" >&2
      exit 64
    }
  done
  cat >"$config" <<JSON
{"identities": [{"name": "lakehouse",
  "credentials": [{"accessKey": "$AWS_ACCESS_KEY_ID", "secretKey": "$AWS_SECRET_ACCESS_KEY"}],
  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
JSON
  args+=("-s3.config=$config")
fi
exec /usr/local/bin/weed "${args[@]}"
