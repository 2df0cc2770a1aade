-- After the vacate delay: whether the leaving node's vacate (ARGV[2] = '1') and its user's
-- removal (ARGV[3], or '') still stand, i.e. their marks still carry its token ARGV[1] (no join
-- anywhere cancelled them). Takes the marks away. KEYS: vacate marker, removal markers.
-- Returns {vacate_stands, removal_stands}.
local vacate, removal = 0, 0
if ARGV[2] == '1' and redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  vacate = 1
end
if ARGV[3] ~= '' and redis.call('HGET', KEYS[2], ARGV[3]) == ARGV[1] then
  redis.call('HDEL', KEYS[2], ARGV[3])
  removal = 1
end
return {vacate, removal}
