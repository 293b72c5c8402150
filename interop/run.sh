#!/usr/bin/env bash
# Wire-compatibility check against a real Jina 3.x (see interop/README.md).
set -uo pipefail
cd "$(dirname "$0")"
PLAIT=../.venv/bin
JINA_VENV=.interop-venv
if [ ! -x "$JINA_VENV/bin/jina" ]; then
  python3 -m venv "$JINA_VENV"
  "$JINA_VENV/bin/python" -m pip install --quiet --upgrade pip
  "$JINA_VENV/bin/python" -m pip install --quiet 'jina>=3.27,<4' 'docarray>=0.40'
fi
J="$JINA_VENV/bin"
export JINA_HIDE_SURVEY=1 JINA_LOG_LEVEL=ERROR PLAIT_LOG_LEVEL=WARNING PYTHONPATH="$PWD"
pids=()
# every server runs in its own session, so stopping it stops the processes it started too
start() { setsid "$@" & pids+=($!); }
cleanup() {
  for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null; done; sleep 3
  for p in "${pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null; done; wait 2>/dev/null
}
trap cleanup EXIT
wait_for() {  # wait_for KIND URL: bounded wait until plait ping says it answers
  for _ in $(seq 1 120); do "$PLAIT/plait" ping "$1" "$2" >/dev/null 2>&1 && return 0; sleep 1; done
  echo "FAIL $2 did not come up"; return 1
}
status=0
start "$PLAIT/python" servers.py plait-flow 34001 34002 34003
wait_for flow grpc://127.0.0.1:34001 && { "$J/python" client.py jina 34001 34002 34003 || status=1; }
start "$J/python" servers.py jina-flow 34011 34012 34013 >/dev/null 2>&1
wait_for flow grpc://127.0.0.1:34011 && { "$PLAIT/python" client.py plait 34011 34012 34013 || status=1; }
start "$PLAIT/plait" executor --uses executors:PlaitUpper --host 127.0.0.1 --port 34021 --name executor0
wait_for executor grpc://127.0.0.1:34021
start "$J/jina" gateway --port 34020 --graph-description '{"executor0": ["end-gateway"], "start-gateway": ["executor0"]}' \
  --deployments-addresses '{"executor0": ["127.0.0.1:34021"]}' >/dev/null 2>&1
wait_for flow grpc://127.0.0.1:34020 && { echo 'Jina gateway -> plait executor:'; "$PLAIT/python" client.py plait 34020 || status=1; }
start "$J/jina" executor --uses JinaUpper --py-modules executors.py --port 34031 >/dev/null 2>&1
wait_for executor grpc://127.0.0.1:34031
start "$PLAIT/plait" gateway --port 34030 --deployments '[{"name": "executor0", "addresses": ["127.0.0.1:34031"]}]'
wait_for flow grpc://127.0.0.1:34030 && { echo 'plait gateway -> Jina executor:'; "$PLAIT/python" client.py plait 34030 || status=1; }
start env PLAIT_AUTH_TOKEN=interop-token-5a7c "$PLAIT/python" servers.py plait-flow 34041 34042
wait_for flow grpc://127.0.0.1:34041 && { echo 'Jina client -> plait Flow needing a token:'
  PLAIT_AUTH_TOKEN=interop-token-5a7c "$J/python" auth_client.py 34041 34042 || status=1; }
echo 'Streaming endpoints (stream_doc over gRPC, Server-Sent Events over HTTP):'
start "$PLAIT/python" streaming.py serve plait-deployment 34051
start "$PLAIT/python" streaming.py serve plait-flow 34052 34053
start "$J/python" streaming.py serve jina-flow 34054 34055 >/dev/null 2>&1
wait_for executor grpc://127.0.0.1:34051 && { "$J/python" streaming.py check jina plait-deployment 34051 || status=1; }
wait_for flow grpc://127.0.0.1:34052 && { "$J/python" streaming.py check jina plait-flow 34052 34053 || status=1; }
wait_for flow grpc://127.0.0.1:34054 && { "$PLAIT/python" streaming.py check plait jina-flow 34054 34055 || status=1; }
echo 'Jina option names plait knows (plait/jina_options.py):'
"$J/python" jina_options.py --check || status=1
exit $status
