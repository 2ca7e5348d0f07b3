# Sourced by ci/services (its helpers: log, apt_install, SUDO).
# --- HAProxy (binary only) -----------------------------------------------------
#
# `ci/bench --cluster` puts several service processes behind a real HAProxy
# (Debian's package). Only the binary is installed here: no global HAProxy is
# started (the package's own service is kept from starting, as every package
# here, by the absence of an init system); the bench starts its own, on free
# loopback ports, with a configuration it generates. Prints no URL.
# Skipped with CLIQUET_SKIP_HAPROXY=1.

if [ -z "${CLIQUET_SKIP_HAPROXY:-}" ] && ! command -v haproxy >/dev/null && [ ! -x /usr/sbin/haproxy ]; then
  apt_install haproxy
fi
