// Meter and site commissioning: the meter's reading per phase with its signs, its health,
// each charger's wiring and range, and whether the fallback values fit the fuse.
import { useEffect, useState } from "./vendor/hooks.mjs";
import { amps, api, html, Icon, when } from "./lib.mjs";

const PHASES = ["L1", "L2", "L3"];
const fixed = (v, digits, unit) => (v === null || v === undefined ? "–" : `${Number(v).toFixed(digits)} ${unit}`);

// A negative current or power on a phase: export there, or a CT fitted the wrong way round.
function signNote(current, power) {
  if (current < 0 || power < 0) return "negative: export on this phase, or its CT is reversed";
  return "import";
}

function Reading({ meter }) {
  const r = meter.reading;
  if (!r) return html`<p class="muted" data-testid="meter-reading">No reading yet.</p>`;
  return html`<div class="scroll"><table data-testid="meter-reading"><thead><tr><th>phase</th><th>current</th>
      <th>voltage</th><th>power</th><th>sign</th></tr></thead><tbody>
    ${PHASES.map((phase, p) => {
      const note = signNote(r.currentA[p], r.powerW[p]);
      return html`<tr data-testid=${`meter-${phase}`}><td>${phase}</td><td class="num">${fixed(r.currentA[p], 2, "A")}</td>
        <td class="num">${fixed(r.voltageV[p], 1, "V")}</td><td class="num">${fixed(r.powerW[p], 0, "W")}</td>
        <td class=${note === "import" ? "muted" : "warn"}>${note}</td></tr>`;
    })}
    <tr><td>total</td><td></td><td></td><td class="num">${fixed(r.totalPowerW, 0, "W")}</td><td></td></tr>
  </tbody></table></div>
  <p class="muted">Import is positive. Switch on a known load and check that it shows on the right
    phase, positive. Energy: ${fixed(r.importEnergyWh / 1000, 1, "kWh")} imported, ${fixed(r.exportEnergyWh / 1000, 1, "kWh")} exported.
    Taken ${when(r.takenAt)}.</p>`;
}

function Health({ meter }) {
  const age = meter.ageSeconds;
  return html`<dl class="kv" data-testid="meter-health">
    <dt>Meter</dt><dd>${meter.driver} over ${meter.transport}, polled every ${meter.pollInterval} s</dd>
    <dt>Age</dt><dd data-testid="meter-age-vs-stale">${age === null ? "no reading" : `${age.toFixed(1)} s`} of ${meter.staleAfter} s allowed: ${meter.stale ? html`<strong class="warn">STALE</strong>` : "fresh"}</dd>
    <dt>Reads</dt><dd data-testid="meter-reads">${meter.readsOk} ok, ${meter.readsFailed} failed</dd>
    <dt>Last error</dt><dd data-testid="meter-error">${meter.lastError || "none"}</dd>
  </dl>`;
}

function Wiring({ site, check }) {
  const configured = {};
  for (const c of (check && check.chargers) || []) configured[c.chargerId] = c;
  const rows = site.chargers.map((c) => ({ ...configured[c.chargerId], ...c }));
  for (const c of Object.values(configured)) if (!rows.find((r) => r.chargerId === c.chargerId)) rows.push(c);
  rows.sort((a, b) => a.chargerId.localeCompare(b.chargerId));
  const zeroed = new Set(site.limits.fallbackZeroed || []);
  return html`<div class="scroll"><table data-testid="wiring"><thead><tr><th>charger</th><th>wiring</th>
      <th>EV phases</th><th>range</th><th>safe value</th><th>quirks</th></tr></thead><tbody>
    ${rows.map((c) => html`<tr data-testid=${`wiring-${c.chargerId}`}>
      <td><a href=${`#/chargers/${encodeURIComponent(c.chargerId)}`}>${c.chargerId}</a>
        ${c.connected === undefined ? html` <span class="muted">not seen yet</span>` : c.connected ? "" : html` <span class="muted">offline</span>`}</td>
      <td>${c.phases}</td><td>${c.probing ? "learning" : c.evPhases ?? "–"}</td>
      <td class="num">${c.minA}–${c.maxA} A</td>
      <td>${amps(c.safeA ?? c.safeInstalledA)}${zeroed.has(c.chargerId) ? " (0 A in fallback, by turns)" : ""}</td>
      <td>${(c.quirks || []).join("; ") || html`<span class="muted">none</span>`}</td></tr>`)}
  </tbody></table></div>`;
}

function Fallback({ site, check }) {
  const limits = site.limits;
  const fits = check ? check.fallbackFits : limits.fallbackFits;
  return html`<div class="card" data-testid="fallback-fit"><h2>Fallback (meter lost)</h2>
    <p data-testid="fallback-fits">${fits
      ? html`The fallback values fit the fuse: every charger gets ${limits.fallbackCurrentA} A.`
      : html`<strong class="warn"><${Icon} name="alert" /> The fallback values do not fit the fuse</strong>:
          ${(limits.fallbackZeroed || []).join(", ") || "some chargers"} get 0 A in fallback, by turns.`}</p>
    ${check && html`<ul class="muted">${check.report.map((line) => html`<li>${line}</li>`)}</ul>`}
    <p class="muted">Fuse ${limits.maxCurrentA.join(" / ")} A, margin ${limits.marginA} A.</p>
  </div>`;
}

export function Meter({ live }) {
  const site = live.site;
  const [check, setCheck] = useState(null);
  useEffect(() => { api("/api/site/check").then(({ status, data }) => status === 200 && setCheck(data)); }, []);
  if (!site) return html`<p class="muted">Loading…</p>`;
  if (!site.enabled) {
    return html`<div data-testid="meter"><div class="card"><h2>Meter</h2><p>${site.detail}</p></div>
      ${check && html`<div class="card"><h2>Configured chargers</h2><ul>${check.chargers.map((c) => html`
        <li>${c.chargerId}: ${c.phases}, ${c.minA}–${c.maxA} A</li>`)}</ul></div>`}</div>`;
  }
  return html`<div data-testid="meter">
    <div class="grid two">
      <div class="card"><h2>Reading per phase</h2><${Reading} meter=${site.meter} /></div>
      <div class="card"><h2>Meter health</h2><${Health} meter=${site.meter} /></div>
    </div>
    <div class="card"><h2>Chargers: wiring and range</h2><${Wiring} site=${site} check=${check} />
      <p class="muted">Wiring: which grid phase each of the charger's phases is on (L2L3L1: its first phase on L2).</p></div>
    <${Fallback} site=${site} check=${check} />
  </div>`;
}
