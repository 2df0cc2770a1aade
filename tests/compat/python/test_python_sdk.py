"""The Python `pusher` SDK (PyPI) against Herald, observed through real pusher-js clients."""

import hashlib
import hmac
import json

import pytest
from pusher.errors import PusherBadAuth, PusherBadRequest

from conftest import APP, USERS, WRONG_SECRET, sdk_for


def marker(sdk, channel, *listeners):
    """Triggers a marker on channel and waits for every listener to get it: anything queued
    for those sockets earlier has then arrived (Herald delivers a socket's frames in order)."""
    token = f"m{id(listeners)}{len(listeners[0].items)}"
    sdk.trigger(channel, "compat-marker", {"marker": token})
    for lst in listeners:
        lst.wait_frame("compat-marker", channel, lambda f: f["data"] == {"marker": token})


def test_trigger_reaches_pusher_js(sdk, listener, uniq):
    channel = uniq("py-news.")
    lst = listener()
    lst.subscribe(channel)
    assert sdk.trigger(channel, "App\\Events\\NewsPosted", {"title": "Hello", "tags": ["a", "b"]}) == {}
    frame = lst.wait_frame("App\\Events\\NewsPosted", channel)
    assert frame == {
        "event": "App\\Events\\NewsPosted",
        "channel": channel,
        "data": {"title": "Hello", "tags": ["a", "b"]},
    }
    # A string that is not JSON is relayed verbatim.
    sdk.trigger(channel, "raw", "just text, ünïcödé")
    assert lst.wait_frame("raw", channel)["data"] == "just text, ünïcödé"


def test_trigger_several_channels_and_socket_exclusion(sdk, listener, uniq):
    a, b = uniq("py-a."), uniq("py-b.")
    one, two = listener(), listener()
    one.subscribe(a)
    one.subscribe(b)
    two.subscribe(b)
    assert sdk.trigger([a, b], "multi", {"n": 1}) == {}
    one.wait_frame("multi", a)
    one.wait_frame("multi", b)
    two.wait_frame("multi", b)

    # socket_id: the sender's own connection is left out (Laravel's toOthers()).
    sid = one.connected()
    sdk.trigger(b, "others", {"n": 2}, socket_id=sid)
    assert two.wait_frame("others", b)["data"] == {"n": 2}
    marker(sdk, b, one, two)
    assert one.frames("others") == []
    assert [f["channel"] for f in one.frames("multi")] == [a, b]
    assert [f["channel"] for f in two.frames("multi")] == [b]


def test_trigger_batch(sdk, listener, uniq):
    a, b = uniq("py-batch-a."), uniq("py-batch-b.")
    lst = listener()
    lst.subscribe(a)
    lst.subscribe(b)
    res = sdk.trigger_batch(
        [
            {"channel": a, "name": "first", "data": {"i": 1}},
            {"channel": b, "name": "second", "data": "two"},
            {"channel": a, "name": "third", "data": {"i": 3}},
        ]
    )
    assert res == {}
    lst.wait_frame("third", a)
    got = [f for f in lst.frames() if f["event"] in ("first", "second", "third")]
    assert got == [
        {"event": "first", "channel": a, "data": {"i": 1}},
        {"event": "second", "channel": b, "data": "two"},
        {"event": "third", "channel": a, "data": {"i": 3}},
    ]


def test_channel_queries(sdk, listener, uniq):
    tag = uniq("pyq")
    room, pub = f"presence-{tag}-room", f"{tag}-news"
    ann, bob = listener(1), listener(2)
    for lst in (ann, bob):
        lst.subscribe(room)
        lst.subscribe(pub)

    assert sdk.channels_info(prefix_filter=f"presence-{tag}", attributes=["user_count"]) == {
        "channels": {room: {"user_count": 2}}
    }
    assert sdk.channels_info(prefix_filter=tag) == {"channels": {pub: {}}}
    assert sdk.channels_info(prefix_filter=f"none-{tag}") == {"channels": {}}
    assert sdk.channel_info(pub, ["subscription_count"]) == {"occupied": True, "subscription_count": 2}
    assert sdk.channel_info(room, ["user_count"]) == {"occupied": True, "user_count": 2}
    assert sdk.channel_info(f"{tag}-empty") == {"occupied": False}
    assert sdk.users_info(room) == {"users": [{"id": "1"}, {"id": "2"}]}
    with pytest.raises(PusherBadRequest):
        sdk.channel_info(pub, ["user_count"])


