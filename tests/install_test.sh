#!/usr/bin/env bash
# `make install` and the deployment files, on the host (no sched_ext needed):
# the installed layout and modes, the systemd unit (systemd-analyze verify),
# the flags the config and the DaemonSet give ghost-agent (its own parser),
# the Kubernetes manifest (tests/k8s/validate.js: the API's schemas, offline)
# and the container image's binaries (static). One PASS/FAIL line per check.
# A missing tool is a FAIL naming it: `make deps` installs them all.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
npm_dir=${GHOST_NPM_DIR:-/var/cache/ghost-scx/npm}
manifest=$top/deploy/k8s/ghost-agent-daemonset.yaml
n_fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pass() { echo "PASS: install: $*"; }
fail() { echo "FAIL: install: $*"; n_fail=$((n_fail + 1)); }

# What is under a staging root: "MODE PATH" per file.
layout() { (cd "$1" && find . -mindepth 1 \( -type f -o -type l \) -printf '%m %P\n' | sort); }

stage=$tmp/stage
# A make of its own: not the jobserver of a `make test` above, nor paths
# from the environment.
mk() {
  env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u BINDIR -u UNITDIR -u SYSCONFDIR \
    make -s --no-print-directory -C "$top" BUILD="$build" "$@"
}

# --- make install ----------------------------------------------------------------
if out=$(mk install DESTDIR="$stage" PREFIX=/usr 2>&1); then
  want=$'755 usr/bin/ghost-agent\n755 usr/bin/ghost-bench\n755 usr/bin/ghost-run\n755 usr/bin/ghost-sim
644 etc/ghost-scx/ghost-agent.conf\n644 usr/lib/systemd/system/ghost-agent.service'
  got=$(layout "$stage")
  if [ "$got" = "$(sort <<<"$want")" ]; then
    pass "make install DESTDIR PREFIX=/usr: the 4 binaries 0755, unit and config 0644, nothing else"
  else
    fail "make install DESTDIR PREFIX=/usr laid out: $(echo $got) -> want: $(echo $want)"
  fi
  same=1
  for b in ghost-agent ghost-run ghost-sim ghost-bench; do
    cmp -s "$build/$b" "$stage/usr/bin/$b" || same=0
  done
  [ $same = 1 ] && pass "installed binaries are build/'s" || fail "installed binaries differ from build/'s"
  unit=$stage/usr/lib/systemd/system/ghost-agent.service
  if grep -qxF 'ExecStart=/usr/bin/ghost-agent $GHOST_AGENT_FLAGS' "$unit" &&
     grep -qxF 'EnvironmentFile=/etc/ghost-scx/ghost-agent.conf' "$unit" && ! grep -q @ "$unit"; then
    pass "unit names /usr/bin/ghost-agent and /etc/ghost-scx/ghost-agent.conf"
  else
    fail "unit's ExecStart/EnvironmentFile not filled in for PREFIX=/usr: $(grep -E '^(Exec|Env)' "$unit" | tr '\n' ' ')"
  fi
else
  fail "make install DESTDIR PREFIX=/usr -> $out"
fi

# Reload is SIGUSR1, the agent's hand-over; it must still be that in the code.
if grep -qxF 'ExecReload=/bin/kill -USR1 $MAINPID' "$top/deploy/systemd/ghost-agent.service.in" &&
   grep -q 'sig == SIGUSR1' "$top/userspace/bin/ghost_agent.cc"; then
  pass "unit reload sends SIGUSR1, which ghost-agent takes as its hand-over"
else
  fail "unit ExecReload and ghost-agent's hand-over signal disagree"
fi

# --- systemd-analyze verify --------------------------------------------------------
# --root: the unit's paths are checked inside the staging tree, where
# ExecStart's binary is. Under a root systemd also needs the targets the unit
# depends on (sysinit.target, ...) and ExecReload's /bin/kill there, so both
# come from this host. --man=no: no man pages here. Warnings (an unknown key,
# a bad value) keep exit 0, so any output fails.
verify() {  # verify ROOT: systemd-analyze's words about ghost-agent.service; status
  systemd-analyze verify --root="$1" --man=no ghost-agent.service 2>&1
}
if ! command -v systemd-analyze >/dev/null; then
  fail "systemd-analyze is missing (Debian package systemd; make deps installs it)"
