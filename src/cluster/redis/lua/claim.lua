-- Claims dead nodes for reaping: those whose lease ran out, and those whose reaper's claim ran
-- out (it died too). Each goes to exactly one caller. KEYS: live nodes, reaping.
-- ARGV[1]: how long a claim lasts (ms). Returns the claimed node ids.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local claimed = {}
for _, n in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('ZREM', KEYS[1], n)
  table.insert(claimed, n)
end
for _, n in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  table.insert(claimed, n)
end
for _, n in ipairs(claimed) do
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), n)
end
return claimed
