#!/usr/bin/env bash
# `make run`: builds kesu, starts a private nats-server with JetStream and the
# five services on SQLite (state under .run/), feeds demo feedback through
# them and prints what comes out at each step. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
nats_bin=$(scripts/deps.sh --nats-path)

echo "run: building (debug) ..."
cargo build --bins -q
bin=target/debug
run=.run
mkdir -p "$run/logs" "$run/data"
[ -s "$run/contact.key" ] || "$bin/kesu-demo" keygen > "$run/contact.key"
[ -s "$run/jwt.secret" ] || "$bin/kesu-demo" keygen > "$run/jwt.secret"

# Default ports when free, otherwise free ones.
read -r nats_port g1 g2 g3 g4 g5 h1 h2 h3 h4 h5 <<< "$("$bin/kesu-demo" ports 4222 50051 50052 50053 50054 50055 8081 8082 8083 8084 8085)"
services=(intake routing sla-timer notification analytics)
grpc=($g1 $g2 $g3 $g4 $g5)
http=($h1 $h2 $h3 $h4 $h5)

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "run: stopping services ..."
  for pid in "${pids[@]:1}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]:1}"; do wait "$pid" 2>/dev/null || true; done
  [ "${#pids[@]}" -gt 0 ] && kill -TERM "${pids[0]}" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "run: stopped. State is kept in $run/ (delete it to start afresh)."
}
trap cleanup INT TERM EXIT

"$nats_bin" -c deploy/nats/durable.conf -a 127.0.0.1 -p "$nats_port" -js -sd "$run/nats" -l "$run/logs/nats-server.log" &
pids+=($!)
export KESU_NATS_URL="nats://127.0.0.1:$nats_port"
export KESU_DATA_DIR="$run/data"
export KESU_CONTACT_KEY="$(cat "$run/contact.key")"
# Staff tokens: HS256 with a development secret kept under .run/.
export KESU_AUTH_JWT_SECRET="$(cat "$run/jwt.secret")"
export KESU_LOG_FORMAT=pretty
# One `kesu all` process runs the five services, each on its own ports.
ports=()
for i in "${!services[@]}"; do
  prefix="KESU_$(echo "${services[$i]}" | tr 'a-z-' 'A-Z_')"
  ports+=("${prefix}_GRPC_ADDR=127.0.0.1:${grpc[$i]}" "${prefix}_HTTP_ADDR=127.0.0.1:${http[$i]}")
done
env "${ports[@]}" "$bin/kesu" all > "$run/logs/kesu.log" 2>&1 &
pids+=($!)
urls=()
for p in "${http[@]}"; do urls+=("http://127.0.0.1:$p/readyz"); done
if ! "$bin/kesu-demo" wait-ready "${urls[@]}"; then
  echo "run: a service did not become ready; see $run/logs/"; exit 1
fi

cat <<TABLE

kesu is running (NATS $KESU_NATS_URL, data in $run/data, logs in $run/logs):
  service        gRPC              HTTP (/healthz /readyz /metrics)
TABLE
for i in "${!services[@]}"; do
  printf '  %-14s 127.0.0.1:%-7s http://127.0.0.1:%s\n' "${services[$i]}" "${grpc[$i]}" "${http[$i]}"
done

"$bin/kesu-demo" feed --nats "$KESU_NATS_URL" --analytics "http://127.0.0.1:${grpc[4]}"

token=$("$bin/kesu" token --role supervisor --staff s-001 --department after_sales)
cat <<HELP

Staff token (supervisor s-001, after_sales, valid 12h) for the gRPC APIs:
  authorization: Bearer $token
  e.g. grpcurl -plaintext -H "authorization: Bearer \$TOKEN" 127.0.0.1:${grpc[1]} kesu.v1.TicketService/ListTickets
  another role: KESU_AUTH_JWT_SECRET=\$(cat $run/jwt.secret) $bin/kesu token --role agent --staff a-001

Submit more feedback:
  - publish a kesu.v1.RawFeedback on feedback.raw.<channel> (JetStream), or
  - request on feedback.submit.<channel> to get the feedback number back, or
  - gRPC kesu.v1.IntakeService/SubmitFeedback on 127.0.0.1:${grpc[0]} (reflection is on), or
  - run the demo again: $bin/kesu-demo feed --nats $KESU_NATS_URL --analytics http://127.0.0.1:${grpc[4]}
  - the Python adapter example: examples/python-adapter/README.md
Press Ctrl-C to stop.
HELP
wait "${pids[0]}"
