-- Removes everything node ARGV[1] held on one channel: a dead node's share (the reaper), or
-- a node's own shares it could not give back while Redis was away. Each presence user left
-- with no socket anywhere gets its member_removed, published here, in roster order.
-- KEYS: nodes, users, infos, version, node_users (of ARGV[1]), bus. ARGV[2]: the publish
-- command, ARGV[3]: the channel name (for the frames).
-- Returns {held, vacated, subscription_count, removed user…}.

local held = redis.call('HDEL', KEYS[1], ARGV[1])
local reply = {held, 0, 0}
local shares = redis.call('HGETALL', KEYS[5])
for i = 1, #shares, 2 do
  local user, c = shares[i], tonumber(shares[i + 1])
  if redis.call('HINCRBY', KEYS[2], user, -c) <= 0 then
    redis.call('HDEL', KEYS[2], user)
    redis.call('HDEL', KEYS[3], user)
    publish_presence(ARGV[2], KEYS[6], KEYS[4], member_removed(ARGV[3], user))
    table.insert(reply, user)
  end
end
redis.call('DEL', KEYS[5])
if held == 1 and redis.call('EXISTS', KEYS[1]) == 0 then
  reply[2] = 1
  redis.call('PEXPIRE', KEYS[4], 86400000)
end
local count = 0
for _, c in ipairs(redis.call('HVALS', KEYS[1])) do count = count + tonumber(c) end
reply[3] = count
return reply
