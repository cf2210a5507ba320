#!/bin/bash
# Captures the real protobuf payloads containerd 1.6 and its Go runc shim (containerd-shim-runc-v2) exchange, and
# writes them as fixtures to tests/fixtures/wire/ (see the README there). Needs root, containerd, runc, ctr, tmux,
# busybox-static, jq and deno. Runs a private containerd in $LAB (default /tmp/wirelab) and removes what it started.
#
# How: containerd runs with PATH=$LAB/bin first, where a wrapper named containerd-shim-runc-v2 runs the real shim,
# saves `start`'s stdin and `delete`'s stdout, points the shim's TTRPC_ADDRESS at a logging proxy in front of
# containerd's ttrpc socket (events), and answers `start` with the address of a second logging proxy in front of the
# real shim socket (Task API). tools/capture-wire.ts is the proxy and the extractor.
#
#   sudo tools/capture-wire.sh            # capture and write tests/fixtures/wire/
#   KEEP=1 tools/capture-wire.sh          # keep $LAB (logs, raw capture) for inspection
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LAB=${LAB:-/tmp/wirelab}
S=$LAB/containerd.sock
CAP=$LAB/cap
OUT=${OUT:-$ROOT/tests/fixtures/wire}
IMG=docker.io/library/busybox:latest
NS=wire
REAL_SHIM=/usr/bin/containerd-shim-runc-v2
CTR="ctr -a $S -n $NS"

log() { printf '[capture-wire] %s\n' "$*" >&2; }

