#!/usr/bin/env bash
# Runs the demo: bootstrap the machine, then `deno task demo` (build, private containerd, real containers through
# io.containerd.deno.v2, teardown). Arguments go to the demo, e.g. `bash scripts/demo.sh --runtime io.containerd.runc.v2`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bootstrap.sh
exec deno task demo "$@"
