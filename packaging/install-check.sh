#!/usr/bin/env bash
# Installs a built bonnie package on this machine, runs the installed broker and a worker from
# their installed paths as user bonnie with the packaged /etc/bonnie/bonnie.toml, checks that
# configuration with `bonnie config check`, hands them one Cyrus notification through the
# installed dealer, waits until it is archived, then purges the package and checks that nothing
# it made is left. Run as root on a machine without bonnie installed: it adds and removes the
# user bonnie and /var/lib/bonnie.
# Usage: packaging/install-check.sh target/debian/bonnie_<version>_amd64.deb
set -euo pipefail
deb=${1:?usage: packaging/install-check.sh PACKAGE.deb}
# Not the admin's own login: the packaged configuration drops those.
notification=$(grep -m 1 -v '"user":"cyrus"' "$(dirname "$0")/../examples/cyrus-3.6-scenario.jsonl")

if dpkg-query -W -f='${Status}' bonnie 2>/dev/null | grep -q "ok installed"; then
    echo "install-check: bonnie is installed already; this check would purge it" >&2
    exit 1
fi
dpkg -i "$deb"

# As bonnie (setpriv execs: started with & directly, $! is the daemon's own pid; through a
# function it would be a subshell's).
become_bonnie=(setpriv --reuid=bonnie --regid=bonnie --init-groups --)
as_bonnie() { "${become_bonnie[@]}" "$@"; }
pids=()
purged=false
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
# A check that fails half-way purges what it installed too, so that the machine is left as it
# was found and a second run can start again.
on_exit() {
    cleanup
    if ! $purged; then
        rmdir /run/bonnie 2>/dev/null || true
        dpkg --purge bonnie >/dev/null 2>&1 || true
    fi
}
trap on_exit EXIT

# Polls "$@" for up to a minute.
wait_for() {
    local what=$1; shift
    for _ in $(seq 600); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "install-check: gave up waiting for $what" >&2
    exit 1
}

for role in broker dealer worker admin; do as_bonnie bonnie keys generate "$role" >/dev/null; done
as_bonnie bonnie ledger init >/dev/null
as_bonnie bonnie-worker --check-plugins

"${become_bonnie[@]}" bonnie-broker --log-file /var/log/bonnie/broker.log & pids+=($!)
wait_for "the installed broker to answer" as_bonnie bonnie status --timeout 1
"${become_bonnie[@]}" bonnie-worker --log-file /var/log/bonnie/worker.log & pids+=($!)
wait_for "the installed worker to connect" \
    sh -c 'setpriv --reuid=bonnie --regid=bonnie --init-groups -- bonnie status | grep -q "^Workers: [1-9]"'
# The packaged configuration, its keys, plugins and the peers this host's roles reach. The
# dealer daemon's socket folder is /run/bonnie, which systemd makes for the dealer's unit
# (RuntimeDirectory=bonnie); made here as it would, since no unit runs in this check.
install -d -o bonnie -g bonnie -m 0755 /run/bonnie
as_bonnie bonnie config check --role broker,dealer,worker
rmdir /run/bonnie

printf '%s' "$notification" | as_bonnie bonnie-dealer
wait_for "the notification to be archived" \
    sh -c 'setpriv --reuid=bonnie --regid=bonnie --init-groups -- bonnie status | grep -q "DONE [1-9]"'
echo "install-check: the installed broker and worker archived a notification"

cleanup
pids=()
purged=true
dpkg --purge bonnie
left=()
for path in /var/lib/bonnie /var/log/bonnie /etc/bonnie /usr/lib/bonnie /usr/bin/bonnie; do
    [ ! -e "$path" ] || left+=("$path")
done
getent passwd bonnie >/dev/null && left+=("user bonnie")
if [ ${#left[@]} -gt 0 ]; then
    echo "install-check: purge left ${left[*]}" >&2
    exit 1
fi
echo "install-check: purged, nothing left"
