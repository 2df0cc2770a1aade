-- Unsubscribes one socket of node ARGV[1] (presence user ARGV[2], or ''). A no-op for what the
-- node does not hold (it was reaped, or Redis lost it), so a late leave never takes a share
-- that belongs to someone else.
-- KEYS: nodes, users, infos, version, node_users, bus, vacate marker, removal markers.
-- ARGV[3]: the publish command, ARGV[4]: the member_removed frame, published here when this
-- was the user's last socket anywhere. With a vacate delay (ARGV[5] ms > 0) the vacate and
-- the removal are marked with token ARGV[6]: a join within the delay deletes the mark, and the
-- leaving node sends the webhook after the delay only if its mark is still there.
-- Returns {held, vacated, removed, subscription_count}.

local node, user = ARGV[1], ARGV[2]
if redis.call('HEXISTS', KEYS[1], node) == 0 then
  return {0, 0, 0, 0}
end
if redis.call('HINCRBY', KEYS[1], node, -1) <= 0 then
  redis.call('HDEL', KEYS[1], node)
end
local removed = 0
if user ~= '' and redis.call('HEXISTS', KEYS[5], user) == 1 then
  if redis.call('HINCRBY', KEYS[5], user, -1) <= 0 then
    redis.call('HDEL', KEYS[5], user)
  end
  if redis.call('HINCRBY', KEYS[2], user, -1) <= 0 then
    redis.call('HDEL', KEYS[2], user)
    redis.call('HDEL', KEYS[3], user)
    publish_presence(ARGV[3], KEYS[6], KEYS[4], ARGV[4])
    removed = 1
    if tonumber(ARGV[5]) > 0 then
      redis.call('HSET', KEYS[8], user, ARGV[6])
      redis.call('PEXPIRE', KEYS[8], 3 * tonumber(ARGV[5]))
    end
  end
end
local vacated = redis.call('EXISTS', KEYS[1]) == 0 and 1 or 0
if vacated == 1 then
  redis.call('PEXPIRE', KEYS[4], 86400000)
  if tonumber(ARGV[5]) > 0 then
    redis.call('SET', KEYS[7], ARGV[6], 'PX', 3 * tonumber(ARGV[5]))
  end
end
local count = 0
for _, c in ipairs(redis.call('HVALS', KEYS[1])) do count = count + tonumber(c) end
return {1, vacated, removed, count}
