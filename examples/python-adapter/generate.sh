#!/usr/bin/env bash
# Generates the Python classes of the kesu contract (../../proto/kesu/v1/*.proto)
# into ./gen/. Run it again whenever the .proto files change; gen/ is not
# committed (see .gitignore).
#
#   ./generate.sh                 # uses `python` from the active venv
#   PYTHON=/path/to/python ./generate.sh
#   PYTHON=/path/to/python OUT=/tmp/gen ./generate.sh   # elsewhere (adapter.py: KESU_GEN_DIR=/tmp/gen)
#
# Output: gen/kesu/v1/<file>_pb2.py (messages), <file>_pb2.pyi (type hints
# for editors) and <file>_pb2_grpc.py (gRPC stubs, e.g. IntakeServiceStub, for
# adapters that prefer gRPC; adapter.py itself only uses NATS).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
PYTHON="${PYTHON:-python}"
PROTO_ROOT="${PROTO_ROOT:-../../proto}"
OUT="${OUT:-gen}"

if ! "$PYTHON" -c 'import grpc_tools' 2>/dev/null; then
  echo "error: grpcio-tools is not installed for $PYTHON; run: pip install -r requirements.txt" >&2
  exit 1
fi

# grpcio-tools ships the google/protobuf/*.proto well-known types (timestamp.proto
# is imported by the contract). Only the include path is needed: their Python
# classes come with the protobuf runtime package (google.protobuf.timestamp_pb2),
# so they are not generated into gen/ (that would shadow the real package).
WKT_INCLUDE="$("$PYTHON" -c 'import os, grpc_tools; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')"

rm -rf "$OUT"
mkdir -p "$OUT"

# Paths relative to the proto root so the generated imports read
# `from kesu.v1 import common_pb2`, which resolves with gen/ on sys.path
# (kesu/ and kesu/v1/ are implicit namespace packages: no __init__.py needed).
mapfile -t protos < <(cd "$PROTO_ROOT" && find kesu -name '*.proto' | sort)

"$PYTHON" -m grpc_tools.protoc \
  -I "$PROTO_ROOT" \
  -I "$WKT_INCLUDE" \
  --python_out="$OUT" \
  --pyi_out="$OUT" \
  --grpc_python_out="$OUT" \
  "${protos[@]/#/$PROTO_ROOT/}"

echo "generated $(find "$OUT" -name '*_pb2.py' | wc -l) modules into $here/$OUT from ${#protos[@]} .proto files"
