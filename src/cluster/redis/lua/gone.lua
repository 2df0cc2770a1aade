-- After a resync: a presence user whose leave could not be recorded while Redis was away.
-- When no node holds it any more, its member_removed is published here (in roster order), so
-- the clients that saw it join see it go. KEYS: users, version, bus. ARGV[1]: the user,
-- ARGV[2]: the publish command, ARGV[3]: the member_removed frame. Returns 1 if published.

-- The roster version: a counter that starts from Redis time (µs) when the key is absent, so it
-- keeps growing past every version clients hold even after Redis lost its data.
local function bump(key)
  if redis.call('EXISTS', key) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', key, string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2])))
  end
  return redis.call('INCR', key)
end

if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return 0
end
local v = bump(KEYS[2])
redis.call(ARGV[2], KEYS[3], 'P' .. string.format('%.0f', v) .. '\n' .. ARGV[3])
return 1
