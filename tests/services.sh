#!/usr/bin/env bash
# Starts the local services the suite talks to (PostgreSQL, Redis, RabbitMQ) when they are down,
# and installs Debian's chromium and chromium-driver for the dashboard's browser test when they
# are missing. `make test` runs it, so the README's test command works on a new machine; .ci/run relies on it.
set -uo pipefail

wait_for() {  # wait_for NAME COMMAND...: up to 30 s for COMMAND to succeed
  local name=$1; shift
  for _ in $(seq 30); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  echo "warning: $name did not come up; the tests that need it will fail" >&2
}

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  wait_for PostgreSQL pg_isready -h 127.0.0.1 -p 5432 -q
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis redis-cli -h 127.0.0.1 -p 6379 ping
fi

if command -v rabbitmq-server >/dev/null 2>&1 \
   && ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  echo "starting RabbitMQ"
  rabbitmq-server -detached
  wait_for RabbitMQ bash -c 'exec 3<>/dev/tcp/127.0.0.1/5672'
fi
# The browser test drives Debian's headless Chromium through its matching chromedriver
# (Selenium); nothing is downloaded from outside the package registries.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "installing chromium and chromium-driver"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver \
    fonts-dejavu-core >/dev/null \
    || echo "warning: chromium could not be installed; the browser test will fail" >&2
fi
exit 0
