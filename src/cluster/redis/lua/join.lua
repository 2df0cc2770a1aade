-- Subscribes one socket of node ARGV[1]; on presence channels as user ARGV[2] (info ARGV[3]),
-- refused when the channel already has ARGV[4] distinct users and this one is new.
-- KEYS: nodes, users, infos, version, node_users, bus, vacate marker, removal markers.
-- ARGV[5]: the publish command, ARGV[6]: the member_added frame, published here when this
-- socket is the user's first. A join that finds the vacate (or the user's removal) still
-- held by its delay cancels it: neither webhook goes out (the clients still get the event).
-- Returns {0} when full, else {1, occupied, added, subscription_count, cancels_vacate,
-- cancels_removal[, user_count, version, user, info, user, info…]}.

local node, user = ARGV[1], ARGV[2]
local occupied = redis.call('EXISTS', KEYS[1]) == 0 and 1 or 0
local added = 0
local cancels_vacate, cancels_removal = 0, 0
if occupied == 1 and redis.call('DEL', KEYS[7]) == 1 then
  cancels_vacate = 1
end
if user ~= '' then
  if redis.call('HEXISTS', KEYS[2], user) == 0 then
    if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[4]) then
      return {0}
    end
    added = 1
  end
  redis.call('HINCRBY', KEYS[2], user, 1)
  redis.call('HINCRBY', KEYS[5], user, 1)
  redis.call('PERSIST', KEYS[4])
  if added == 1 then
    redis.call('HSET', KEYS[3], user, ARGV[3])
    publish_presence(ARGV[5], KEYS[6], KEYS[4], ARGV[6])
    cancels_removal = redis.call('HDEL', KEYS[8], user)
  end
end
redis.call('HINCRBY', KEYS[1], node, 1)
local count = 0
for _, c in ipairs(redis.call('HVALS', KEYS[1])) do count = count + tonumber(c) end
local reply = {1, occupied, added, count, cancels_vacate, cancels_removal}
if user ~= '' then
  table.insert(reply, redis.call('HLEN', KEYS[2]))
  table.insert(reply, tonumber(redis.call('GET', KEYS[4]) or '0'))
  for _, x in ipairs(redis.call('HGETALL', KEYS[3])) do table.insert(reply, x) end
end
return reply
