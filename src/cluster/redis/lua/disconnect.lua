-- Gives back ARGV[2] connection slots of node ARGV[1] ('all': a reap). KEYS: the app's
-- connections hash. A no-op for what the node does not hold.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 0
end
if ARGV[2] == 'all' or redis.call('HINCRBY', KEYS[1], ARGV[1], -tonumber(ARGV[2])) <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 1
