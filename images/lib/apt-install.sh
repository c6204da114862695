#!/bin/sh
# Build-time only: install Debian packages (no recommends) and leave no package lists behind.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "$@" >/dev/null
apt-get clean
rm -rf /var/lib/apt/lists/*
