-- One node's usage report for one app and day. KEYS[1]: the day's usage hash.
-- ARGV: messages to add, node id, the node's open connections, how long (ms) a node's report
-- counts towards the peak, the hash's time to live (ms).
-- The peak is the largest sum of the recent reports seen at any report. Returns {messages, peak}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local messages = redis.call('HINCRBY', KEYS[1], 'messages', ARGV[1])
redis.call('HSET', KEYS[1], 'c:' .. ARGV[2], ARGV[3] .. ':' .. now)
local sum = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local field = fields[i]
  if string.sub(field, 1, 2) == 'c:' then
    local count, at = string.match(fields[i + 1], '^(%d+):(%d+)$')
    if count and now - tonumber(at) <= tonumber(ARGV[4]) then
      sum = sum + tonumber(count)
    else
      redis.call('HDEL', KEYS[1], field)
    end
  end
end
local peak = tonumber(redis.call('HGET', KEYS[1], 'peak') or '0')
if sum > peak then
  peak = sum
  redis.call('HSET', KEYS[1], 'peak', peak)
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {messages, peak}
