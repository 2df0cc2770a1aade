-- Takes one of an app's connection slots for node ARGV[1], unless the app already has
-- ARGV[2] connections across the cluster. KEYS: the app's connections hash. Returns 1 if taken.
local total = 0
for _, c in ipairs(redis.call('HVALS', KEYS[1])) do total = total + tonumber(c) end
if total >= tonumber(ARGV[2]) then
  return 0
end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
return 1
