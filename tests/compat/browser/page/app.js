// resources/js/echo.js + a small Blade view, as a Laravel app would have them.
/* global Echo, Pusher */
(function () {
  const params = new URLSearchParams(location.search);
  const EchoClass = Echo.default;
  window.Pusher = Pusher;
  const echo = new EchoClass({
    broadcaster: 'pusher',
    key: params.get('key'),
    cluster: 'mt1',
    wsHost: params.get('wsHost'),
    wsPort: Number(params.get('wsPort')),
    wssPort: Number(params.get('wsPort')),
    forceTLS: false,
    enabledTransports: ['ws', 'wss'],
    disableStats: true,
    // authEndpoint: the default '/broadcasting/auth' on this origin, with the session cookie.
  });
  window.echo = echo;

  const $ = (id) => document.getElementById(id);
  const add = (list, text, attrs = {}) => {
    const li = document.createElement('li');
    li.textContent = text;
    for (const [k, v] of Object.entries(attrs)) li.setAttribute(k, v);
    $(list).appendChild(li);
  };

  const conn = echo.connector.pusher.connection;
  conn.bind('state_change', ({ current }) => {
    $('status').textContent = current;
    $('status').dataset.state = current;
    $('socket-id').textContent = conn.socket_id || '-';
  });

  echo
    .private('orders.1')
    .subscribed(() => add('subscriptions', 'private-orders.1', { 'data-channel': 'private-orders.1' }))
    .error((e) => add('subscriptions', `private-orders.1 error ${e.status}`, { 'data-error': 'private-orders.1' }))
    .listen('OrderShipped', (e) => add('orders', `Order #${e.order.id} ${e.order.status}`, { 'data-order': e.order.id }));

  const members = new Map();
  const render = () => {
    $('members').replaceChildren();
    for (const u of members.values()) add('members', u.name, { 'data-member': u.id });
    $('member-count').textContent = String(members.size);
  };
  echo
    .join('room.1')
    .here((users) => {
      users.forEach((u) => members.set(u.id, u));
      render();
      add('subscriptions', 'presence-room.1', { 'data-channel': 'presence-room.1' });
    })
    .joining((u) => {
      members.set(u.id, u);
      render();
      add('room-log', `${u.name} joined`);
    })
    .leaving((u) => {
      members.delete(u.id);
      render();
      add('room-log', `${u.name} left`);
    })
    .listen('.chat.message', (e) => add('room-log', `${e.from}: ${e.text}`))
    .listenForWhisper('typing', (e) => add('room-log', `${e.name} is typing…`));
})();
