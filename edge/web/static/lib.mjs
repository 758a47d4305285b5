// Shared pieces of the page: rendering, API calls, icons, words for the site's codes.
import { h } from "./vendor/preact.mjs";
import { useEffect, useState } from "./vendor/hooks.mjs";
import htm from "./vendor/htm.mjs";

export const html = htm.bind(h);

// Set by the shell: called when the API says 401, so the page shows the login form.
export const auth = { onUnauthorized: () => {} };

// One call to the JSON API, same origin, the session cookie sent by the browser.
// Resolves to {status, data}; never throws on an HTTP error (the caller shows it).
export async function api(path, { method = "GET", body } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    return { status: 0, data: { error: "network", detail: String(err) } };
  }
  if (response.status === 401 && path !== "/api/session") auth.onUnauthorized();
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  return { status: response.status, data };
}

// A query string of the filters that are set.
export function query(filters) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) if (v !== "" && v !== undefined && v !== null) q.set(k, v);
  return q.toString();
}

// A choice of the chargers the live link knows (`all`: an empty choice first, for filters).
// A filter's select: the initial choice is marked `selected`, never forced through the
// select's `value`, which every live re-render would write back over the user's choice.
export function Choice({ name, value, options }) {
  return html`<select name=${name}>${options.map(([v, label]) =>
    html`<option value=${v} selected=${v === value}>${label}</option>`)}</select>`;
}

export function ChargerSelect({ live, name, value, all = true }) {
  const ids = Object.keys(live.chargers).sort();
  const options = [...(all ? [["", "all chargers"]] : []), ...ids.map((id) => [id, id])];
  return html`<${Choice} name=${name} value=${value} options=${options} />`;
}

// Whether an API answer is a success the charger agreed to.
export const agreed = (answer) => answer && answer.status >= 200 && answer.status < 300 &&
  !(answer.data && answer.data.response && ["Rejected", "Failed", "NotSupported", "Occupied", "Faulted", "Unavailable"].includes(answer.data.response.status));

// An API answer under the form that caused it, green or red.
export const Answer = ({ answer }) => answer && html`<div class=${`answer ${agreed(answer) ? "good" : "bad"}`}
  style=${{ flexBasis: "100%" }} data-testid="answer">${answer.status} ${JSON.stringify(answer.data, null, 1)}</div>`;

// One operation's form row and the charger's answer under it.
export function Action({ title, fields = [], run, confirm, danger, online, done }) {
  const [answer, setAnswer] = useState(null);
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const go = async (form) => {
    const values = {};
    for (const f of fields) values[f.name] = form.elements[f.name].value;
    setBusy(true);
    setAsking(false);
    const result = await run(values);
    setBusy(false);
    setAnswer(result);
    if (done) done(result);
  };
  const submit = (event) => {
    event.preventDefault();
    if (confirm && !asking) { setAsking(true); return; }
    go(event.target);
  };
  return html`<form class="row" onSubmit=${submit} data-testid=${`action-${title}`}>
    ${fields.map((f) => html`<label>${f.label}${f.options
      ? html`<select name=${f.name}>${f.options.map((o) => html`<option value=${o}>${o}</option>`)}</select>`
      : html`<input name=${f.name} type=${f.type || "text"} defaultValue=${f.value ?? ""} placeholder=${f.placeholder || ""}
          required=${Boolean(f.required)} inputmode=${f.numeric ? "decimal" : undefined} />`}</label>`)}
    <button type="submit" class=${danger ? "danger" : ""} disabled=${busy || !online}>${asking ? `Really ${title.toLowerCase()}?` : title}</button>
    ${asking && html`<button type="button" class="plain" onClick=${() => setAsking(false)}>Cancel</button>`}
    <${Answer} answer=${answer} />
  </form>`;
}

// Why a charger gets what it gets: the controller's `limitedBy` codes in words.
const WHY = {
  offline: "offline",
  idle: "no session",
  not_controllable: "cannot be limited (refuses profiles)",
  fallback: "meter stale: at its safe value",
  "waiting:turn": "waiting for its turn",
  "cap:operator": "operator cap",
  "cap:cloud": "cloud cap",
  max_current: "at its own maximum",
  draws_less: "EV draws less than offered",
  probing: "learning its EV's phases",
};

export function whyWords(codes) {
  if (!codes) return "";
  if (codes.length === 0) return "gets what it asks for";
  return codes.map((c) => WHY[c] || (c.startsWith("fuse:") ? `phase ${c.slice(5)} full` : c)).join(", ");
}

export const amps = (v) => (v === null || v === undefined ? "–" : `${Number(v).toFixed(1)} A`);

export function when(text) {
  if (!text) return "–";
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? text : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600), mm = Math.floor((s % 3600) / 60);
  return d ? `${d} d ${hh} h` : hh ? `${hh} h ${mm} min` : mm ? `${mm} min ${s % 60} s` : `${s} s`;
}

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// Inline SVG icons (no icon font, no request, no colour emoji needed).
const PATHS = {
  bolt: "M13 2 3 14h8l-1 8 10-12h-8z",
  plug: "M9 2v6M15 2v6M6 8h12v4a6 6 0 0 1-12 0zM12 18v4",
  chart: "M3 3v18h18M7 15l4-5 3 3 5-7",
  list: "M8 6h13M8 12h13M8 18h13M3 6h.01M3 12h.01M3 18h.01",
  bell: "M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9M10 21h4",
  info: "M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20zM12 16v-4M12 8h.01",
  out: "M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4M16 17l5-5-5-5M21 12H9",
  alert: "M12 9v4M12 17h.01M10.3 3.9 1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z",
  gauge: "M12 14l4-4M3.3 19a10 10 0 1 1 17.4 0z",
  tag: "M20.6 13.4 13.4 20.6a2 2 0 0 1-2.8 0L3 13V3h10l7.6 7.6a2 2 0 0 1 0 2.8zM7.5 7.5h.01",
  clock: "M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20zM12 6v6l4 2",
  box: "M21 8 12 3 3 8v8l9 5 9-5zM3 8l9 5 9-5M12 13v8",
  doc: "M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8zM14 2v6h6M8 13h8M8 17h8",
  lock: "M5 11h14v10H5zM8 11V7a4 4 0 0 1 8 0v4",
};

export const Icon = ({ name }) =>
  html`<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d=${PATHS[name]} /></svg>`;

// Lists fetched over the API (transactions, events, tags, files) follow changes too: a count
// that goes up every REFRESH_MS while the view is open and the tab visible, for their
// fetch to depend on. Nothing runs once the view is closed or the tab hidden.
export const REFRESH_MS = 2000;
export function useRefresh(ms = REFRESH_MS) {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => { if (document.visibilityState === "visible") setTick((t) => t + 1); }, ms);
    return () => clearInterval(timer);
  }, [ms]);
  return tick;
}
