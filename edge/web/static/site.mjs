// The site: per-phase bars against the fuse (overview) and the current over time (plot).
import { useEffect, useRef, useState } from "./vendor/hooks.mjs";
import { amps, api, duration, html, Icon, when, whyWords } from "./lib.mjs";

const PHASES = ["L1", "L2", "L3"];

// What the EVs draw per grid phase, from the chargers' own reports.
function evDraw(site) {
  const sum = [0, 0, 0];
  for (const c of (site && site.chargers) || []) {
    if (c.drawnA) c.drawnA.forEach((v, p) => { sum[p] += v; });
  }
  return sum;
}

function PhaseBar({ phase, grid, ev, fuse, margin, headroom }) {
  const scale = fuse * 1.15; // room to show an overload past the fuse
  const pct = (v) => `${Math.max(0, Math.min(100, (v / scale) * 100))}%`;
  const over = grid !== null && grid > fuse - margin;
  return html`<div class="phase" data-testid=${`phase-${phase}`}>
    <div class="label"><strong>${phase}</strong>
      <span>${amps(grid)} of ${fuse} A${headroom !== null && headroom !== undefined ? ` · headroom ${amps(headroom)}` : ""}</span></div>
    <div class=${`bar${over ? " over" : ""}`} role="img"
         aria-label=${`${phase}: ${amps(grid)} of ${fuse} A, EVs ${amps(ev)}`}>
      <div class="fill" style=${{ width: pct(grid || 0) }}></div>
      <div class="ev" style=${{ width: pct(Math.min(ev, grid || ev)) }}></div>
      <div class="margin" style=${{ left: pct(fuse - margin), width: `calc(${pct(fuse)} - ${pct(fuse - margin)})` }}></div>
      <div class="fuse" style=${{ left: pct(fuse) }}></div>
    </div>
    <div class="muted" style=${{ fontSize: ".8rem" }}>EVs ${amps(ev)} · other loads ${amps(grid === null ? null : grid - ev)}</div>
  </div>`;
}

export function Overview({ live }) {
  const site = live.site;
  const chargers = Object.values(live.chargers);
  if (!site) return html`<p class="muted">Loading…</p>`;
  const online = chargers.filter((c) => c.connected).length;
  const connectors = chargers.flatMap((c) => (c.connectors || []).filter((k) => k.connectorId > 0));
  const charging = connectors.filter((k) => k.status === "Charging").length;
  const faulted = connectors.filter((k) => k.status === "Faulted").length;
  const counts = html`<div class="card" data-testid="counts"><h2>Chargers</h2>
    <p>${online} of ${chargers.length} online · ${charging} charging · ${faulted} faulted</p></div>`;
  if (!site.enabled) {
    return html`<div data-testid="overview">
      <div class="card"><h2>Site</h2><p>${site.detail}</p>
        <p class="muted">Fuse ${site.limits.maxCurrentA.join(" / ")} A, margin ${site.limits.marginA} A.</p></div>
      ${counts}</div>`;
  }
  const m = site.meter, limits = site.limits;
  const grid = m.reading ? m.reading.currentA : [null, null, null];
  const ev = evDraw(site);
  const waiting = site.chargers.filter((c) => c.waiting).length;
  return html`<div data-testid="overview">
    ${site.fallback.active && html`<div class="banner" data-testid="fallback">
      <${Icon} name="alert" /> Fallback since ${when(site.fallback.since)}: ${site.fallback.reason}.
      Every charger is at its safe value.</div>`}
    <div class="grid two">
      <div class="card"><h2>Grid current per phase</h2>
        ${PHASES.map((phase, p) => html`<${PhaseBar} phase=${phase} grid=${grid[p]} ev=${ev[p]}
          fuse=${limits.maxCurrentA[p]} margin=${limits.marginA}
          headroom=${limits.headroomA ? limits.headroomA[p] : null} />`)}
        <p class="muted">Hatched: the ${limits.marginA} A margin kept free below the fuse.</p>
      </div>
      <div class="card"><h2>Meter and control</h2><dl class="kv">
        <dt>State</dt><dd data-testid="site-state">${site.state}</dd>
        <dt>Meter</dt><dd>${m.driver} over ${m.transport}</dd>
        <dt>Reading age</dt><dd data-testid="meter-age">${m.ageSeconds === null ? "no reading" : `${m.ageSeconds.toFixed(1)} s`}${m.stale ? " (stale)" : ""}</dd>
        <dt>Reads</dt><dd>${m.readsOk} ok, ${m.readsFailed} failed</dd>
        ${m.lastError && html`<dt>Last error</dt><dd>${m.lastError}</dd>`}
        <dt>Waiting EVs</dt><dd>${waiting}</dd>
        <dt>Safe value</dt><dd>${limits.fallbackCurrentA} A per charger${limits.fallbackFits === false ? " (some get 0 A)" : ""}</dd>
      </dl></div>
    </div>
    ${counts}
    ${site.chargers.filter((c) => c.transactions.length).map((c) => html`
      <div class="card"><a href=${`#/chargers/${encodeURIComponent(c.chargerId)}`}>${c.chargerId}</a>
        ${" "}${amps(c.allocationA)} allocated · <span class="why">${whyWords(c.limitedBy)}</span></div>`)}
  </div>`;
}