elif [ -f "$stage/usr/lib/systemd/system/ghost-agent.service" ]; then
  vroot=$tmp/verify-root
  cp -a "$stage" "$vroot"
  cp -rn /usr/lib/systemd/system/. "$vroot/usr/lib/systemd/system/"
  mkdir -p "$vroot/bin" && cp "$(readlink -f /bin/kill)" "$vroot/bin/kill"
  if out=$(verify "$vroot") && [ -z "$out" ]; then
    pass "systemd-analyze verify --root: ghost-agent.service, no warnings"
  else
    fail "systemd-analyze verify --root -> $out"
  fi
  # The check itself: a misspelt key must be reported.
  sed -i 's/^RestartSec=/RestartSecs=/' "$vroot/usr/lib/systemd/system/ghost-agent.service"
  if out=$(verify "$vroot"); [ -n "$out" ]; then
    pass "systemd-analyze verify reports a misspelt key (RestartSecs)"
  else
    fail "systemd-analyze verify said nothing about a misspelt key"
  fi
fi

# --- the flags ghost-agent gets ------------------------------------------------------
# Run as nobody, ghost-agent checks every flag and then stops at the host
# check: "no sched_ext" or "must run as root", never loading anything (a copy
# in $tmp: nobody may not reach build/).
chmod 0711 "$tmp"
cp "$build/ghost-agent" "$tmp/ghost-agent" && chmod 0755 "$tmp/ghost-agent"
as_nobody() {
  if [ "$(id -u)" = 0 ]; then setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; else "$@"; fi
}
flags_ok() {  # flags_ok WHAT FLAGS...
  local what=$1 err; shift
  err=$(as_nobody "$tmp/ghost-agent" "$@" 2>&1 >/dev/null)
  if [ $? = 2 ] && grep -qE 'has no sched_ext|must run as root' <<<"$err"; then
    pass "$what: ghost-agent accepts $*"
  else
    fail "$what: ghost-agent $* -> $err"
  fi
}
conf=$top/deploy/systemd/ghost-agent.conf
# shellcheck disable=SC1090
conf_flags=$(. "$conf" && echo "$GHOST_AGENT_FLAGS")
if [ -n "$conf_flags" ]; then
  # shellcheck disable=SC2086
  flags_ok "config's GHOST_AGENT_FLAGS" $conf_flags
else
  fail "config sets no GHOST_AGENT_FLAGS"
fi

# --- uninstall, and an edited config -------------------------------------------------
if [ -d "$stage" ]; then
  echo "# edited" >>"$stage/etc/ghost-scx/ghost-agent.conf"
  out=$(mk install DESTDIR="$stage" PREFIX=/usr 2>&1)
  if tail -1 "$stage/etc/ghost-scx/ghost-agent.conf" | grep -qx '# edited' && grep -q kept <<<"$out"; then
    pass "make install again keeps an edited config"
  else
    fail "make install again overwrote an edited config: $out"
  fi
  out=$(mk uninstall DESTDIR="$stage" PREFIX=/usr 2>&1)
  if [ "$(layout "$stage")" = "644 etc/ghost-scx/ghost-agent.conf" ]; then
    pass "make uninstall removes the binaries and the unit, keeps the edited config"
  else
    fail "make uninstall left: $(layout "$stage" | tr '\n' ' ') ($out)"
  fi
  rm -rf "$stage"
  mk install DESTDIR="$stage" PREFIX=/usr/local >/dev/null 2>&1 &&
    mk uninstall DESTDIR="$stage" PREFIX=/usr/local >/dev/null 2>&1
  if [ -z "$(layout "$stage")" ]; then
    pass "make install; make uninstall (PREFIX /usr/local) leaves no file"
  else
    fail "make install; make uninstall left: $(layout "$stage" | tr '\n' ' ')"
  fi
fi

# --- the Kubernetes manifest -------------------------------------------------------
if ! command -v node >/dev/null; then
  fail "node is missing (make deps installs it)"
