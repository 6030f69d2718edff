#!/usr/bin/env bash
# Start a sync on a running gql_media server with curl, then poll the job until it ends.
#
#   examples/sync.sh [PATH]          # PATH: a folder inside a library root (default: every root)
#
# GQL_MEDIA_SERVER (default http://127.0.0.1:8000) and GQL_MEDIA_API_TOKEN as for `gql-media sync`.
# Exit code: 0 SUCCEEDED, 1 FAILED, 2 CANCELLED, 3 the server could not be reached or refused.
set -euo pipefail

server="${GQL_MEDIA_SERVER:-http://127.0.0.1:8000}"
auth=()
if [[ -n "${GQL_MEDIA_API_TOKEN:-}" ]]; then auth=(-H "Authorization: Bearer $GQL_MEDIA_API_TOKEN"); fi

graphql() {  # $1: a JSON request body; prints the JSON answer
  curl --silent --show-error --fail-with-body "${auth[@]}" -H 'Content-Type: application/json' \
       --data "$1" "$server/graphql" || { echo "sync.sh: the server at $server did not answer" >&2; exit 3; }
}

path_json=null
if [[ $# -gt 0 ]]; then path_json="\"$(printf '%s' "$1" | sed 's/["\\]/\\&/g')\""; fi

started=$(graphql '{"query": "mutation ($path: String) { syncLibrary(path: $path) { id state } }",
                    "variables": {"path": '"$path_json"'}}')
echo "$started"
job=$(printf '%s' "$started" | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p')
[[ -n "$job" ]] || { echo "sync.sh: no job started" >&2; exit 3; }

while true; do
  answer=$(graphql '{"query": "query ($id: ID!) { node(id: $id) { ... on SyncJob { state progress { phase done added updated removed } } } }",
                     "variables": {"id": "'"$job"'"}}')
  state=$(printf '%s' "$answer" | sed -n 's/.*"state": *"\([A-Z]*\)".*/\1/p')
  case "$state" in
    SUCCEEDED) echo "$answer"; exit 0 ;;
    FAILED) echo "$answer"; exit 1 ;;
    CANCELLED) echo "$answer"; exit 2 ;;
    QUEUED|RUNNING) sleep 0.5 ;;
    *) echo "sync.sh: unexpected answer: $answer" >&2; exit 3 ;;
  esac
done
