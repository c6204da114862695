#!/bin/sh
# Build-time only (bind-mounted into RUN steps, never copied into an image): run a download
# command trusting the CA bundle the build was given (`CA_BUNDLE=... make images`, passed as the
# BuildKit secret `ca_bundle`), for apt over https, pip/uv, curl and Go. Without the secret the
# command runs with the image's own trust store.
set -eu
bundle=/run/secrets/ca_bundle
if [ -s "$bundle" ]; then
  export SSL_CERT_FILE="$bundle" PIP_CERT="$bundle" REQUESTS_CA_BUNDLE="$bundle" \
    CURL_CA_BUNDLE="$bundle"
  mkdir -p /etc/apt/apt.conf.d
  echo "Acquire::https::CAInfo \"$bundle\";" >/etc/apt/apt.conf.d/00lakehouse-build-ca 2>/dev/null || true
fi
status=0
"$@" || status=$?
rm -f /etc/apt/apt.conf.d/00lakehouse-build-ca 2>/dev/null || true
exit "$status"