elif [ ! -d "$npm_dir/node_modules/kubernetes-models" ]; then
  fail "the manifest validator is missing from $npm_dir (make deps installs it)"
else
  validate() { NODE_PATH=$npm_dir/node_modules node "$top/tests/k8s/validate.js" "$@"; }
  if out=$(validate "$manifest"); then
    pass "deploy/k8s: every document valid against the Kubernetes schemas: $(echo $out)"
  else
    fail "deploy/k8s -> $out"
  fi
  # The validator itself: a misspelt field and a wrong type must be refused.
  sed 's/hostPID:/hostPid:/' "$manifest" >"$tmp/typo.yaml"
  sed 's/privileged: true/privileged: "yes"/' "$manifest" >"$tmp/type.yaml"
  if ! validate "$tmp/typo.yaml" >/dev/null && ! validate "$tmp/type.yaml" >/dev/null; then
    pass "the validator refuses a misspelt field (hostPid) and a wrong type"
  else
    fail "the validator took a misspelt field or a wrong type (or the manifest has no 'hostPID:' and 'privileged: true' to alter)"
  fi
  # What the agent needs from its pod, and the flags it is given.
  facts=$(NODE_PATH=$npm_dir/node_modules node -e '
    const YAML = require("yaml");
    const ds = YAML.parseAllDocuments(require("fs").readFileSync(process.argv[1], "utf8"))
      .map((d) => d.toJS()).find((d) => d && d.kind === "DaemonSet");
    const p = ds.spec.template.spec, c = p.containers[0];
    const vols = Object.fromEntries((p.volumes || []).map((v) => [v.name, v.hostPath && v.hostPath.path]));
    const mounted = (path) => (c.volumeMounts || []).some((m) => m.mountPath === path && vols[m.name] === path);
    const u = ds.spec.updateStrategy || {};
    const bad = [];
    if (p.hostPID !== true) bad.push("hostPID");
    if (!(c.securityContext && c.securityContext.privileged === true)) bad.push("privileged");
    for (const m of ["/sys", "/sys/fs/bpf", "/run/ghost-scx"]) if (!mounted(m)) bad.push("host " + m);
    if (!(p.nodeSelector && p.nodeSelector["ghost-scx/sched-ext"] === "true")) bad.push("nodeSelector");
    if (u.type !== "RollingUpdate" || !u.rollingUpdate || u.rollingUpdate.maxSurge !== 0) bad.push("RollingUpdate, maxSurge 0");
    console.log(bad.length ? "BAD " + bad.join(", ") : "ARGS " + (c.args || []).join(" "));
  ' "$manifest" 2>&1)
  case "$facts" in
    ARGS*) pass "DaemonSet: privileged, hostPID, host /sys, /sys/fs/bpf and /run/ghost-scx, nodeSelector ghost-scx/sched-ext, RollingUpdate with maxSurge 0"
           # shellcheck disable=SC2086
           flags_ok "DaemonSet's args" ${facts#ARGS } ;;
    *) fail "DaemonSet lacks: $facts" ;;
  esac
fi

# --- the container image's binaries ----------------------------------------------------
# FROM scratch: what it copies must exist and need no loader nor libc.
cf=$top/deploy/Containerfile
srcs=$(sed -n 's/^COPY \(.*\) [^ ]*$/\1/p' "$cf")
static=1 what=
for s in $srcs; do
  if [ ! -x "$top/$s" ] || readelf -lW "$top/$s" 2>/dev/null | grep -q 'program interpreter'; then
    static=0 what="$what $s"
  fi
done
if [ -n "$srcs" ] && [ $static = 1 ] && grep -qx 'STOPSIGNAL SIGUSR1' "$cf" &&
   grep -q '^FROM scratch' "$cf"; then
  pass "Containerfile: FROM scratch, copies static$(printf ' %s' $srcs), stops the agent with SIGUSR1"
else
  fail "Containerfile: missing or not static:${what:- (none copied)}, or no STOPSIGNAL SIGUSR1"
fi

exit $((n_fail > 0))
