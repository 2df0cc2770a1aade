-- Shared by every script: scripts.rs puts this in front of each one.

-- The roster version: a counter that starts from Redis time (µs) when the key is absent, so it
-- keeps growing past every version clients hold even after Redis lost its data.
local function bump(key)
  if redis.call('EXISTS', key) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', key, string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2])))
  end
  return redis.call('INCR', key)
end

-- Publishes a presence event on `bus` with the roster version it makes (wire.rs: 'P<v>\n<frame>').
local function publish_presence(cmd, bus, version_key, frame)
  local v = bump(version_key)
  redis.call(cmd, bus, 'P' .. string.format('%.0f', v) .. '\n' .. frame)
end

-- The member_removed frame of `user` on `channel`, for removals no node encoded (reaps, resyncs).
local function member_removed(channel, user)
  local data = '{"user_id":' .. cjson.encode(user) .. '}'
  return '{"event":"pusher_internal:member_removed","channel":' .. cjson.encode(channel)
    .. ',"data":' .. cjson.encode(data) .. '}'
end