# --- teardown: only what this script started, by pid, after checking the cmdline --------------------------------
pid_is() { [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' < "/proc/$1/cmdline" | grep -q -- "$2"; }
teardown() ( # a subshell, so its `set +e` does not leak into the script
  set +e
  if [ -S "$S" ]; then
    for t in $($CTR tasks ls -q 2>/dev/null); do $CTR tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
    sleep 0.5
    for t in $($CTR tasks ls -q 2>/dev/null); do $CTR tasks rm -f "$t" >/dev/null 2>&1; done
    for c in $($CTR containers ls -q 2>/dev/null); do $CTR containers rm "$c" >/dev/null 2>&1; done
  fi
  tmux -L wirelab kill-server >/dev/null 2>&1
  if [ -f "$LAB/containerd.pid" ]; then
    p=$(cat "$LAB/containerd.pid")
    if pid_is "$p" "containerd --config $LAB/config.toml"; then
      kill -TERM "$p"; for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$p" 2>/dev/null && kill -KILL "$p"
    fi
    rm -f "$LAB/containerd.pid"
  fi
  # shims and proxies left behind (e.g. containerd died first): match our lab path in their argv
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    if pid_is "$p" "-address $S " || pid_is "$p" "capture-wire.ts proxy $LAB/"; then kill -TERM "$p" 2>/dev/null; fi
  done
  # mounts under the lab (only after an unclean exit), deepest first
  grep -o " $LAB/[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount "$m" 2>/dev/null; done
  rm -f "$S" "$S.ttrpc" "$LAB/containerd-debug.sock" "$LAB/events.sock"
  [ -n "${KEEP:-}" ] || rm -rf "$LAB/root" "$LAB/state" "$LAB/p"
)
trap teardown EXIT
trap 'exit 130' INT TERM
teardown  # leftovers of an interrupted run

mkdir -p "$LAB"/{root,state,opt,logs,bin,p} "$CAP"
rm -f "$CAP"/* "$S" "$S.ttrpc" "$LAB/containerd-debug.sock"

# --- offline busybox image (host-lab.md §4.1) ----------------------------------------------------------------------
build_image() {
  local B=$LAB/build T
  rm -rf "$B"; mkdir -p "$B/rootfs" "$B/oci/blobs/sha256"
  (
    cd "$B/rootfs"
    mkdir -p bin sbin usr/bin usr/sbin etc proc sys dev tmp root var/run run; chmod 1777 tmp
    cp /bin/busybox bin/busybox
    for p in $(/bin/busybox --list-full); do
      [ "$p" = bin/busybox ] && continue
      case "$(dirname "$p")" in
        .) r=bin/busybox ;; bin) r=busybox ;; sbin) r=../bin/busybox ;; *) r=../../bin/busybox ;;
      esac
      ln -sf "$r" "$p"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > etc/passwd
    printf 'root:x:0:\nnogroup:x:65534:\n' > etc/group
  )
  cd "$B"
  T="tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner"
  blob() {
    local d; d=$(sha256sum "$1" | cut -d' ' -f1)
    SIZE=$(stat -c %s "$1"); mv "$1" "oci/blobs/sha256/$d"; DIG=sha256:$d
  }
  $T -C rootfs -cf layer.tar .
  local DIFFID L LS C CS M MS
  DIFFID=sha256:$(sha256sum layer.tar | cut -d' ' -f1)
  gzip -n -9 layer.tar; blob layer.tar.gz; L=$DIG; LS=$SIZE
  jq -cn --arg d "$DIFFID" '{architecture:"amd64",os:"linux",created:"1970-01-01T00:00:00Z",
    config:{Env:["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],Cmd:["sh"],WorkingDir:"/"},
    rootfs:{type:"layers",diff_ids:[$d]},
    history:[{created:"1970-01-01T00:00:00Z",created_by:"busybox-static rootfs"}]}' > config.json
  blob config.json; C=$DIG; CS=$SIZE
  jq -cn --arg c "$C" --argjson cs "$CS" --arg l "$L" --argjson ls "$LS" '{schemaVersion:2,
    mediaType:"application/vnd.oci.image.manifest.v1+json",
    config:{mediaType:"application/vnd.oci.image.config.v1+json",digest:$c,size:$cs},
    layers:[{mediaType:"application/vnd.oci.image.layer.v1.tar+gzip",digest:$l,size:$ls}]}' > manifest.json
  blob manifest.json; M=$DIG; MS=$SIZE
  jq -cn --arg m "$M" --argjson ms "$MS" --arg n "$IMG" '{schemaVersion:2,
    mediaType:"application/vnd.oci.image.index.v1+json",
    manifests:[{mediaType:"application/vnd.oci.image.manifest.v1+json",digest:$m,size:$ms,
    platform:{architecture:"amd64",os:"linux"},
    annotations:{"io.containerd.image.name":$n,"org.opencontainers.image.ref.name":"latest"}}]}' > oci/index.json
  echo '{"imageLayoutVersion":"1.0.0"}' > oci/oci-layout
  $T -C oci -cf "$LAB/busybox-oci.tar" oci-layout index.json blobs
  cd "$ROOT"
}
[ -f "$LAB/busybox-oci.tar" ] || build_image

# --- the wrapper shim containerd finds first on its PATH -----------------------------------------------------------
cat > "$LAB/bin/containerd-shim-runc-v2" <<EOF
#!/bin/bash
# Wrapper written by tools/capture-wire.sh: runs the real Go shim and records what passes through.
id=""; prev=""; for a in "\$@"; do [ "\$prev" = "-id" ] && id=\$a; prev=\$a; done
action="\${@: -1}"
case "\$action" in
start)
  cat > "$CAP/start-stdin.\$id.bin"
  export TTRPC_ADDRESS="$LAB/events.sock"
  out=\$("$REAL_SHIM" "\$@" < "$CAP/start-stdin.\$id.bin" 2>&1) || { printf '%s' "\$out"; exit 1; }
  sock="$LAB/p/\$id.sock"
  setsid deno run -A --no-lock "$ROOT/tools/capture-wire.ts" proxy \
    "\$sock" "\${out#unix://}" "$CAP/task.\$id.jsonl" --once \
    < /dev/null >> "$LAB/logs/proxy.log" 2>&1 &
  for _ in \$(seq 100); do [ -S "\$sock" ] && break; sleep 0.05; done
  printf 'unix://%s' "\$sock"
  ;;
delete)
  "$REAL_SHIM" "\$@" > "$CAP/delete-stdout.\$id.bin"; rc=\$?
  cat "$CAP/delete-stdout.\$id.bin"; exit \$rc
  ;;
*) exec "$REAL_SHIM" "\$@" ;;
esac
EOF
chmod +x "$LAB/bin/containerd-shim-runc-v2"

# --- private containerd (host-lab.md §3) --------------------------------------------------------------------------
cat > "$LAB/config.toml" <<EOF
version = 2
root = "$LAB/root"
state = "$LAB/state"
oom_score = 0
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
]
[grpc]
  address = "$S"
[ttrpc]
  address = "$S.ttrpc"
[debug]
  address = "$LAB/containerd-debug.sock"
  level = "debug"
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$LAB/opt"
EOF
# `cd X && cmd &` would record a subshell's pid, hence the separate statements
(
  cd "$LAB"
  PATH="$LAB/bin:$PATH" setsid nohup containerd --config "$LAB/config.toml" \
    >> "$LAB/logs/containerd.log" 2>&1 < /dev/null &
  echo $! > "$LAB/containerd.pid"
)
for _ in $(seq 100); do [ -S "$S.ttrpc" ] && break; sleep 0.1; done
ctr -a "$S" version >/dev/null

# events: every shim's Forward calls go through this proxy to containerd's ttrpc socket
setsid deno run -A --no-lock "$ROOT/tools/capture-wire.ts" proxy "$LAB/events.sock" "$S.ttrpc" "$CAP/events.all.jsonl" \
  < /dev/null >> "$LAB/logs/proxy.log" 2>&1 &
for _ in $(seq 100); do [ -S "$LAB/events.sock" ] && break; sleep 0.05; done

$CTR images import "$LAB/busybox-oci.tar" >/dev/null
RT="--runtime io.containerd.runc.v2"

# --- scenarios ----------------------------------------------------------------------------------------------------
log "run: Create with rootfs + runc Options(binary_name), Start, Wait, exit 3, Delete, Shutdown, delete"
$CTR run --rm $RT --runc-binary /usr/sbin/runc "$IMG" w-hello sh -c 'echo hello; echo err >&2; exit 3' || true

log "detached task: exec, pids, pause/resume, update, metrics, checkpoint (fails at criu), kill, state"
$CTR run -d $RT "$IMG" w-sleep sleep 1000
$CTR task exec --exec-id e1 w-sleep sh -c 'echo exec-ok' || true
# ctr calls CloseIO when its stdin reaches EOF; cat then sees EOF and exits
echo piped-input | timeout -k 2 10 $CTR task exec --exec-id ec w-sleep cat || true
$CTR task exec -d --exec-id e2 w-sleep sleep 300 || true
sleep 0.3
$CTR task ps w-sleep || true
$CTR task ls || true
$CTR task pause w-sleep; $CTR task ls || true
$CTR task resume w-sleep
# Update (LinuxResources JSON) through containerd's gRPC API
deno run -A --no-lock "$ROOT/tools/capture-wire.ts" grpc-update "$S" "$NS" w-sleep || true
$CTR task metrics w-sleep >/dev/null || true
$CTR task checkpoint --image-path "$LAB/cp-image" --work-path "$LAB/cp-work" w-sleep 2>/dev/null || true
$CTR task kill -s SIGKILL --exec-id e2 w-sleep || true
$CTR task kill -s SIGKILL w-sleep || true
sleep 0.5
$CTR task ls || true
$CTR task kill -s SIGKILL w-sleep 2>/dev/null || true     # already stopped: the shim answers NotFound
$CTR task metrics w-sleep >/dev/null 2>&1 || true         # stats after exit, before delete
$CTR task rm w-sleep || true
$CTR containers rm w-sleep || true

log "OOM: TaskOOM before TaskExit 137"
$CTR run --rm $RT --memory-limit 33554432 "$IMG" w-oom dd if=/dev/zero of=/dev/null bs=256M count=1 || true

log "tty: ResizePty for init and exec"
tmux -L wirelab new-session -d -x 120 -y 40 "$CTR run -t --rm $RT $IMG w-tty sh"
sleep 1.5
tmux -L wirelab resize-window -x 100 -y 30 || true
sleep 0.5
tmux -L wirelab new-window -d "$CTR task exec -t --exec-id et w-tty sh"
sleep 1
tmux -L wirelab resize-window -x 90 -y 25 || true
sleep 0.5
tmux -L wirelab send-keys -t :1 'exit 4' Enter 2>/dev/null || true
sleep 0.5
tmux -L wirelab send-keys -t :0 'exit 5' Enter 2>/dev/null || true
sleep 1.5

log "shutting down the private containerd"
teardown
trap - EXIT
sleep 0.5
log "extracting fixtures"
deno run -A --no-lock "$ROOT/tools/capture-wire.ts" extract "$CAP" "$OUT"
cat > "$OUT/VERSIONS" <<EOF
containerd $(containerd --version | awk '{print $3}')
containerd-shim-runc-v2 $($REAL_SHIM -v 2>/dev/null | awk '/Version/ {print $2; exit}')
runc $(runc --version | awk 'NR==1 {print $3}')
kernel $(uname -r)
EOF
