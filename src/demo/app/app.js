// Sonde Invest: the demo's single-page app. Hash routes: #/signin, #/profile, #/startups,
// #/onboarding. Plain DOM, no framework, no build step: served as-is from the sonde binary.
import { api, cookie, setCookie, flags, newKey, followInvestment } from './api.js';

const view = document.getElementById('view');
const INDUSTRIES = ['fintech', 'healthtech', 'climate', 'edtech', 'logistics', 'ai'];
const STAGES = ['pre-seed', 'seed', 'series-a', 'series-b', 'series-c'];
const PER_PAGE = 10;

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (v === true) node.setAttribute(k, '');
    else if (v !== false && v !== null && v !== undefined) node.setAttribute(k, v);
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
};
const money = (cents) => new Intl.NumberFormat(navigator.language, { style: 'currency', currency: 'EUR' }).format(cents / 100);
const show = (...nodes) => view.replaceChildren(...nodes);

function me() {
  try { return JSON.parse(localStorage.getItem('sonde.user')); } catch { return null; }
}

function signedIn() {
  const user = me();
  return user && cookie('session') ? user : null;
}

// ---- sign-in -------------------------------------------------------------------------------
async function signinPage() {
  const ids = await api('GET', '/demo/identities');
  const flag = el('input', { type: 'checkbox', id: 'flag-new-kyc', checked: flags().includes('new_kyc_form') });
  flag.addEventListener('change', () => {
    const rest = flags().filter((f) => f !== 'new_kyc_form');
    if (flag.checked) rest.push('new_kyc_form');
    setCookie('ff', rest.length ? rest.join('|') : null);
  });
  show(
    el('h1', {}, 'Sign in'),
    el('p', { class: 'muted' }, 'Choose a demo identity. The API is the demo’s: these accounts are seeded.'),
    el('div', { class: 'identities' }, ids.map((id) => el('div', { class: 'card' },
      el('h3', {}, id.name),
      el('p', { class: 'muted' }, `user #${id.user_id}`),
      el('button', {
        class: 'primary', 'data-identity': id.name,
        onclick: () => {
          setCookie('session', id.token);
          localStorage.setItem('sonde.user', JSON.stringify({ name: id.name, user_id: id.user_id }));
          location.hash = '#/profile';
        },
      }, `Sign in as ${id.name}`)))),
    el('div', { class: 'card' },
      el('label', { style: 'flex-direction: row; gap: .5rem; align-items: center' }, flag,
        'Beta: new KYC form (feature flag new_kyc_form)')),
  );
}

// ---- profile (the flow of scenarios/profile-load.yaml) -------------------------------------
async function profilePage(user) {
  const profile = await api('GET', `/users/${user.user_id}/profile`);
  const first = profile.recent_investments[0]?.startup_id;
  const [total, startup] = await Promise.all([
    api('GET', `/users/${user.user_id}/investments/total`),
    first === undefined ? null : api('GET', `/startups/${first}`),
  ]);
  const t = profile.totals;
  show(
    el('h1', { id: 'profile-name' }, profile.user.name),
    el('p', { class: 'muted' }, profile.user.email, ' · member since ', profile.user.created_at.slice(0, 10)),
    el('div', { class: 'cards' },
      el('div', { class: 'card' }, el('div', { class: 'muted' }, 'Invested'), el('div', { class: 'figure', id: 'total' }, money(total.total_cents))),
      el('div', { class: 'card' }, el('div', { class: 'muted' }, 'Completed investments'), el('div', { class: 'figure' }, total.completed_count)),
      el('div', { class: 'card' }, el('div', { class: 'muted' }, 'In flight'), el('div', { class: 'figure' }, money(t.in_flight_cents))),
      el('div', { class: 'card' }, el('div', { class: 'muted' }, 'Latest startup'), el('div', { class: 'figure' }, startup ? startup.name : '—'))),
    el('h2', {}, 'Recent investments'),
    profile.recent_investments.length === 0
      ? el('p', { class: 'empty' }, 'No investments yet. ', el('a', { href: '#/startups' }, 'Browse startups'))
      : el('table', { id: 'recent' },
        el('thead', {}, el('tr', {}, el('th', {}, 'Startup'), el('th', {}, 'Industry'), el('th', {}, 'Amount'), el('th', {}, 'Status'), el('th', {}, 'Date'))),
        el('tbody', {}, profile.recent_investments.map((inv) => el('tr', {},
          el('td', {}, inv.startup.name), el('td', {}, inv.startup.industry), el('td', {}, money(inv.amount_cents)),
          el('td', {}, el('span', { class: 'badge' }, inv.status)), el('td', {}, inv.created_at.slice(0, 10)))))),
  );
}

