-- ARGV[3] fewer signed-in sockets of a user on node ARGV[1] ('all' for every one: a reap).
-- KEYS: the user's nodes hash, its bus. ARGV[2]: the publish command. A no-op for what the
-- node does not hold. When no socket is left anywhere, its watchers are told here (W0).
-- Returns 1 when the user went offline.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 0
end
if ARGV[3] == 'all' or redis.call('HINCRBY', KEYS[1], ARGV[1], -tonumber(ARGV[3])) <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call(ARGV[2], KEYS[2], 'W0')
  return 1
end
return 0
