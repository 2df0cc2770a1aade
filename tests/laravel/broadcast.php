<?php
// Laravel's own RedisBroadcaster (Debian's Illuminate 8 packages, predis) publishing one
// event the way a Laravel app's BroadcastManager builds it: the Redis key prefix
// (database.redis.options.prefix) in front of every channel name.
//
// Usage: php broadcast.php PORT EVENT SOCKET|- CHANNEL… < payload.json
//   SOCKET is the X-Socket-ID of the request that fired the event (toOthers()), - for none.

require '/usr/share/php/Illuminate/Broadcasting/autoload.php';
require '/usr/share/php/Illuminate/Redis/autoload.php';
require '/usr/share/php/Predis/autoload.php';

use Illuminate\Broadcasting\Broadcasters\RedisBroadcaster;
use Illuminate\Container\Container;
use Illuminate\Redis\RedisManager;

[, $port, $event, $socket] = $argv;
$channels = array_slice($argv, 4);
$redis = new RedisManager(new Container(), 'predis', [
    'default' => ['host' => '127.0.0.1', 'port' => (int) $port, 'database' => 0],
]);
$payload = json_decode(stream_get_contents(STDIN), true);
// What Illuminate\Broadcasting\BroadcastEvent puts in every payload: the event's public
// `socket` (InteractsWithSockets), set by toOthers(), else null.
$payload['socket'] = $socket === '-' ? null : $socket;
(new RedisBroadcaster($redis, 'default', 'laravel_database_'))->broadcast($channels, $event, $payload);
