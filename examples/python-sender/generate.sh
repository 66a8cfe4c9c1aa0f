#!/usr/bin/env bash
# Generates the Python classes of the kesu contract (../../proto/kesu/v1/*.proto)
# into ./gen (or $OUT). Run it again whenever the .proto files change.
#
#   ./generate.sh                       # uses `python` from the active venv
#   PYTHON=/path/to/python OUT=/tmp/gen ./generate.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python}"
PROTO_ROOT="$here/../../proto"
OUT="${OUT:-$here/gen}"
# grpcio-tools bundles protoc and the well-known types (timestamp.proto).
WKT="$("$PYTHON" -c 'import os, grpc_tools; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')"
rm -rf "$OUT" && mkdir -p "$OUT"
mapfile -t protos < <(cd "$PROTO_ROOT" && find kesu -name '*.proto' | sort)
(cd "$PROTO_ROOT" && "$PYTHON" -m grpc_tools.protoc -I . -I "$WKT" --python_out="$OUT" "${protos[@]}")
echo "generated the kesu.v1 classes into $OUT"