const RANGES = [[900, "15 min"], [3600, "1 h"], [86400, "24 h"]];
const COLOURS = ["#8e44ad", "#e67e22", "#16a085"];

// Shades the stretches the site spent in fallback (a uPlot draw hook).
function fallbackShade(u) {
  const flags = u.data[u.data.length - 1];
  const xs = u.data[0];
  const { ctx } = u;
  ctx.save();
  ctx.fillStyle = "rgba(198, 40, 40, 0.15)";
  for (let i = 0; i < xs.length; i += 1) {
    if (!flags[i]) continue;
    let j = i;
    while (j + 1 < xs.length && flags[j + 1]) j += 1;
    const x0 = u.valToPos(xs[i], "x", true), x1 = u.valToPos(xs[j] + 1, "x", true);
    ctx.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height);
    i = j;
  }
  ctx.restore();
}

export function Plot({ live }) {
  const [seconds, setSeconds] = useState(900);
  const [error, setError] = useState("");
  const box = useRef(null);
  const chart = useRef(null);
  const data = useRef(null);
  const enabled = Boolean(live.site && live.site.enabled);
  useEffect(() => {
    if (!enabled) return undefined;
    let gone = false;
    api(`/api/site/history?seconds=${seconds}`).then(({ status, data: h }) => {
      if (gone) return;
      if (status !== 200) { setError((h && h.detail) || `Error ${status}`); return; }
      setError("");
      const fuse = Math.max(...h.maxCurrentA);
      const line = (v) => h.t.map(() => v);
      data.current = { resolution: h.resolution, fuse, margin: h.marginA, cols: [
        h.t, ...h.gridA, line(fuse), line(fuse - h.marginA), h.fallback] };
      if (chart.current) chart.current.destroy();
      const width = box.current.clientWidth || 360;
      chart.current = new window.uPlot({
        width, height: 300, scales: { x: { time: true }, y: { range: (u, lo, hi) => [0, Math.max(hi, fuse) * 1.1] } },
        series: [{},
          ...["L1", "L2", "L3"].map((label, p) => ({ label, stroke: COLOURS[p], width: 1.5, value: (u, v) => (v === null ? "–" : `${v.toFixed(1)} A`) })),
          { label: "fuse", stroke: "#c62828", dash: [6, 4], width: 1, points: { show: false } },
          { label: "fuse − margin", stroke: "#b86e00", dash: [2, 4], width: 1, points: { show: false } },
          { label: "fallback", show: false }],
        axes: [{}, { label: "A" }],
        hooks: { drawClear: [fallbackShade] },
      }, data.current.cols, box.current);
    });
    return () => { gone = true; };
  }, [seconds, enabled]);
  // Live points: one per site message (a meter reading), kept to the chosen window.
  useEffect(() => {
    const d = data.current, site = live.site;
    if (!d || !chart.current || d.resolution !== 1 || !site || !site.enabled) return;
    const at = Date.now() / 1000;
    const cols = d.cols;
    if (cols[0].length && at - cols[0][cols[0].length - 1] < 0.5) return;
    const reading = site.meter.reading;
    const grid = reading && !site.meter.stale ? reading.currentA : [null, null, null];
    const values = [at, ...grid, d.fuse, d.fuse - d.margin, site.fallback.active ? 1 : 0];
    values.forEach((v, i) => cols[i].push(v));
    while (cols[0].length && cols[0][0] < at - seconds) cols.forEach((c) => c.shift());
    chart.current.setData(cols);
  }, [live.site]);
  useEffect(() => () => { if (chart.current) chart.current.destroy(); }, []);
  if (live.site && !live.site.enabled) {
    return html`<div class="card" data-testid="plot"><h2>Site current per phase</h2>
      <p>${live.site.detail}</p></div>`;
  }
  return html`<div class="card" data-testid="plot"><h2>Site current per phase</h2>
    <div class="row ranges">${RANGES.map(([s, label]) => html`
      <button class=${s === seconds ? "" : "plain"} onClick=${() => setSeconds(s)}>${label}</button>`)}</div>
    ${error && html`<p class="answer bad">${error}</p>`}
    <div class="plot" ref=${box}></div>
    <p class="muted">Shaded: fallback (meter stale). ${seconds > 3600 ? "One-minute means." : "One point a second."}${" "}
      Kept in memory for ${duration(86400)}; a restart starts it afresh.</p>
  </div>`;
}
