# Shared by the benchmarks: run as root, with Airlock's side as an ordinary user (created if
# missing, with subordinate ids) and its own state directory. Source it after setting `why`
# (what root is needed for); it sets user, home, airlock and as_user.
[ "$(id -u)" = 0 ] || { echo "run as root ($why)" >&2; exit 2; }
user="${BENCH_USER:-airlock-e2e}"
airlock="${AIRLOCK:-/usr/local/bin/airlock}"
id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
grep -q "^$user:" /etc/subuid || usermod --add-subuids 200000-265535 --add-subgids 200000-265535 "$user"
home="$(getent passwd "$user" | cut -d: -f6)"
as_user() { runuser -u "$user" -- env HOME="$home" AIRLOCK_HOME="$home/.airlock-bench" "$@"; }