def test_authenticate_private_and_presence(sdk, backend, listener, uniq):
    ann = listener(1)
    private = f"private-{uniq('py-orders.')}"
    assert ann.subscribe(private) == {"event": "pusher_internal:subscription_succeeded", "channel": private, "data": {}}
    req = next(r for r in backend.auth_requests if r["params"].get("channel_name") == private)
    sid = req["params"]["socket_id"]
    assert sid == ann.connected()
    # The SDK's signature is HMAC-SHA256("socket_id:channel") with the app secret.
    expected = hmac.new(APP["secret"].encode(), f"{sid}:{private}".encode(), hashlib.sha256).hexdigest()
    assert backend.sdk.authenticate(private, sid) == {"auth": f"{APP['key']}:{expected}"}
    sdk.trigger(private, "secret", {"ok": True})
    assert ann.wait_frame("secret", private)["data"] == {"ok": True}

    room = f"presence-{uniq('py-room.')}"
    first = ann.subscribe(room)
    assert first["data"] == {"presence": {"ids": ["1"], "hash": {"1": USERS["1"]}, "count": 1}}
    bob = listener(2)
    second = bob.subscribe(room)
    assert second["data"]["presence"]["count"] == 2
    assert second["data"]["presence"]["hash"] == {"1": USERS["1"], "2": USERS["2"]}
    added = ann.wait_frame("pusher_internal:member_added", room)
    assert added == {
        "event": "pusher_internal:member_added",
        "channel": room,
        "data": {"user_id": "2", "user_info": USERS["2"]},
    }
    # Client events on a Python-authorized presence channel carry the sender's user_id.
    bob.send(op="trigger", channel=room, event="client-typing", data={"name": "Bob"})
    assert ann.wait_frame("client-typing", room) == {
        "event": "client-typing",
        "channel": room,
        "data": {"name": "Bob"},
        "user_id": "2",
    }


def test_signin_and_send_to_user(sdk, listener):
    ann = listener(1)
    ann.send(op="signin")
    ok = ann.wait_frame("pusher:signin_success")
    assert ok == {
        "event": "pusher:signin_success",
        "data": {"user_data": json.dumps({"id": "1", "user_info": {"name": "Ann"}})},
    }
    ann.wait_frame("pusher_internal:subscription_succeeded", "#server-to-user-1")
    assert sdk.send_to_user("1", "welcome", {"msg": "hi"}) == {}
    item = ann.wait(lambda i: i["type"] == "user_event" and i["event"] == "welcome", what="user event")
    assert item["data"] == {"msg": "hi"}


def test_wrong_secret_is_refused(herald):
    wrong = sdk_for(herald, secret=WRONG_SECRET)
    with pytest.raises(PusherBadAuth):
        wrong.trigger("py-news", "x", {})
    with pytest.raises(PusherBadAuth):
        wrong.channels_info()


def test_webhooks_pass_validate_webhook(sdk, backend, listener, uniq):
    room = f"presence-{uniq('py-hooks.')}"
    ann = listener(1)
    ann.subscribe(room)
    hook, event = backend.wait_webhook(lambda e: e["name"] == "channel_occupied" and e["channel"] == room)
    assert event == {"name": "channel_occupied", "channel": room}
    headers = {k.lower(): v for k, v in hook["headers"].items()}
    assert headers["content-type"] == "application/json"
    body = sdk.validate_webhook(headers["x-pusher-key"], headers["x-pusher-signature"], hook["body"])
    assert body is not None
    assert {"name": "channel_occupied", "channel": room} in body["events"]
    assert sdk.validate_webhook(headers["x-pusher-key"], headers["x-pusher-signature"], hook["body"] + " ") is None

    hook, event = backend.wait_webhook(lambda e: e["name"] == "member_added" and e["channel"] == room)
    assert event == {"name": "member_added", "channel": room, "user_id": "1"}
    ann.close()
    hook, event = backend.wait_webhook(lambda e: e["name"] == "channel_vacated" and e["channel"] == room)
    headers = {k.lower(): v for k, v in hook["headers"].items()}
    assert sdk.validate_webhook(headers["x-pusher-key"], headers["x-pusher-signature"], hook["body"]) is not None
    for h in backend.webhooks:
        hd = {k.lower(): v for k, v in h["headers"].items()}
        assert sdk.validate_webhook(hd["x-pusher-key"], hd["x-pusher-signature"], h["body"]) is not None, h
