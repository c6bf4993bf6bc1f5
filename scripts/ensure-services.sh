#!/usr/bin/env bash
# Checks the services the tests use and starts any that is down, with the same commands this
# kind of machine uses at boot. PostgreSQL: isolation and RLS tests. Redis: sessions, Celery.
set -euo pipefail

wait_for() {
  local name="$1" check="$2"
  for _ in $(seq 1 60); do
    if eval "$check" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "$name did not come up" >&2
  return 1
}

postgres_up='pg_isready -q -h 127.0.0.1 -p 5432'
if ! eval "$postgres_up" >/dev/null 2>&1; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  wait_for PostgreSQL "$postgres_up"
fi

redis_up='redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG'
if ! eval "$redis_up" >/dev/null 2>&1; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis "$redis_up"
fi
