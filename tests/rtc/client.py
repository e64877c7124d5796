"""aiortc as a WebRTC client of the proxy: WHIP publisher, WHEP or legacy
player; prints one JSON line per session with what it saw.

  client.py publish URL --seconds S
  client.py play URL --seconds S [--sessions N] [--legacy STREAMURL]
            [--rebind-after T] [--delete-after T]

Non-trickle: the offer carries its candidates (127.0.0.1 only, as every test
keeps ICE on loopback). A player counts decoded video frames; with
--rebind-after it moves to a new local UDP port mid-session and sends a
fresh STUN check from there, and reports frames decoded before and after;
with --delete-after it DELETEs its resource (the Location it got) and
reports the status. --media-port P sends media to port P instead of the
answer's candidates' (a UDP balancer routing the client to another proxy
than the one it signalled through).
"""

import argparse
import asyncio
import fractions
import json
import sys
import time
import urllib.parse

import aioice.ice
import av
from aiohttp import ClientSession
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]


class Source(VideoStreamTrack):
    """A small moving test picture (decodable, cheap to encode)."""

    def __init__(self):
        super().__init__()
        self.n = 0

    async def recv(self):
        pts, tb = await self.next_timestamp()
        frame = av.VideoFrame(width=160, height=120, format="yuv420p")
        for i, p in enumerate(frame.planes):
            p.update(bytes([(self.n * 3 + i * 70) % 256]) * p.buffer_size)
        self.n += 1
        frame.pts, frame.time_base = pts, tb
        return frame


async def wait_gathered(pc):
    for _ in range(100):
        if pc.iceGatheringState == "complete":
            return
        await asyncio.sleep(0.05)


async def signal(http, url, pc, legacy):
    offer = pc.localDescription.sdp
    if legacy:
        body = json.dumps({"api": url, "streamurl": legacy, "sdp": offer})
        async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
            text = await r.text()
            if r.status != 200:
                raise RuntimeError(f"POST {url}: {r.status} {text}")
            ans = json.loads(text)
            return ans["sdp"], None
    async with http.post(url, data=offer, headers={"Content-Type": "application/sdp"}) as r:
        text = await r.text()
        if r.status not in (200, 201):
            raise RuntimeError(f"POST {url}: {r.status} {text}")
        if r.headers.get("Content-Type") != "application/sdp":
            raise RuntimeError(f"answer Content-Type {r.headers.get('Content-Type')!r}")
        if not r.headers.get("ETag"):
            raise RuntimeError("the origin's ETag did not come through")
        loc = r.headers.get("Location")
        return text, urllib.parse.urljoin(url, loc) if loc else None


def ufrag_of(sdp):
    for line in sdp.splitlines():
        if line.startswith("a=ice-ufrag:"):
            return line[len("a=ice-ufrag:"):].strip()
    return None


def ice_connection(pc):
    t = pc.getTransceivers()[0]
    return t.receiver.transport.transport.iceGatherer._connection


