// Opens a page in Debian's headless Chromium and checks that its <video>
// plays: currentTime must pass --min-time seconds and then, sampled again a
// moment later, be larger still. Prints one JSON line on stdout:
//   {"ok":true,"currentTime":4.2,"videoWidth":320,...,"errors":[...]}
// and exits 0 when the video plays, 1 when it does not, 2 on a usage or
// browser start-up error. Every wait is bounded; the browser is always closed.
//
//   node tests/browser/check.mjs URL [--timeout S] [--min-time S] [--screenshot FILE.png]
//
// Installed by scripts/install-players.sh (playwright-core drives
// /usr/bin/chromium; it never downloads a browser).
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const USAGE = 'usage: node check.mjs URL [--timeout SECONDS] [--min-time SECONDS] [--screenshot FILE.png]';

// What Chromium needs on these machines: no sandbox as root, no GPU, and no
// background connections to the outside (the network is closed).
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
];

function parseArgs(argv) {
  const opts = { url: null, timeout: 30, minTime: 1, screenshot: null, executable: '/usr/bin/chromium' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    const number = () => {
      const v = Number(value());
      if (!Number.isFinite(v) || v < 0) throw new Error(`${a} needs a non-negative number`);
      return v;
    };
    if (a === '--timeout') opts.timeout = number();
    else if (a === '--min-time') opts.minTime = number();
    else if (a === '--screenshot') opts.screenshot = value();
    else if (a === '--chromium') opts.executable = value();
    else if (a === '-h' || a === '--help') throw new Error(USAGE);
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else if (opts.url === null) opts.url = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (!opts.url) throw new Error(USAGE);
  return opts;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Rejects after `ms` so that no single browser call can hang the check.
function bounded(promise, ms, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

function sampleVideo() {
  const v = document.querySelector('video');
  if (!v) return null;
  const status = document.querySelector('#status');
  return {
    currentTime: v.currentTime,
    paused: v.paused,
    readyState: v.readyState,
    videoWidth: v.videoWidth,
    videoHeight: v.videoHeight,
    videoError: v.error ? `${v.error.code} ${v.error.message || ''}`.trim() : null,
    status: status ? status.textContent : null,
  };
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: e.message }));
    return 2;
  }

  // A hard stop in case something below ignores its own bound.
  const watchdog = setTimeout(() => {
    console.log(JSON.stringify({ ok: false, error: 'watchdog: check.mjs ran too long' }));
    process.exit(1);
  }, (opts.timeout + 60) * 1000);
  watchdog.unref();

  const errors = [];
  const MAX_ERRORS = 40;
  const note = (text) => {
    if (errors.length < MAX_ERRORS) errors.push(text.slice(0, 500));
    else if (errors.length === MAX_ERRORS) errors.push('(more errors left out)');
  };
  const result = { ok: false, url: opts.url, currentTime: null, errors };
  const userDataDir = mkdtempSync(join(tmpdir(), 'srs-proxy-chromium-'));
  let context = null;
  let code = 1;
  try {
    try {
      context = await chromium.launchPersistentContext(userDataDir, {
        executablePath: opts.executable,
        headless: true,
        args: CHROMIUM_ARGS,
        viewport: { width: 960, height: 720 },
        timeout: 30000,
      });
    } catch (e) {
      result.error = `chromium did not start: ${e.message.split('\n')[0]}`;
      return (code = 2);
    }
    const page = context.pages()[0] || (await bounded(context.newPage(), 10000, 'new page'));
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const where = msg.location() && msg.location().url ? ` (${msg.location().url})` : '';
      note(`${msg.text()}${where}`);
    });
    page.on('pageerror', (err) => note(`pageerror: ${String(err.message || err)}`));
    page.on('requestfailed', (req) => {
      const f = req.failure();
      // Aborted media requests are normal when a player seeks or reloads.
      if (f && f.errorText !== 'net::ERR_ABORTED') note(`requestfailed: ${req.url()} ${f.errorText}`);
    });

    const deadline = Date.now() + opts.timeout * 1000;
    try {
      const resp = await page.goto(opts.url, { waitUntil: 'domcontentloaded', timeout: 15000 });
      result.httpStatus = resp ? resp.status() : null;
    } catch (e) {
      result.error = `could not open the page: ${e.message.split('\n')[0]}`;
      return (code = 1);
    }

    // Wait for currentTime > minTime, then sample again: it must have grown.
    let first = null;
    let last = null;
    while (Date.now() < deadline) {
      last = await bounded(page.evaluate(sampleVideo), 5000, 'reading the video').catch((e) => ({
        evalError: e.message,
      }));
      if (last && last.currentTime > opts.minTime) {
        if (first === null || last.currentTime < first.currentTime) {
          first = last; // (a player that reloaded starts over)
        } else if (last.currentTime > first.currentTime) {
          result.ok = true;
          break;
        }
      }
      await sleep(first === null ? 250 : 1000);
    }
    if (last) Object.assign(result, last);
    if (first) result.firstTime = first.currentTime;
    if (!result.ok) {
      result.error = last && last.evalError
        ? last.evalError
        : last === null || last.currentTime === undefined
        ? 'no <video> element on the page'
        : first === null
          ? `currentTime never passed ${opts.minTime} s within ${opts.timeout} s`
          : `currentTime stuck at ${first.currentTime}`;
    }
    if (opts.screenshot) {
      await bounded(page.screenshot({ path: opts.screenshot, timeout: 10000 }), 15000, 'screenshot')
        .then(() => (result.screenshot = opts.screenshot))
        .catch((e) => note(`screenshot: ${e.message.split('\n')[0]}`));
    }
    code = result.ok ? 0 : 1;
    return code;
  } finally {
    if (context) await bounded(context.close(), 15000, 'closing chromium').catch(() => {});
    try {
      rmSync(userDataDir, { recursive: true, force: true });
    } catch {
      // A Chromium helper may still hold a file; the temp dir is harmless.
    }
    console.log(JSON.stringify(result));
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.log(JSON.stringify({ ok: false, error: `check.mjs: ${e && e.stack ? e.stack : e}` }));
    process.exit(1);
  },
);
