// Drives Debian's Chromium (headless, over the DevTools protocol with puppeteer-core; nothing is
// downloaded) through the demo's web app as two customers, and writes what the browser saw:
//   - a German browser with the `new_kyc_form` beta flag, and an English one, each sign in,
//     open their profile and click through onboarding to "Complete";
//   - a HAR 1.2 of each session (chrome-har builds it from the Network events, as DevTools'
//     "Save all as HAR" does), plus one of the English profile page alone;
//   - screenshots of the profile page, the empty startups filter and the failing wizard step.
// Prints a JSON summary of what the DOM showed. Used by tests/integration/app/browser.rs; to refresh the
// README's screenshots against a running `sonde demo --fault onboarding-locale`:
//   cd tests/browser && npm ci && node app-session.mjs --base http://127.0.0.1:8080 \
//     --out "$(mktemp -d)" --screenshots ../../docs
// Every request goes to --base (127.0.0.1); Chromium's own background traffic is off.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { harFromMessages } from 'chrome-har';


const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const base = arg('base');
const out = arg('out');
const shots = arg('screenshots', null);
const chromium = arg('chromium', '/usr/bin/chromium');
if (!base || !out) {
  console.error('usage: node app-session.mjs --base URL --out DIR [--screenshots DIR] [--chromium PATH]');
  process.exit(2);
}
const origin = new URL(base);
if (!['127.0.0.1', 'localhost', '[::1]'].includes(origin.hostname)) {
  console.error(`refusing ${base}: the browser test talks to a loopback demo only`);
  process.exit(2);
}
fs.mkdirSync(out, { recursive: true });
if (shots) fs.mkdirSync(shots, { recursive: true });
const WAIT = { timeout: 15000 };
const NETWORK_EVENTS = ['Page.loadEventFired', 'Page.domContentEventFired', 'Page.frameStartedLoading',
  'Page.frameAttached', 'Page.frameScheduledNavigation', 'Network.requestWillBeSent',
  'Network.requestWillBeSentExtraInfo', 'Network.requestServedFromCache', 'Network.dataReceived',
  'Network.responseReceived', 'Network.responseReceivedExtraInfo', 'Network.resourceChangedPriority',
  'Network.loadingFinished', 'Network.loadingFailed'];

// What went over the wire arrives in the ExtraInfo events: the request headers Chromium really
// sent (Cookie and Host included) in `requestWillBeSentExtraInfo`, and the response's real
// status and headers in `responseReceivedExtraInfo` (a revalidated page is a 304 there, while
// `responseReceived` reports the cached 200). They may come before the events they belong to;
// chrome-har drops those and otherwise appends headers to the partial lists. DevTools' HAR
// export shows the wire version alone, so this does the same before chrome-har builds the HAR.
const STATUS_TEXT = { 304: 'Not Modified' };
function wireHeaders(events) {
  const byId = (method) => {
    const map = new Map();
    for (const e of events) {
      if (e.method !== method) continue;
      const list = map.get(e.params.requestId) || [];
      list.push(e.params);
      map.set(e.params.requestId, list);
    }
    return map;
  };
  const sent = byId('Network.requestWillBeSentExtraInfo');
  const received = byId('Network.responseReceivedExtraInfo');
  const out = [];
  for (const e of events) {
    if (e.method.endsWith('ExtraInfo')) continue;
    if (e.method === 'Network.requestWillBeSent') {
      const extra = (sent.get(e.params.requestId) || []).shift();
      // chrome-har lists the request's cookies from its Cookie header.
      const request = extra ? { ...e.params.request, headers: extra.headers } : e.params.request;
      out.push({ method: e.method, params: { ...e.params, request } });
    } else if (e.method === 'Network.responseReceived') {
      const extra = (received.get(e.params.requestId) || []).shift();
      let response = e.params.response;
      if (extra) {
        response = { ...response, headers: extra.headers };
        if (extra.statusCode && extra.statusCode !== response.status) {
          response.status = extra.statusCode;
          response.statusText = STATUS_TEXT[extra.statusCode] || response.statusText;
        }
      }
      out.push({ method: e.method, params: { ...e.params, response } });
    } else {
      out.push(e);
    }
  }
  return out;
}

function writeHar(file, events, version) {
  const har = harFromMessages(wireHeaders(events), { includeTextFromResponseBody: false });
  har.log.creator = { name: `chrome-har from ${version}`, version: '1' };
  fs.writeFileSync(file, JSON.stringify(har, null, 2));
  return har.log.entries.length;
}

