#!/usr/bin/env bash
# Makes this machine able to build and test containerd-shim-deno: Deno 2.9.x (from npm), the host packages the lab
# needs (Debian/Ubuntu apt), and the npm dependencies pinned by deno.lock. Idempotent and silent when everything is
# present. Run it (`bash scripts/bootstrap.sh`) or source it (`. scripts/bootstrap.sh`, so PATH changes stick);
# scripts/test.sh and scripts/demo.sh source it. Needs root (or sudo) for apt and `npm install -g`.
#
#   SHIM_BOOTSTRAP_SKIP_APT=1   do not touch system packages (report what is missing instead)

shim_bootstrap() {
  local repo deno_want="2.9.6" sudo=""
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" || return 1
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; fi
  fi

  # --- Deno 2.9.x from npm -----------------------------------------------------------------------------------------
  if ! deno --version 2>/dev/null | head -n1 | grep -q '^deno 2\.9\.'; then
    if ! command -v npm >/dev/null 2>&1; then
      echo "bootstrap: deno 2.9.x is missing and npm is not installed; install Node.js/npm first" >&2
      return 1
    fi
    echo "bootstrap: installing deno@${deno_want} from npm" >&2
    # The npm package ships the native binary (no install script is needed for it to work).
    $sudo npm install -g --no-fund --no-audit --loglevel=error "deno@${deno_want}" </dev/null >&2 || {
      echo "bootstrap: npm install -g deno@${deno_want} failed" >&2
      return 1
    }
    local npm_bin
    npm_bin="$(npm prefix -g 2>/dev/null)/bin"
    case ":$PATH:" in *":$npm_bin:"*) ;; *) PATH="$npm_bin:$PATH"; export PATH ;; esac
    hash -r
    if ! deno --version 2>/dev/null | head -n1 | grep -q '^deno 2\.9\.'; then
      echo "bootstrap: deno --version does not report 2.9.x after the install: $(deno --version 2>&1 | head -n1)" >&2
      return 1
    fi
  fi

  # --- host packages -----------------------------------------------------------------------------------------------
  # Probes by command where any provider will do (e.g. Docker's containerd.io also provides containerd and runc), by
  # package where the specific build matters (busybox-static: the image needs a statically linked busybox).
  local required=() optional=() probe
  command -v containerd >/dev/null 2>&1 && command -v ctr >/dev/null 2>&1 &&
    command -v containerd-shim-runc-v2 >/dev/null 2>&1 || required+=(containerd)
  command -v runc >/dev/null 2>&1 || required+=(runc)
  dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' || required+=(busybox-static)
  command -v jq >/dev/null 2>&1 || required+=(jq)
  for probe in criu hyperfine tmux strace; do
    command -v "$probe" >/dev/null 2>&1 || optional+=("$probe")
  done
  if [ "${#required[@]}" -gt 0 ] || [ "${#optional[@]}" -gt 0 ]; then
    if [ "${SHIM_BOOTSTRAP_SKIP_APT:-}" = 1 ] || ! command -v apt-get >/dev/null 2>&1 ||
      { [ "$(id -u)" -ne 0 ] && [ -z "$sudo" ]; }; then
      [ "${#required[@]}" -gt 0 ] && echo "bootstrap: missing packages: ${required[*]}" >&2 && return 1
      echo "bootstrap: optional packages missing (some benchmarks/tests will skip): ${optional[*]}" >&2
    else
      echo "bootstrap: apt-get install ${required[*]} ${optional[*]}" >&2
      export DEBIAN_FRONTEND=noninteractive
      $sudo apt-get update -qq </dev/null >&2 || { echo "bootstrap: apt-get update failed" >&2; return 1; }
      if [ "${#required[@]}" -gt 0 ]; then
        $sudo apt-get install -y -qq "${required[@]}" </dev/null >&2 || {
          echo "bootstrap: apt-get install ${required[*]} failed" >&2
          return 1
        }
      fi
      # One at a time: an optional package missing from this distribution (criu on some Ubuntu releases) must not
      # stop the others.
      for probe in "${optional[@]}"; do
        $sudo apt-get install -y -qq "$probe" </dev/null >&2 || echo "bootstrap: optional package $probe unavailable" >&2
      done
    fi
  fi

  # --- npm dependencies, exactly as locked -------------------------------------------------------------------------
  if [ -f "$repo/deno.lock" ]; then
    (cd "$repo" && deno install --frozen) >&2 || {
      echo "bootstrap: deno install --frozen failed: deno.lock is out of date with deno.json (run deno install)" >&2
      return 1
    }
  else
    (cd "$repo" && deno install) >&2 || return 1
  fi
}

if (return 0 2>/dev/null); then
  shim_bootstrap # sourced: report failure through the status, leave the caller's shell options alone
else
  set -euo pipefail
  shim_bootstrap
fi
