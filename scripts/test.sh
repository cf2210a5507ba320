#!/usr/bin/env bash
# The project's test command: bootstrap the machine (quietly when it is ready), then run `deno task test` (fmt, lint,
# check, build, every test, lab teardown). Arguments go to `deno task test`, e.g. `bash scripts/test.sh tests/lab_test.ts`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bootstrap.sh
exec deno task test "$@"