async function session({ label, identity, acceptLanguage, flag, explore }) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    userDataDir,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      `--lang=${acceptLanguage.split(',')[0]}`],
  });
  const summary = { label, identity, consoleErrors: [] };
  try {
    const version = await browser.version();
    const page = await browser.newPage();
    await page.setViewport({ width: 1100, height: 760 });
    const cdp = await page.createCDPSession();
    const events = [];
    for (const method of NETWORK_EVENTS) cdp.on(method, (params) => events.push({ method, params }));
    await cdp.send('Page.enable');
    await cdp.send('Network.enable');
    // The browser's language: what it sends as Accept-Language and shows as navigator.language.
    await cdp.send('Network.setUserAgentOverride', { userAgent: await browser.userAgent(), acceptLanguage });
    page.on('console', (msg) => { if (msg.type() === 'error') summary.consoleErrors.push(msg.text()); });
    page.on('pageerror', (err) => summary.consoleErrors.push(`pageerror: ${err.message}`));

    const ready = (name) => page.waitForSelector(`body[data-ready="${name}"]`, WAIT);
    await page.goto(`${base}/app/${flag ? `?ff=${flag}` : ''}#/signin`, { waitUntil: 'load' });
    await ready('signin');
    await Promise.all([page.waitForSelector('#profile-name', WAIT), page.click(`[data-identity="${identity}"]`)]);
    await ready('profile');
    await page.waitForNetworkIdle({ idleTime: 200, timeout: 10000 });
    summary.profileName = await page.$eval('#profile-name', (e) => e.textContent);
    const profileEvents = events.length;
    if (explore && shots) await page.screenshot({ path: path.join(shots, 'app-profile.png') });

    if (explore) {
      // A reload revalidates the page with its ETag (304), as a returning customer's does.
      await page.reload({ waitUntil: 'load' });
      await ready('profile');
      // Invest from the startups list: the dialog posts, then shows the pushed status.
      const sockets = [];
      cdp.on('Network.webSocketCreated', (p) => sockets.push(p.url));
      await page.goto(`${base}/app/#/startups`, { waitUntil: 'load' });
      await ready('startups');
      await page.click('button[data-invest]:not([disabled])');
      await page.waitForSelector('#invest-dialog[open]', WAIT);
      await page.click('#invest-submit');
      await page.waitForSelector('#invest-status[data-status="completed"], #invest-status[data-status="failed"]', WAIT);
      summary.investStatus = await page.$eval('#invest-status', (e) => e.textContent);
      summary.websockets = sockets;
      await page.click('#invest-cancel');
      await page.goto(`${base}/app/#/startups`, { waitUntil: 'load' });
      await ready('startups');
      await page.type('#filter-industry', 'quantum');
      await page.select('#filter-stage', 'seed');
      await page.click('#apply-filters');
      await page.waitForSelector('#empty', WAIT);
      summary.emptyText = await page.$eval('#empty', (e) => e.textContent);
      if (shots) await page.screenshot({ path: path.join(shots, 'app-startups-empty.png') });
    }

    await page.goto(`${base}/app/#/onboarding`, { waitUntil: 'load' });
    await ready('onboarding');
    const step = async (button, next) => {
      await page.click(button);
      await page.waitForSelector(next, WAIT);
    };
    await step('#onboarding-start', '#step-1');
    await step('#step-1-next', '#step-2');
    await step('#step-2-next', '#step-3');
    await step('#step-3-next', '#onboarding-complete');
    const [resp] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/onboarding/complete'), WAIT),
      page.click('#onboarding-complete'),
    ]);
    summary.completeStatus = resp.status();
    // Done, or the button spun back (enabled again, not busy): whichever the page shows.
    await page.waitForFunction(() => document.getElementById('onboarding-done')
      || (document.getElementById('onboarding-complete')
        && !document.getElementById('onboarding-complete').disabled), WAIT);
    await page.waitForNetworkIdle({ idleTime: 200, timeout: 10000 });
    summary.completed = (await page.$('#onboarding-done')) !== null;
    summary.doneText = summary.completed ? await page.$eval('#onboarding-done h2', (e) => e.textContent) : null;
    summary.wizardStep = await page.$eval('#wizard', (e) => e.dataset.step);
    summary.completeButton = await page.$('#onboarding-complete') !== null;
    summary.visibleError = await page.$('.error') !== null;
    summary.navigatorLanguage = await page.evaluate(() => navigator.language);
    if (shots && !summary.completed) await page.screenshot({ path: path.join(shots, 'app-onboarding-failing.png') });

    summary.har = path.join(out, `${label}-onboarding.har`);
    summary.harEntries = writeHar(summary.har, events, version);
    summary.profileHar = path.join(out, `${label}-profile.har`);
    writeHar(summary.profileHar, events.slice(0, profileEvents), version);
  } finally {
    await browser.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  return summary;
}

const started = Date.now();
const de = await session({ label: 'de', identity: 'other', acceptLanguage: 'de-DE,de', flag: 'new_kyc_form', explore: false });
const en = await session({ label: 'en', identity: 'typical', acceptLanguage: 'en-US,en', flag: null, explore: true });
console.log(JSON.stringify({ de, en, seconds: (Date.now() - started) / 1000 }, null, 2));
