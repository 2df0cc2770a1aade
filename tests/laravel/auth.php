<?php
// A Laravel app's `POST /broadcasting/auth` on the `redis` broadcaster, answered by Laravel's
// own RedisBroadcaster (Debian's Illuminate 8 packages): routes/channels.php below, the
// session's user from the `test_user` cookie, Laravel's CSRF check on X-CSRF-TOKEN. Herald
// calls it for socket.io subscriptions, as laravel-echo-server does.
//
// Usage: AUTH_LOG=/path/requests.jsonl PHP_CLI_SERVER_WORKERS=4 php -S 127.0.0.1:PORT auth.php
// Every request is appended to AUTH_LOG (channel, cookie, headers) for the tests to inspect.
// Channels `private-hang.*` never answer in time and `private-garbage.*` answer HTML: the
// misbehaving endpoints Herald must survive.

namespace Symfony\Component\HttpKernel\Exception {
    // A Laravel app has it from symfony/http-kernel, which the Illuminate packages used here
    // do not pull in; RedisBroadcaster throws it to refuse.
    if (!class_exists(AccessDeniedHttpException::class)) {
        class AccessDeniedHttpException extends \RuntimeException
        {
        }
    }
}

namespace {
    require '/usr/share/php/Illuminate/Broadcasting/autoload.php';
    require '/usr/share/php/Illuminate/Redis/autoload.php';

    use Illuminate\Broadcasting\Broadcasters\RedisBroadcaster;
    use Illuminate\Container\Container;
    use Illuminate\Redis\RedisManager;
    use Symfony\Component\HttpKernel\Exception\AccessDeniedHttpException;

    final class User
    {
        public function __construct(public int $id, public string $name)
        {
        }

        public function getAuthIdentifier(): int
        {
            return $this->id;
        }
    }

    /** What RedisBroadcaster reads of Illuminate\Http\Request: the form field and the user. */
    final class AuthRequest
    {
        public function __construct(public string $channel_name, private ?User $user)
        {
        }

        public function user($guard = null): ?User
        {
            return $this->user;
        }
    }

    $path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
    if ($_SERVER['REQUEST_METHOD'] !== 'POST' || $path !== '/broadcasting/auth') {
        http_response_code(404);
        exit;
    }
    $channel = (string) ($_POST['channel_name'] ?? '');
    $headers = [];
    foreach ($_SERVER as $k => $v) {
        if (str_starts_with($k, 'HTTP_')) {
            $headers[strtolower(str_replace('_', '-', substr($k, 5)))] = $v;
        }
    }
    $headers['content-type'] = $_SERVER['CONTENT_TYPE'] ?? '';
    $entry = ['channel' => $channel, 'socket_id' => $_POST['socket_id'] ?? null, 'headers' => $headers];
    file_put_contents(getenv('AUTH_LOG') ?: '/dev/null', json_encode($entry) . "\n", FILE_APPEND | LOCK_EX);

    if (str_starts_with($channel, 'private-hang.')) {
        sleep(20);
    }
    if (str_starts_with($channel, 'private-garbage.')) {
        echo '<html><body>Whoops, looks like something went wrong.</body></html>';
        exit;
    }
    // VerifyCsrfToken: Echo sends the page's token as X-CSRF-TOKEN in auth.headers.
    if (($_SERVER['HTTP_X_CSRF_TOKEN'] ?? '') !== 'compat-csrf-token') {
        http_response_code(419);
        header('Content-Type: application/json');
        echo '{"message":"CSRF token mismatch."}';
        exit;
    }
    $users = [1 => 'Ann', 2 => 'Bob', 3 => 'Cy'];
    $id = (int) ($_COOKIE['test_user'] ?? 0);
    $user = isset($users[$id]) ? new User($id, $users[$id]) : null;

    $broadcaster = new RedisBroadcaster(new RedisManager(new Container(), 'predis', []), 'default', 'laravel_database_');
    // routes/channels.php
    $broadcaster->channel('App.Models.User.{id}', fn ($user, $id) => (int) $user->id === (int) $id);
    $broadcaster->channel('orders.{id}', fn ($user, $id) => true);
    $broadcaster->channel('chat.{room}', fn ($user, $room) => true);
    $broadcaster->channel('room.{room}', fn ($user, $room) => ['id' => $user->id, 'name' => $user->name]);
    $broadcaster->channel('forbidden.{x}', fn ($user, $x) => false);

    $request = new AuthRequest($channel, $user);
    try {
        $result = $broadcaster->auth($request);
        header('Content-Type: application/json');
        echo is_string($result) ? $result : json_encode($result);
    } catch (AccessDeniedHttpException $e) {
        http_response_code(403);
        header('Content-Type: application/json');
        echo '{"message":"This action is unauthorized."}';
    }
}