// ---- startups browser ----------------------------------------------------------------------
async function startupsPage(_user, params) {
  const industry = params.get('industry') || '';
  const stage = params.get('stage') || '';
  const page = Math.max(1, Number(params.get('page')) || 1);
  const q = new URLSearchParams();
  if (industry) q.set('industry', industry);
  if (stage) q.set('stage', stage);
  q.set('page', page);
  q.set('per_page', PER_PAGE);
  const list = await api('GET', `/startups?${q}`);
  const go = (changes) => {
    const next = new URLSearchParams({ industry, stage, page: 1, ...changes });
    for (const [k, v] of [...next]) if (!v) next.delete(k);
    location.hash = `#/startups?${next}`;
  };
  const industryInput = el('input', { id: 'filter-industry', list: 'industries', value: industry, placeholder: 'any' });
  const stageSelect = el('select', { id: 'filter-stage' },
    el('option', { value: '' }, 'any'), STAGES.map((s) => el('option', { value: s, selected: s === stage }, s)));
  const pages = Math.max(1, Math.ceil(list.total / PER_PAGE));
  show(
    el('h1', {}, 'Startups'),
    el('form', { class: 'filters', id: 'filters', onsubmit: (e) => { e.preventDefault(); go({ industry: industryInput.value.trim(), stage: stageSelect.value }); } },
      el('label', {}, 'Industry', industryInput, el('datalist', { id: 'industries' }, INDUSTRIES.map((i) => el('option', { value: i })))),
      el('label', {}, 'Stage', stageSelect),
      el('button', { type: 'submit', id: 'apply-filters' }, 'Apply'),
      el('button', { type: 'button', onclick: () => go({ industry: '', stage: '' }) }, 'Clear')),
    list.items.length === 0
      ? el('p', { class: 'empty', id: 'empty' }, 'No startups match these filters')
      : el('table', { id: 'startups' },
        el('thead', {}, el('tr', {}, el('th', {}, 'Name'), el('th', {}, 'Industry'), el('th', {}, 'Stage'), el('th', {}, 'Raised'), el('th', {}, 'Goal'), el('th', {}))),
        el('tbody', {}, list.items.map((s) => el('tr', {},
          el('td', {}, s.name), el('td', {}, s.industry), el('td', {}, s.stage),
          el('td', {}, money(s.amount_raised_cents)), el('td', {}, money(s.funding_goal_cents)),
          el('td', {}, el('button', { 'data-invest': s.id, disabled: s.amount_raised_cents >= s.funding_goal_cents, onclick: () => investDialog(s) }, 'Invest')))))),
    el('div', { class: 'pager' },
      el('button', { id: 'prev', disabled: page <= 1, onclick: () => go({ page: page - 1 }) }, '← Previous'),
      el('span', { class: 'muted', id: 'page' }, `Page ${page} of ${pages} · ${list.total} startups`),
      el('button', { id: 'next', disabled: page >= pages, onclick: () => go({ page: page + 1 }) }, 'Next →')),
  );
}

// ---- invest dialog: POST with an Idempotency-Key, then the live status ---------------------
function investDialog(startup) {
  const dialog = document.getElementById('invest-dialog');
  const form = document.getElementById('invest-form');
  const status = document.getElementById('invest-status');
  const submit = document.getElementById('invest-submit');
  document.getElementById('invest-name').textContent = startup.name;
  status.textContent = '';
  status.dataset.status = '';
  submit.disabled = false;
  // One key per dialog: a double click or a retry of the same intent is the same investment.
  const key = newKey();
  form.onsubmit = async (e) => {
    e.preventDefault();
    const cents = Math.round(Number(document.getElementById('invest-amount').value) * 100);
    submit.disabled = true;
    submit.classList.add('busy');
    try {
      const inv = await api('POST', '/investments', {
        body: { startup_id: startup.id, amount_cents: cents },
        headers: { 'Idempotency-Key': key },
      });
      const shown = (i) => { status.textContent = `Investment #${i.id}: ${i.status}`; status.dataset.status = i.status; };
      shown(inv);
      await followInvestment(inv.id, shown);
    } catch (err) {
      status.textContent = err.problem?.detail || err.message;
      status.dataset.status = 'failed';
      submit.disabled = false;
    } finally {
      submit.classList.remove('busy');
    }
  };
  document.getElementById('invest-cancel').onclick = () => dialog.close();
  dialog.showModal();
}

// ---- onboarding wizard ---------------------------------------------------------------------
const STEP_NAMES = ['Profile', 'Identity (KYC)', 'Terms'];

