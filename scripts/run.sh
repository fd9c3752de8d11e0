#!/usr/bin/env bash
# make run: start a wisp node in the foreground with the example function
# deployed, and print how to call it. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA_DIR=${WISP_DATA_DIR:-$HOME/.wisp}
GATEWAY_ADDR=${GATEWAY_ADDR:-127.0.0.1:8080}
ADMIN_ADDR=${ADMIN_ADDR:-127.0.0.1:8081}
export WISP_DATA_DIR=$DATA_DIR

bin/wisp serve --data-dir "$DATA_DIR" --gateway-addr "$GATEWAY_ADDR" --admin-addr "$ADMIN_ADDR" &
node=$!
stop() { kill -TERM "$node" 2>/dev/null || true; wait "$node" 2>/dev/null || true; }
trap stop INT TERM
trap 'stop; exit' EXIT

for _ in $(seq 1 300); do
  [ -s "$DATA_DIR/node.json" ] && break
  kill -0 "$node" 2>/dev/null || { echo "wisp serve exited; see the log above" >&2; exit 1; }
  sleep 0.1
done

bin/wisp service create hello --force --wasm bin/hello-go-reactor.wasm -e GREETING=Hello

gateway=$(sed -n 's/.*"gatewayURL": "\(.*\)".*/\1/p' "$DATA_DIR/node.json")
domain=$(sed -n 's/.*"domain": "\(.*\)".*/\1/p' "$DATA_DIR/node.json")
cli=bin/wisp
[ "$DATA_DIR" = "$HOME/.wisp" ] || cli="WISP_DATA_DIR=$DATA_DIR bin/wisp"
cat <<MSG

wisp is running (data dir $DATA_DIR). Call the example function:

  curl -H 'Host: hello.default.$domain' $gateway/?name=you
  curl $gateway/fn/default/hello/?name=you
  $cli invoke hello

Change it (a new revision answers):  $cli service update hello -e GREETING=Howdy
Press Ctrl-C to stop the node.
MSG
wait "$node"
