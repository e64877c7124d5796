"""A WebRTC origin stand-in for the proxy's tests, on aiortc's server side.

No packaged program here can be a WHIP/WHEP origin, so this plays SRS's part
with a real ICE/DTLS/SRTP stack: it answers WHIP and WHEP offers (and SRS's
legacy /rtc/v1/publish/ and /rtc/v1/play/ JSON API), forwards a publisher's
tracks to its players with MediaRelay, answers DELETE on the Location it gave,
and registers with the proxy like an SRS origin (POST /api/v1/srs/register
every 2 s with its api port and rtc endpoint).

Like SRS (ICE-lite), it never sends checks to the addresses in an offer: the
offer's candidates are dropped and the client is learnt from its STUN checks
(peer-reflexive), so media can only flow through the proxy. aioice offers
only non-loopback host addresses; here it offers 127.0.0.1 alone. aioice
binds one port per peer connection, so the answer's candidate names that
connection's port (the proxy takes the port from the answer's candidate).

Usage: origin.py --api PORT --register HOST:PORT [--id NAME]
GET /stats answers {"pcs": live peer connections, "deleted": [tokens],
"published": [streams]} for the tests.
"""

import argparse
import asyncio
import json
import os
import secrets
import urllib.parse

import aioice.ice
from aiohttp import ClientSession, web
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay

aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]

relay = MediaRelay()
streams = {}  # "app/stream" -> {"video": track, "audio": track}
pcs = {}  # token -> RTCPeerConnection
deleted = []
published = []


def strip_candidates(sdp):
    keep = [l for l in sdp.splitlines() if not l.startswith("a=candidate:") and l != "a=end-of-candidates"]
    return "\r\n".join(keep) + "\r\n"


def stream_of(request, streamurl=None):
    q = request.query
    if q.get("stream"):
        return f"{q.get('app', 'live')}/{q['stream']}"
    if streamurl:
        path = urllib.parse.urlparse(streamurl).path.strip("/")
        return path
    path = request.path
    for p in ("/rtc/v1/whip/", "/rtc/v1/whep/", "/rtc/v1/publish/", "/rtc/v1/play/"):
        if path.startswith(p):
            return path[len(p):].strip("/")
    return path.strip("/")


async def answer(offer_sdp, key, publish):
    pc = RTCPeerConnection()
    token = secrets.token_hex(8)
    pcs[token] = pc

    @pc.on("connectionstatechange")
    async def on_state():
        if pc.connectionState in ("failed", "closed"):
            pcs.pop(token, None)

    if publish:
        got = streams.setdefault(key, {})

        @pc.on("track")
        def on_track(track):
            got[track.kind] = track

    await pc.setRemoteDescription(RTCSessionDescription(strip_candidates(offer_sdp), "offer"))
    if not publish:
        for _ in range(100):
            if streams.get(key, {}).get("video"):
                break
            await asyncio.sleep(0.1)
        tracks = streams.get(key, {})
        for t in pc.getTransceivers():
            src = tracks.get(t.kind)
            if src is not None:
                t.sender.replaceTrack(relay.subscribe(src))
                t.direction = "sendonly"
    else:
        published.append(key)
    await pc.setLocalDescription(await pc.createAnswer())
    return pc.localDescription.sdp, token


async def whip_whep(request):
    if request.method == "DELETE":
        token = request.query.get("token", "")
        pc = pcs.pop(token, None)
        if pc is None:
            return web.Response(status=404, text="no such session")
        deleted.append(token)
        await pc.close()
        return web.Response(status=200)
    if request.method == "PATCH":
        token = request.query.get("token", "")
        if token not in pcs:
            return web.Response(status=404, text="no such session")
        frag = await request.text()
        if "a=ice-ufrag:" not in frag:
            # Trickled candidates: nothing to answer (the offer had them all).
            return web.Response(status=204, headers={"ETag": '"patched"'})
        # An ICE restart: the fragment of the answer (this stand-in does not
        # restart its ICE agent; the proxy's handling of the answer is the point).
        cands = [l for l in pcs[token].localDescription.sdp.splitlines() if l.startswith("a=candidate:")]
        body = "a=ice-ufrag:rstr\r\na=ice-pwd:restartpassword0123456789\r\n" + "".join(c + "\r\n" for c in cands)
        return web.Response(status=200, body=body.encode(), headers={"Content-Type": "application/trickle-ice-sdpfrag", "ETag": '"restarted"'})
    publish = request.path.startswith("/rtc/v1/whip/")
    offer = await request.text()
    key = stream_of(request)
    sdp, token = await answer(offer, key, publish)
    app, _, stream = key.rpartition("/")
    kind = "whip" if publish else "whep"
    loc = f"/rtc/v1/{kind}/?action=delete&token={token}&app={app}&stream={stream}"
    return web.Response(
        status=201,
        body=sdp.encode(),
        headers={"Content-Type": "application/sdp", "Location": loc, "ETag": f'"{token}"'},
    )


async def legacy(request):
    body = json.loads(await request.read())
    key = stream_of(request, body.get("streamurl"))
    publish = request.path.startswith("/rtc/v1/publish/")
    sdp, token = await answer(body["sdp"], key, publish)
    return web.json_response({"code": 0, "server": "standin", "service": "standin", "pid": str(os.getpid()), "sdp": sdp, "sessionid": token})


async def stats(request):
    return web.json_response({"pcs": len(pcs), "deleted": deleted, "published": published})


async def register_loop(proxy, api_port, ident):
    body = {
        "device_id": ident,
        "ip": "127.0.0.1",
        "server": f"srv-{ident}",
        "service": f"svc-{ident}",
        "pid": str(os.getpid()),
        # Not served here: the register API requires an RTMP endpoint.
        "rtmp": ["1"],
        "http": [],
        "api": [str(api_port)],
        "srt": [],
        # Where ICE would listen on an SRS origin; each aiortc peer connection
        # has its own port, which its answer's candidate names.
        "rtc": [f"udp://0.0.0.0:{api_port}"],
    }
    async with ClientSession() as s:
        while True:
            try:
                async with s.post(f"http://{proxy}/api/v1/srs/register", json=body) as r:
                    await r.read()
            except Exception as e:  # the proxy may not be up yet
                print("register failed:", e, flush=True)
            await asyncio.sleep(2)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--api", type=int, required=True)
    ap.add_argument("--register", required=True)
    ap.add_argument("--id", default="rtcorigin")
    a = ap.parse_args()
    app = web.Application()
    for p in ("/rtc/v1/whip/", "/rtc/v1/whep/"):
        app.router.add_route("*", p, whip_whep)
    app.router.add_post("/rtc/v1/publish/", legacy)
    app.router.add_post("/rtc/v1/play/", legacy)
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", a.api).start()
    print(f"origin listening on 127.0.0.1:{a.api}", flush=True)
    await register_loop(a.register, a.api, a.id)


if __name__ == "__main__":
    asyncio.run(main())
