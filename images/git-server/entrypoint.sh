#!/bin/sh
# git-server entrypoint: the account file from GIT_USER/GIT_PASSWORD (never logged), the bare
# repositories of GIT_REPOSITORIES (created empty if absent), then lighttpd in the foreground.
set -eu
: "${GIT_USER:?GIT_USER is required (the git account)}"
: "${GIT_PASSWORD:?GIT_PASSWORD is required (the git account password)}"
case "$GIT_USER$GIT_PASSWORD" in *:* | *"
"*) echo "error: GIT_USER and GIT_PASSWORD must not contain ':' or a newline" >&2; exit 2 ;; esac
umask 077
printf '%s:%s\n' "$GIT_USER" "$GIT_PASSWORD" >/tmp/git-users
unset GIT_PASSWORD
for repo in ${GIT_REPOSITORIES:-}; do
  case "$repo" in *[!A-Za-z0-9._-]* | .*) echo "error: bad repository name '$repo'" >&2; exit 2 ;; esac
  dir="/srv/git/$repo.git"
  if [ ! -d "$dir" ]; then
    git init --quiet --bare --initial-branch=main "$dir"
    echo "git-server: created empty repository $repo.git"
  fi
done
echo "git-server: serving /srv/git on :8080 (smart HTTP under /git/, basic auth)"
exec lighttpd -D -f /etc/lighttpd/git-server.conf
