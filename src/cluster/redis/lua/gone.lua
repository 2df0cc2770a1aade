-- After a resync: a presence user whose leave could not be recorded while Redis was away.
-- When no node holds it any more, its member_removed is published here (in roster order), so
-- the clients that saw it join see it go. KEYS: users, version, bus. ARGV[1]: the user,
-- ARGV[2]: the publish command, ARGV[3]: the member_removed frame. Returns 1 if published.

if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return 0
end
publish_presence(ARGV[2], KEYS[3], KEYS[2], ARGV[3])
return 1
