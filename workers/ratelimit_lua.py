"""The Lua script behind ``workers.ratelimit.RedisRateLimiter``.

One script, one key per provider account, so every decision is a single atomic step in
Redis and the time comes from Redis (``TIME``), never from the calling machine. The
in-process twin, ``LocalRateLimiter``, follows the same rules in Python; a change here
must be mirrored in ``workers.ratelimit._Bucket``.

State (one hash, ``{prefix}ratelimit:{account}:state``):

    rt, mt   tokens left in the requests and messages buckets (mt may be negative: a
             request larger than the bucket is let through when the bucket is full and
             leaves a debt, so the long-run rate still holds)
    ts       when rt and mt were last brought up to date (may lie in the future: the
             buckets stay empty until a 429 block ends)
    f0, t0   the adaptive factor set by the last 429 and when its recovery starts
    bu       blocked until (absolute Redis time)
    dw       senders are waiting until then: set when an ``acquire`` of a send (messages
             > 0) is refused, so ``spare`` requests (receipt polls) keep out of a
             saturated account's way
    grants, msgs, n429   counters for ``stats()``

ARGV: op ("acquire" | "spare" | "penalise" | "stats"), requests/s, messages/s, request burst,
message burst, amount (messages to send, or seconds to block), backoff multiplier,
minimum factor, recovery step, recovery interval (s), idle TTL (s), how long after a
refusal the account still counts as saturated (s). A rate of 0 means
that dimension is unlimited.

Numbers go back to Python as strings: Redis would truncate a Lua number to an integer.
"""

from __future__ import annotations

RATE_LIMIT_SCRIPT = r"""
local key = KEYS[1]
local op = ARGV[1]
local req_rate = tonumber(ARGV[2])
local msg_rate = tonumber(ARGV[3])
local req_burst = tonumber(ARGV[4])
local msg_burst = tonumber(ARGV[5])
local amount = tonumber(ARGV[6])
local backoff = tonumber(ARGV[7])
local min_factor = tonumber(ARGV[8])
local step = tonumber(ARGV[9])
local interval = tonumber(ARGV[10])
local idle_ttl = tonumber(ARGV[11])
local demand_grace = tonumber(ARGV[12])

local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000

-- Float rounding must not turn "wait exactly this long" into another tiny wait.
local EPS = 1e-9

local FIELDS = {'rt', 'mt', 'ts', 'f0', 't0', 'bu', 'dw', 'grants', 'msgs', 'n429'}
local raw = redis.call('HMGET', key, unpack(FIELDS))
local s = {}
for i, name in ipairs(FIELDS) do
  if raw[i] then s[name] = tonumber(raw[i]) end
end

local function fmt(x)
  return string.format('%.17g', x)
end

-- The factor climbs back linearly from f0, starting when the last block ended.
local function factor()
  if not s.f0 then return 1.0 end
  local since = now - s.t0
  if since <= 0 then return s.f0 end
  return math.min(1.0, s.f0 + step * since / interval)
end

-- Tokens in a bucket now; a bucket never seen is full.
local function level(tokens, rate, cap)
  if tokens == nil then return cap end
  local elapsed = math.max(0, now - (s.ts or now))
  return math.min(cap, tokens + elapsed * rate)
end

local blocked_for = 0
if s.bu and s.bu > now then blocked_for = s.bu - now end

-- Keep the key while it still matters (block, recovery, refill), then an idle while.
local function keep(f)
  local ttl = idle_ttl + blocked_for
  if f < 1 then ttl = ttl + (1 - f) / step * interval end
  if req_rate > 0 then ttl = ttl + req_burst / req_rate end
  if msg_rate > 0 then ttl = ttl + msg_burst / msg_rate end
  redis.call('PEXPIRE', key, math.ceil(ttl * 1000))
end

local f = factor()
local req_cap = math.max(1, req_burst * f)
local msg_cap = math.max(1, msg_burst * f)

if op == 'acquire' or op == 'spare' then
  if blocked_for > 0 then return {0, fmt(blocked_for)} end
  -- A spare request waits while any sender has been refused lately (-1: come back later).
  if op == 'spare' and s.dw and s.dw > now then return {0, '-1'} end
  local wait = 0
  local rt, mt
  if req_rate > 0 then
    rt = level(s.rt, req_rate * f, req_cap)
    if rt < 1 - EPS then wait = math.max(wait, (1 - rt) / (req_rate * f)) end
  end
  if msg_rate > 0 then
    mt = level(s.mt, msg_rate * f, msg_cap)
    local need = math.min(amount, msg_cap)
    if mt < need - EPS then wait = math.max(wait, (need - mt) / (msg_rate * f)) end
  end
  if wait > 0 then
    if op == 'acquire' and amount > 0 then
      redis.call('HSET', key, 'dw', fmt(now + wait + demand_grace))
      keep(f)
    end
    return {0, fmt(wait)}
  end
  local update = {'ts', fmt(now), 'grants', (s.grants or 0) + 1, 'msgs', (s.msgs or 0) + amount}
  if rt then table.insert(update, 'rt'); table.insert(update, fmt(rt - 1)) end
  if mt then table.insert(update, 'mt'); table.insert(update, fmt(mt - amount)) end
  redis.call('HSET', key, unpack(update))
  keep(f)
  return {1, '0'}
end

if op == 'penalise' then
  local until_ = math.max(s.bu or 0, now + amount)
  local new_episode = blocked_for <= 0
  local f0 = s.f0 or 1.0
  -- 429s for requests already in flight when the block began are the same episode:
  -- they extend the block but do not lower the rate again.
  if new_episode then f0 = math.max(min_factor, f * backoff) end
  blocked_for = until_ - now
  redis.call('HSET', key, 'bu', fmt(until_), 'f0', fmt(f0), 't0', fmt(until_),
    'ts', fmt(until_), 'rt', '0', 'mt', '0', 'n429', (s.n429 or 0) + 1)
  keep(f0)
  return {fmt(blocked_for), fmt(f0), new_episode and 1 or 0}
end

-- stats: read only
local rt = req_rate > 0 and level(s.rt, req_rate * f, req_cap) or 0
local mt = msg_rate > 0 and level(s.mt, msg_rate * f, msg_cap) or 0
return {fmt(f), fmt(blocked_for), s.grants or 0, s.msgs or 0, s.n429 or 0, fmt(rt), fmt(mt)}
"""
