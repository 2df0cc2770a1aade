// resources/js/echo.js of a laravel-echo-server app, pointed at Herald: the session cookie
// goes with the handshake (withCredentials for polling), the CSRF token from the meta tag.
/* global Echo, io */
(function () {
  const params = new URLSearchParams(location.search);
  const EchoClass = Echo.default;
  const echo = new EchoClass({
    broadcaster: 'socket.io',
    host: params.get('host'),
    client: io,
    withCredentials: true,
  });
  window.echo = echo;

  const $ = (id) => document.getElementById(id);
  const add = (list, text, attrs = {}) => {
    const li = document.createElement('li');
    li.textContent = text;
    for (const [k, v] of Object.entries(attrs)) li.setAttribute(k, v);
    $(list).appendChild(li);
  };

  const socket = echo.connector.socket;
  const show = () => {
    $('status').textContent = socket.connected ? 'connected' : 'disconnected';
    $('status').dataset.state = socket.connected ? 'connected' : 'disconnected';
    $('socket-id').textContent = socket.id || '-';
    $('transport').textContent = socket.io.engine ? socket.io.engine.transport.name : '-';
  };
  socket.on('connect', () => {
    show();
    socket.io.engine.on('upgrade', show);
  });
  socket.on('disconnect', show);

  echo
    .private('orders.1')
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
    .listenForWhisper('typing', (e) => add('room-log', `${e.name} is typing…`))
    .listen('.chat.message', (e) => add('room-log', `${e.from}: ${e.text}`));
})();
