-- One more signed-in socket of a user on node ARGV[1]. KEYS: the user's nodes hash, its bus.
-- ARGV[2]: the publish command. When it is the user's first socket anywhere, its watchers are
-- told here (W1), in order with the offline notices. Returns 1 for a first socket.
local first = redis.call('EXISTS', KEYS[1]) == 0
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if first then
  redis.call(ARGV[2], KEYS[2], 'W1')
  return 1
end
return 0
