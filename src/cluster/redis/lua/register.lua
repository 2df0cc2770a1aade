-- Sets node ARGV[1]'s share of one channel to what it really holds (after Redis came back,
-- possibly empty): ARGV[2] sockets, and per presence user ARGV[i] its ARGV[i+1] sockets with
-- info ARGV[i+2]. Users the node no longer holds are taken out; those left with no socket
-- anywhere get their member_removed (their leave could not be recorded while Redis was away).
-- Users new to the roster are added without an event: the clients never saw them go.
-- KEYS: nodes, users, infos, version, node_users (of ARGV[1]), bus. ARGV[3]: the publish
-- command, ARGV[4]: the channel name. Returns the number of member_removed published.

local node = ARGV[1]
redis.call('HSET', KEYS[1], node, ARGV[2])
redis.call('PERSIST', KEYS[4])
local old = {}
local shares = redis.call('HGETALL', KEYS[5])
for i = 1, #shares, 2 do old[shares[i]] = tonumber(shares[i + 1]) end
redis.call('DEL', KEYS[5])
for i = 5, #ARGV, 3 do
  local user, c, info = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  redis.call('HINCRBY', KEYS[2], user, c - (old[user] or 0))
  old[user] = nil
  redis.call('HSET', KEYS[5], user, c)
  redis.call('HSETNX', KEYS[3], user, info)
end
local removed = 0
for user, c in pairs(old) do
  if redis.call('HINCRBY', KEYS[2], user, -c) <= 0 then
    redis.call('HDEL', KEYS[2], user)
    redis.call('HDEL', KEYS[3], user)
    publish_presence(ARGV[3], KEYS[6], KEYS[4], member_removed(ARGV[4], user))
    removed = removed + 1
  end
end
return removed
