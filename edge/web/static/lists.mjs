// Lists fetched on demand: transactions (with CSV), events, the service log; and About (with logout).
import { useEffect, useState } from "./vendor/hooks.mjs";
import { api, bytes, ChargerSelect, Choice, duration, html, Icon, query, useRefresh, when } from "./lib.mjs";

export function Transactions({ live }) {
  const [filters, setFilters] = useState({ chargerId: "", active: "", from: "", to: "" });
  const [rows, setRows] = useState(null);
  const [error, setError] = useState("");
  const tick = useRefresh();
  useEffect(() => {
    api(`/api/transactions?${query({ ...filters, limit: 200 })}`).then(({ status, data }) => {
      if (status === 200) { setRows(data); setError(""); } else setError(`${status} ${data && data.detail}`);
    });
  }, [filters, tick]);
  const submit = (event) => {
    event.preventDefault();
    const f = event.target.elements;
    setFilters({ chargerId: f.chargerId.value, active: f.active.value, from: f.from.value, to: f.to.value });
  };
  return html`<div class="card" data-testid="transactions"><h2>Transactions</h2>
    <form class="row" onSubmit=${submit}>
      <label>charger<${ChargerSelect} live=${live} name="chargerId" value=${filters.chargerId} /></label>
      <label>state<${Choice} name="active" value=${filters.active}
        options=${[["", "all"], ["true", "active"], ["false", "finished"]]} /></label>
      <label>from (UTC)<input type="date" name="from" defaultValue=${filters.from} /></label>
      <label>to (UTC, excl.)<input type="date" name="to" defaultValue=${filters.to} /></label>
      <button type="submit">Filter</button>
      <a href=${`/api/transactions?${query({ ...filters, format: "csv" })}`} download data-testid="csv">CSV</a>
    </form>
    ${error && html`<p class="answer bad">${error}</p>`}
    ${rows && html`<div class="scroll"><table><thead><tr><th>id</th><th>charger</th><th>id tag</th>
      <th>start</th><th>stop</th><th>kWh</th><th>reason</th></tr></thead><tbody>
      ${rows.map((t) => html`<tr data-testid=${`tx-${t.transactionId}`}><td>${t.transactionId}</td>
        <td>${t.chargerId} #${t.connectorId}</td><td>${t.idTag}</td><td>${when(t.startTime)}</td>
        <td>${t.active ? "active" : when(t.stopTime)}</td>
        <td>${t.energyWh === null ? "–" : (t.energyWh / 1000).toFixed(2)}</td><td>${t.stopReason || ""}</td></tr>`)}
    </tbody></table></div>`}
    ${rows && rows.length === 0 && html`<p class="muted">None.</p>`}
  </div>`;
}

export function Events({ live }) {
  const [filters, setFilters] = useState({ chargerId: "", kind: "", limit: "100" });
  const [rows, setRows] = useState(null);
  const [error, setError] = useState("");
  const tick = useRefresh();
  useEffect(() => {
    api(`/api/events?${query(filters)}`).then(({ status, data }) => {
      if (status === 200) { setRows(data); setError(""); } else setError(`${status} ${data && data.detail}`);
    });
  }, [filters, tick]);
  const submit = (event) => {
    event.preventDefault();
    const f = event.target.elements;
    setFilters({ chargerId: f.chargerId.value, kind: f.kind.value.trim(), limit: f.limit.value });
  };
  return html`<div class="card" data-testid="events"><h2>Events</h2>
    <form class="row" onSubmit=${submit}>
      <label>charger<${ChargerSelect} live=${live} name="chargerId" value=${filters.chargerId} /></label>
      <label>kind<input name="kind" placeholder="e.g. BootNotification" defaultValue=${filters.kind} /></label>
      <label>how many<${Choice} name="limit" value=${filters.limit} options=${["50", "100", "500", "1000"].map((n) => [n, n])} /></label>
      <button type="submit">Filter</button>
    </form>
    ${error && html`<p class="answer bad">${error}</p>`}
    ${rows && html`<div class="scroll"><table><thead><tr><th>time</th><th>charger</th><th>kind</th><th>data</th></tr></thead><tbody>
      ${rows.map((e) => html`<tr><td>${when(e.at)}</td><td>${e.charger_id || "site"}</td><td>${e.kind}</td>
        <td class="muted">${JSON.stringify(e.data).slice(0, 200)}</td></tr>`)}
    </tbody></table></div>`}
  </div>`;
}

const LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

export function Log() {
  const [filters, setFilters] = useState({ level: "INFO", limit: "200" });
  const [rows, setRows] = useState(null);
  const [error, setError] = useState("");
  const [n, setN] = useState(0);
  const tick = useRefresh();
  useEffect(() => {
    api(`/api/log?${query(filters)}`).then(({ status, data }) => {
      if (status === 200) { setRows(data); setError(""); } else setError(`${status} ${data && data.detail}`);
    });
  }, [filters, n, tick]);
  const submit = (event) => {
    event.preventDefault();
    const f = event.target.elements;
    setFilters({ level: f.level.value, limit: f.limit.value });
    setN((x) => x + 1);
  };
  return html`<div class="card" data-testid="log"><h2>Service log</h2>
    <form class="row" onSubmit=${submit}>
      <label>at least<${Choice} name="level" value=${filters.level} options=${LEVELS.slice(1).map((l) => [l, l])} /></label>
      <label>how many<${Choice} name="limit" value=${filters.limit} options=${["100", "200", "500", "2000"].map((x) => [x, x])} /></label>
      <button type="submit">Show</button>
      <a href=${`/api/log?${query({ level: filters.level, limit: 2000, format: "text" })}`} download="edge-csms.log" data-testid="log-download">Download</a>
    </form>
    ${error && html`<p class="answer bad">${error}</p>`}
    ${rows && html`<div class="scroll"><table><thead><tr><th>time</th><th>level</th><th>message</th></tr></thead><tbody>
      ${rows.map((r) => html`<tr data-testid="log-record" class=${`log ${r.level}`}><td>${when(r.at)}</td><td>${r.level}</td>
        <td><span class="muted">${r.logger}</span> <span class="message">${r.message}</span></td></tr>`)}
    </tbody></table></div>`}
    ${rows && rows.length === 0 && html`<p class="muted">Nothing logged at this level since the service started.</p>`}
    <p class="muted">The last 2,000 records at INFO or above, newest first, kept in memory: a restart starts it afresh.</p>
  </div>`;
}

export function About({ onLogout }) {
  const [about, setAbout] = useState(null);
  useEffect(() => { api("/api/about").then(({ status, data }) => status === 200 && setAbout(data)); }, []);
  return html`<div class="card" data-testid="about"><h2>About</h2>
    ${about && html`<dl class="kv">
      <dt>Version</dt><dd data-testid="version">edge-csms ${about.version}</dd>
      <dt>Started</dt><dd>${when(about.startedAt)} (up ${duration(about.uptimeSeconds)})</dd>
      <dt>Clock</dt><dd>${about.now} · ${about.clockSynchronised === true ? "synchronised" : about.clockSynchronised === false ? "NOT synchronised (no NTP yet?)" : "unknown"}</dd>
      <dt>Data</dt><dd>${about.dataDir}: ${bytes(about.disk.dataDirBytes)}, ${bytes(about.disk.freeBytes)} free of ${bytes(about.disk.totalBytes)}</dd>
      <dt>Site control</dt><dd>${about.siteControl ? "on (meter configured)" : "off (no meter)"}</dd>
      <dt>Cloud link</dt><dd>${about.cloudLink ? "configured" : "none"}</dd>
    </dl>`}
    <p class="muted">Front end: Preact, htm and uPlot, served from this controller (no internet needed).</p>
    <button class="plain" onClick=${onLogout} data-testid="logout"><${Icon} name="out" /> Log out</button>
  </div>`;
}