async def rebind(pc):
    """The client's NAT binding changes: its packets now leave from a new
    local port, and a fresh STUN check from there tells the proxy."""
    conn = ice_connection(pc)
    pair = conn._nominated[1]
    proto = pair.protocol
    loop = asyncio.get_running_loop()

    class Forward(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            proto.datagram_received(data, addr)

        def connection_lost(self, exc):
            # aioice's close waits for its protocol to see the socket go.
            proto.connection_lost(exc)

    old = proto.transport
    new, _ = await loop.create_datagram_endpoint(Forward, local_addr=("127.0.0.1", 0))
    proto.transport = new
    old_port, new_port = old.get_extra_info("sockname")[1], new.get_extra_info("sockname")[1]
    req = conn.build_request(pair, nominate=False)
    await proto.request(req, pair.remote_addr, integrity_key=conn.remote_password.encode())
    old.close = lambda: None  # the shared protocol must not see a close
    return old_port, new_port


def media_port(answer, port):
    """The answer with every candidate's port set to `port`."""
    if not port:
        return answer
    out = []
    for line in answer.split("\r\n"):
        if line.startswith("a=candidate:"):
            f = line.split(" ")
            f[5] = str(port)
            line = " ".join(f)
        out.append(line)
    return "\r\n".join(out)


async def play_one(http, args, idx):
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    frames = {"n": 0, "at_rebind": None}
    done = asyncio.Event()

    @pc.on("track")
    def on_track(track):
        if track.kind != "video":
            return

        async def count():
            while True:
                try:
                    await track.recv()
                except Exception:
                    return
                frames["n"] += 1

        asyncio.ensure_future(count())

    await pc.setLocalDescription(await pc.createOffer())
    await wait_gathered(pc)
    out = {"session": idx}
    try:
        answer, resource = await signal(http, args.url, pc, args.legacy)
        answer = media_port(answer, args.media_port)
        out["resource"] = resource
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        out["ufrag"] = f"{ufrag_of(answer)}:{ufrag_of(pc.localDescription.sdp)}"
        out["candidates"] = [l for l in answer.splitlines() if l.startswith("a=candidate:")]
        start = time.monotonic()
        while time.monotonic() - start < args.seconds:
            await asyncio.sleep(0.1)
            t = time.monotonic() - start
            if args.rebind_after and frames["at_rebind"] is None and t >= args.rebind_after:
                frames["at_rebind"] = frames["n"]
                out["old_port"], out["new_port"] = await rebind(pc)
            if args.delete_after and "delete_status" not in out and t >= args.delete_after:
                if args.patch:
                    # Trickle (nothing to answer), then an ICE restart's fragment.
                    frag = {"Content-Type": "application/trickle-ice-sdpfrag"}
                    trickle = "a=mid:0\r\na=candidate:9 1 udp 1 127.0.0.1 9 typ host\r\n"
                    async with http.patch(resource, data=trickle, headers=frag) as r:
                        out["patch_trickle_status"] = r.status
                    restart = "a=ice-ufrag:rest\r\na=ice-pwd:restartclientpassword01\r\n"
                    async with http.patch(resource, data=restart, headers=frag) as r:
                        out["patch_restart_status"] = r.status
                        out["patch_restart_type"] = r.headers.get("Content-Type")
                        out["patch_restart_etag"] = r.headers.get("ETag")
                        out["patch_restart_body"] = await r.text()
                async with http.delete(resource) as r:
                    out["delete_status"] = r.status
                out["frames_at_delete"] = frames["n"]
        out["frames"] = frames["n"]
        if frames["at_rebind"] is not None:
            out["frames_after_rebind"] = frames["n"] - frames["at_rebind"]
    except Exception as e:
        out["error"] = str(e)
    out["state"] = pc.connectionState
    await pc.close()
    print(json.dumps(out), flush=True)
    return out


async def publish(http, args):
    pc = RTCPeerConnection()
    pc.addTrack(Source())
    pc.addTrack(AudioStreamTrack())
    await pc.setLocalDescription(await pc.createOffer())
    await wait_gathered(pc)
    answer, resource = await signal(http, args.url, pc, args.legacy)
    answer = media_port(answer, args.media_port)
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    print(json.dumps({"published": True, "resource": resource}), flush=True)
    start = time.monotonic()
    while time.monotonic() - start < args.seconds:
        await asyncio.sleep(0.5)
    print(json.dumps({"published": True, "state": pc.connectionState}), flush=True)
    await pc.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["publish", "play"])
    ap.add_argument("url")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--sessions", type=int, default=1)
    ap.add_argument("--legacy")
    ap.add_argument("--rebind-after", type=float)
    ap.add_argument("--delete-after", type=float)
    ap.add_argument("--media-port", type=int)
    ap.add_argument("--patch", action="store_true", help="PATCH the resource (trickle, ICE restart) before the DELETE")
    args = ap.parse_args()
    async with ClientSession() as http:
        if args.mode == "publish":
            await publish(http, args)
        else:
            await asyncio.gather(*(play_one(http, args, i) for i in range(args.sessions)))


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
