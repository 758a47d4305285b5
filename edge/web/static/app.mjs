// The technician's page: login, the live link (/api/live) and the views.
import { render } from "./vendor/preact.mjs";
import { useEffect, useRef, useState } from "./vendor/hooks.mjs";
import { api, auth, html, Icon } from "./lib.mjs";
import { Overview, Plot } from "./site.mjs";
import { ChargerDetail, Chargers } from "./chargers.mjs";
import { About, Events, Log, Transactions } from "./lists.mjs";
import { Meter } from "./meter.mjs";
import { IdTags, Reservations } from "./tags.mjs";
import { Files } from "./files.mjs";
import { Security } from "./security.mjs";

const STALE_MS = 35000; // two missed heartbeats (15 s) and some: the data may be stale

// The live link: a snapshot, then whole chargers and the site as they change; `security`
// counts the hints that a security event was recorded (and snapshots: some may be missed).
function useLive(enabled) {
  const [state, setState] = useState({ link: "connecting", site: null, chargers: {}, security: 0 });
  const ref = useRef({ ws: null, retry: 1000, timer: null, last: 0 });
  useEffect(() => {
    if (!enabled) return undefined;
    const r = ref.current;
    let stopped = false;
    const connect = () => {
      if (stopped) return;
      if (r.ws && r.ws.readyState <= 1) return;
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const ws = new WebSocket(`${scheme}://${location.host}/api/live`);
      r.ws = ws;
      ws.onmessage = (event) => {
        r.last = Date.now();
        r.retry = 1000;
        const m = JSON.parse(event.data);
        if (m.type === "snapshot") {
          const chargers = {};
          for (const c of m.chargers) chargers[c.id] = c;
          setState((s) => ({ link: "live", site: m.site, chargers, security: s.security + 1 }));
        } else if (m.type === "charger") {
          setState((s) => ({ ...s, link: "live", chargers: { ...s.chargers, [m.charger.id]: m.charger } }));
        } else if (m.type === "chargerRemoved") {
          setState((s) => {
            const chargers = { ...s.chargers };
            delete chargers[m.chargerId];
            return { ...s, link: "live", chargers };
          });
        } else if (m.type === "site") {
          setState((s) => ({ ...s, link: "live", site: m.site }));
        } else if (m.type === "security") {
          setState((s) => ({ ...s, link: "live", security: s.security + 1 }));
        } else {
          setState((s) => (s.link === "live" ? s : { ...s, link: "live" }));
        }
      };
      ws.onclose = () => {
        if (r.ws === ws) r.ws = null;
        setState((s) => ({ ...s, link: "offline" }));
        if (!stopped) {
          clearTimeout(r.timer);
          r.timer = setTimeout(connect, r.retry);
          r.retry = Math.min(r.retry * 2, 15000);
        }
        // A refused upgrade (logged out elsewhere) shows as a close: ask the API.
        api("/api/session").then(({ data }) => { if (data && data.authenticated === false) auth.onUnauthorized(); });
      };
    };
    const watchdog = setInterval(() => {
      if (r.last && Date.now() - r.last > STALE_MS) {
        setState((s) => ({ ...s, link: "offline" }));
        if (r.ws) r.ws.close();
      }
    }, 5000);
    // A phone that slept, or a page restored from the back-forward cache: reconnect now.
    const wake = () => { if (document.visibilityState === "visible") { r.retry = 1000; connect(); } };
    const shown = (event) => { if (event.persisted) wake(); };
    document.addEventListener("visibilitychange", wake);
    window.addEventListener("pageshow", shown);
    connect();
    return () => {
      stopped = true;
      clearInterval(watchdog);
      clearTimeout(r.timer);
      document.removeEventListener("visibilitychange", wake);
      window.removeEventListener("pageshow", shown);
      if (r.ws) r.ws.close();
    };
  }, [enabled]);
  return state;
}

