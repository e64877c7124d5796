// Publishes with whip.html and plays with whep.html in one headless Chromium
// (its fake camera and microphone), and checks the player: its <video> time
// advances and the page's RTCPeerConnection decodes frames. Prints one JSON
// line: {"ok":true,"publisher":{...},"player":{...},"errors":[...]}; exits 0
// when the player plays, 1 when not, 2 when Chromium does not start.
//
//   node tests/browser/webrtc.mjs WHIP_PAGE_URL WHEP_PAGE_URL [--timeout S] [--min-frames N]
//
// Chromium drops loopback from ICE unless told: run it in a network namespace
// with only loopback (tests/browser/webrtc-netns.sh), with the flags below.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
  '--mute-audio',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function bounded(promise, ms, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

function sample() {
  const v = document.querySelector('video');
  const r = window.__rtc || {};
  return {
    state: r.state,
    error: r.error,
    resource: r.resource,
    framesDecoded: r.framesDecoded,
    currentTime: v ? v.currentTime : null,
    videoWidth: v ? v.videoWidth : null,
    status: (document.querySelector('#status') || {}).textContent,
  };
}

async function main() {
  const argv = process.argv.slice(2);
  const opts = { whip: null, whep: null, timeout: 40, minFrames: 30 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--timeout') opts.timeout = Number(argv[++i]);
    else if (argv[i] === '--min-frames') opts.minFrames = Number(argv[++i]);
    else if (!opts.whip) opts.whip = argv[i];
    else opts.whep = argv[i];
  }
  const watchdog = setTimeout(() => {
    console.log(JSON.stringify({ ok: false, error: 'watchdog: webrtc.mjs ran too long' }));
    process.exit(1);
  }, (opts.timeout + 60) * 1000);
  watchdog.unref();
  const errors = [];
  const result = { ok: false, errors };
  const dir = mkdtempSync(join(tmpdir(), 'srs-proxy-chromium-'));
  let context = null;
  let code = 1;
  try {
    try {
      context = await chromium.launchPersistentContext(dir, {
        executablePath: '/usr/bin/chromium',
        headless: true,
        args: CHROMIUM_ARGS,
        timeout: 30000,
      });
    } catch (e) {
      result.error = `chromium did not start: ${e.message.split('\n')[0]}`;
      return (code = 2);
    }
    const open = async (url) => {
      const page = await bounded(context.newPage(), 10000, 'new page');
      page.on('console', (m) => m.type() === 'error' && errors.length < 40 && errors.push(m.text().slice(0, 300)));
      page.on('pageerror', (e) => errors.length < 40 && errors.push(`pageerror: ${e.message}`));
      await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 15000 });
      return page;
    };
    const deadline = Date.now() + opts.timeout * 1000;
    const pub = await open(opts.whip);
    while (Date.now() < deadline) {
      result.publisher = await bounded(pub.evaluate(sample), 5000, 'publisher');
      if (result.publisher.state === 'connected' || result.publisher.error) break;
      await sleep(250);
    }
    if (result.publisher.state !== 'connected') {
      result.error = `the WHIP page did not connect: ${JSON.stringify(result.publisher)}`;
      return (code = 1);
    }
    const play = await open(opts.whep);
    let first = null;
    while (Date.now() < deadline) {
      const s = await bounded(play.evaluate(sample), 5000, 'player');
      result.player = s;
      if (s.error) break;
      if (s.currentTime > 1 && s.framesDecoded >= opts.minFrames) {
        if (first === null) first = s;
        else if (s.currentTime > first.currentTime && s.framesDecoded > first.framesDecoded) {
          result.ok = true;
          result.firstTime = first.currentTime;
          break;
        }
      }
      await sleep(500);
    }
    if (!result.ok) result.error = `the WHEP page did not play: ${JSON.stringify(result.player)}`;
    code = result.ok ? 0 : 1;
    return code;
  } finally {
    if (context) await bounded(context.close(), 15000, 'closing chromium').catch(() => {});
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // a helper may still hold a file
    }
    console.log(JSON.stringify(result));
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.log(JSON.stringify({ ok: false, error: `webrtc.mjs: ${e && e.stack ? e.stack : e}` }));
    process.exit(1);
  },
);
