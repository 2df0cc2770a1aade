-- Renews node ARGV[1]'s lease for ARGV[2] ms of Redis time. KEYS: live nodes.
-- Returns the Redis time (ms).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return now
