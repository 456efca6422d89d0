#!/usr/bin/env bash
# One-shot setup for docker-compose.yml's `temporal-setup` service (temporalio/admin-tools image):
# waits until the Temporal server serves the namespace, then registers the custom search attributes
# the incident workflow upserts (a workflow that upserts an unregistered one fails its task).
# Idempotent: attributes already there are left alone, so it runs on every `docker compose up`;
# one registered with another type stops it (and so the worker) with an explanation.
#
#   TEMPORAL_ADDRESS       frontend host:port
#   TEMPORAL_NAMESPACE     namespace to register in (SQL visibility keeps custom attributes per namespace)
#   SEARCH_ATTRIBUTES      space-separated Name=Type pairs; test/unit/compose.test.ts keeps the list
#                          in docker-compose.yml equal to SEARCH_ATTRIBUTE_TYPES (domain/search-attributes.ts)
#   SETUP_TIMEOUT_SECONDS  how long to wait for the server, namespace and attributes (default 300)
set -euo pipefail

: "${TEMPORAL_ADDRESS:?}" "${TEMPORAL_NAMESPACE:?}" "${SEARCH_ATTRIBUTES:?}"
deadline=$((SECONDS + ${SETUP_TIMEOUT_SECONDS:-300}))
log() { echo "temporal-setup: $*" >&2; }

# Retries "$@" (quietly) until it succeeds; fails the service once the deadline has passed.
wait_for() {
  local what=$1
  shift
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out waiting for $what"
      "$@" || true # once more with output, to show why
      exit 1
    fi
    sleep 2
  done
  log "$what: ok"
}

serving() { temporal operator cluster health --address "$TEMPORAL_ADDRESS" | grep -q SERVING; }
namespace_exists() { temporal operator namespace describe --address "$TEMPORAL_ADDRESS" --namespace "$TEMPORAL_NAMESPACE"; }
list_attributes() { temporal operator search-attribute list --address "$TEMPORAL_ADDRESS" --namespace "$TEMPORAL_NAMESPACE"; }
# Type of attribute $1 in listing $2, empty when absent (the listing is a "Name  Type" table).
type_of() { awk -v name="$1" '$1 == name { print $2; exit }' <<<"$2"; }

all_registered() {
  local listing pair
  listing=$(list_attributes) || return 1
  for pair in $SEARCH_ATTRIBUTES; do
    [[ $(type_of "${pair%%=*}" "$listing") == "${pair#*=}" ]] || return 1
  done
}

wait_for "server at $TEMPORAL_ADDRESS" serving
# auto-setup registers the namespace in the background after the server starts serving.
wait_for "namespace $TEMPORAL_NAMESPACE" namespace_exists
wait_for "search attribute listing" list_attributes

listing=$(list_attributes)
for pair in $SEARCH_ATTRIBUTES; do
  name=${pair%%=*} type=${pair#*=}
  current=$(type_of "$name" "$listing")
  if [[ $current == "$type" ]]; then
    log "$name already registered"
    continue
  elif [[ -n $current ]]; then
    # Upserts of the other type would fail every incident; an operator has to decide what to do.
    log "$name is registered as $current, not $type: remove it (temporal operator search-attribute remove) or use another namespace"
    exit 1
  fi
  # The server treats re-adding an attribute of the same type as success, so a concurrent run is fine.
  temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" \
    --namespace "$TEMPORAL_NAMESPACE" --name "$name" --type "$type" >/dev/null
  log "$name ($type) registered"
done

# The frontend's namespace cache can lag a create by a few seconds; workers start only after this.
wait_for "all search attributes visible" all_registered