async function onboardingPage() {
  let flow = null;
  const render = () => {
    const next = flow?.next_step ?? null;
    const done = flow?.completed_at;
    const stepList = el('ol', { class: 'steps' }, STEP_NAMES.map((name, i) => el('li', {
      class: flow && (next === null || i + 1 < next) ? 'done' : next === i + 1 ? 'current' : '',
    }, `${i + 1}. ${name}`)));
    let body;
    if (!flow) {
      body = el('div', {}, el('p', {}, 'Open your investor account in three short steps.'),
        el('button', { class: 'primary', id: 'onboarding-start', onclick: (e) => post(e.target, '/onboarding/start', {}) }, 'Start'));
    } else if (done) {
      body = el('div', { id: 'onboarding-done' }, el('h2', {}, flow.message || 'Complete'), el('p', { class: 'muted' }, `Completed at ${done}`));
    } else if (next === 1) {
      body = stepForm(1, [
        el('label', {}, 'Display name', el('input', { name: 'display_name', value: 'Demo Investor' })),
        el('label', {}, 'Birth year', el('input', { name: 'birth_year', type: 'number', value: '1990' })),
      ], (f) => ({ display_name: f.display_name.value, birth_year: Number(f.birth_year.value) }));
    } else if (next === 2) {
      const newForm = flags().includes('new_kyc_form');
      body = stepForm(2, [
        el('label', {}, 'Document type', el('select', { name: 'document_type' }, ['passport', 'id_card', 'driving_licence'].map((d) => el('option', { value: d }, d)))),
        el('label', {}, 'Document number', el('input', { name: 'document_number', value: 'X1234567' })),
        newForm ? el('label', {}, 'Address (new form)', el('input', { name: 'address', value: 'Hauptstraße 1' })) : '',
      ], (f) => ({ document_type: f.document_type.value, document_number: f.document_number.value, ...(newForm ? { address: f.address.value } : {}) }));
    } else if (next === 3) {
      body = stepForm(3, [
        el('label', { style: 'flex-direction: row; gap: .5rem' }, el('input', { type: 'checkbox', name: 'accept_terms', checked: true }), 'I accept the terms'),
      ], (f) => ({ accept_terms: f.accept_terms.checked }));
    } else {
      body = el('div', {}, el('p', {}, 'All steps done. Finish to open your account.'),
        el('button', { class: 'primary', id: 'onboarding-complete', onclick: (e) => post(e.target, '/onboarding/complete', {}) }, 'Complete'));
    }
    show(el('h1', {}, 'Onboarding'), el('div', { class: 'wizard', id: 'wizard', 'data-step': flow ? (done ? 'done' : next ?? 'complete') : 'start' }, stepList, body));
  };
  const stepForm = (n, fields, read) => el('form', { id: `step-${n}`, onsubmit: (e) => {
    e.preventDefault();
    post(e.target.querySelector('button'), `/onboarding/steps/${n}`, read(e.target));
  } }, el('h2', {}, `Step ${n}: ${STEP_NAMES[n - 1]}`), fields, el('button', { type: 'submit', class: 'primary', id: `step-${n}-next` }, 'Continue'));
  const post = async (button, path, body) => {
    button.disabled = true;
    button.classList.add('busy');
    try {
      flow = await api('POST', path, { body });
      render();
    } catch (err) {
      // As shipped: the error goes to the console only, the button spins back, nothing else.
      console.error(err.message);
      button.disabled = false;
      button.classList.remove('busy');
    }
  };
  render();
}

// ---- routing -------------------------------------------------------------------------------
const ROUTES = { profile: profilePage, startups: startupsPage, onboarding: onboardingPage };

async function route() {
  const [path, query = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const user = signedIn();
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.nav === path);
  document.getElementById('who').textContent = user ? `Signed in as ${user.name}` : '';
  const page = ROUTES[path];
  try {
    if (!user || !page) {
      if (path !== 'signin' && user) { location.hash = '#/profile'; return; }
      if (path !== 'signin' && !user) { location.hash = '#/signin'; return; }
      await signinPage();
    } else {
      await page(user, new URLSearchParams(query));
    }
    document.body.dataset.ready = path || 'signin';
  } catch (err) {
    console.error(err);
    if (err.status === 401) { localStorage.removeItem('sonde.user'); setCookie('session', null); location.hash = '#/signin'; return; }
    show(el('p', { class: 'error' }, err.message));
    document.body.dataset.ready = 'error';
  }
}

// `?ff=new_kyc_form` in the URL switches a flag on for this browser (as a shared beta link would).
const wanted = new URLSearchParams(location.search).get('ff');
if (wanted) setCookie('ff', wanted);
window.addEventListener('hashchange', route);
route();