function useRoute() {
  const read = () => (location.hash.replace(/^#\/?/, "") || "overview").split("/").map(decodeURIComponent);
  const [route, setRoute] = useState(read());
  useEffect(() => {
    const changed = () => setRoute(read());
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return route;
}

function Login({ onDone }) {
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    const password = event.target.elements.password.value;
    const { status, data } = await api("/api/session", { method: "POST", body: { password } });
    setBusy(false);
    if (status === 204) onDone();
    else setError(status === 429 ? "Too many tries: wait a moment." : (data && data.detail) || `Error ${status}`);
  };
  return html`<main class="login"><form class="card" onSubmit=${submit} data-testid="login">
    <h2><${Icon} name="bolt" /> edge-csms</h2>
    <label>Password (or the API token)
      <input type="password" name="password" autocomplete="current-password" required autofocus /></label>
    <p class="muted">The page is served over plain HTTP on the site's network.</p>
    <button type="submit" disabled=${busy}>Log in</button>
    ${error && html`<p class="answer bad" data-testid="login-error">${error}</p>`}
  </form></main>`;
}

const VIEWS = [
  ["overview", "Site", "bolt"],
  ["chargers", "Chargers", "plug"],
  ["plot", "Plot", "chart"],
  ["meter", "Meter", "gauge"],
  ["transactions", "Transactions", "list"],
  ["id-tags", "Id tags", "tag"],
  ["reservations", "Reservations", "clock"],
  ["files", "Firmware", "box"],
  ["security", "Security", "lock"],
  ["events", "Events", "bell"],
  ["log", "Log", "doc"],
  ["about", "About", "info"],
];

function Shell({ onLogout }) {
  const live = useLive(true);
  const route = useRoute();
  const [view, arg] = route;
  const online = live.link === "live";
  let body;
  if (view === "chargers" && arg) body = html`<${ChargerDetail} id=${arg} live=${live} online=${online} />`;
  else if (view === "chargers") body = html`<${Chargers} live=${live} />`;
  else if (view === "plot") body = html`<${Plot} live=${live} />`;
  else if (view === "transactions") body = html`<${Transactions} live=${live} />`;
  else if (view === "meter") body = html`<${Meter} live=${live} />`;
  else if (view === "id-tags") body = html`<${IdTags} live=${live} online=${online} />`;
  else if (view === "reservations") body = html`<${Reservations} live=${live} online=${online} />`;
  else if (view === "files") body = html`<${Files} live=${live} online=${online} />`;
  else if (view === "security") body = html`<${Security} live=${live} />`;
  else if (view === "events") body = html`<${Events} live=${live} />`;
  else if (view === "log") body = html`<${Log} />`;
  else if (view === "about") body = html`<${About} onLogout=${onLogout} />`;
  else body = html`<${Overview} live=${live} />`;
  return html`
    <header>
      <h1><${Icon} name="bolt" /> edge-csms</h1>
      <nav>${VIEWS.map(([key, label, icon]) => html`
        <a href=${`#/${key}`} class=${view === key ? "on" : ""} data-testid=${`nav-${key}`}>
          <${Icon} name=${icon} />${label}</a>`)}</nav>
      <span class=${`badge ${online ? "live" : "offline"}`} data-testid="link">
        ${online ? "live" : live.link === "connecting" ? "connecting…" : "offline — data may be stale"}</span>
    </header>
    <main>${body}</main>`;
}

function App() {
  const [authenticated, setAuthenticated] = useState(null);
  useEffect(() => {
    auth.onUnauthorized = () => setAuthenticated(false);
    api("/api/session").then(({ data }) => setAuthenticated(Boolean(data && data.authenticated)));
  }, []);
  const logout = async () => {
    await api("/api/session", { method: "DELETE" });
    setAuthenticated(false);
  };
  if (authenticated === null) return null;
  if (!authenticated) return html`<${Login} onDone=${() => setAuthenticated(true)} />`;
  return html`<${Shell} onLogout=${logout} />`;
}

render(html`<${App} />`, document.getElementById("app"));
