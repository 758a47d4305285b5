// Charger detail, smart charging and history: the profiles the charger holds, the
// composite schedule the CSMS predicts for a connector (plotted), the status history.
import { useEffect, useRef, useState } from "./vendor/hooks.mjs";
import { api, html, when } from "./lib.mjs";

const DAY = 86400;

function limits(schedule) {
  const periods = (schedule && schedule.chargingSchedulePeriod) || [];
  return periods.map((p) => `${p.limit} ${schedule.chargingRateUnit}${p.startPeriod ? ` from +${Math.round(p.startPeriod / 60)} min` : ""}`).join(", ");
}

function Profiles({ profiles }) {
  if (!profiles.length) return html`<p class="muted" data-testid="profiles">None recorded: the charger follows its own maximum.</p>`;
  return html`<div class="scroll"><table data-testid="profiles"><thead><tr><th>connector</th><th>id</th><th>purpose</th>
      <th>level</th><th>kind</th><th>limits</th><th>valid</th></tr></thead><tbody>
    ${profiles.map(({ connectorId, chargingProfile: p }) => html`<tr>
      <td>${connectorId}</td><td>${p.chargingProfileId}</td><td>${p.chargingProfilePurpose}</td><td>${p.stackLevel}</td>
      <td>${p.chargingProfileKind}${p.recurrencyKind ? ` (${p.recurrencyKind})` : ""}</td><td>${limits(p.chargingSchedule)}</td>
      <td>${p.validFrom ? `from ${when(p.validFrom)} ` : ""}${p.validTo ? `to ${when(p.validTo)}` : ""}</td></tr>`)}
  </tbody></table></div>`;
}

// The predicted composite schedule as a stepped line over the next 24 h, and as a table.
function Prediction({ id, connectors, version }) {
  const [connector, setConnector] = useState(connectors[0] ?? 1);
  const [schedule, setSchedule] = useState(null);
  const [error, setError] = useState("");
  const box = useRef(null);
  const chart = useRef(null);
  useEffect(() => {
    let gone = false;
    api(`/api/chargers/${encodeURIComponent(id)}/schedule?connectorId=${connector}&duration=${DAY}&unit=A`).then(({ status, data }) => {
      if (gone) return;
      if (status !== 200) { setError(`${status} ${data && data.detail}`); return; }
      setError("");
      setSchedule(data);
    });
    return () => { gone = true; };
  }, [id, connector, version]);
  useEffect(() => {
    if (!schedule || !box.current) return undefined;
    const start = Date.parse(schedule.scheduleStart) / 1000;
    const periods = schedule.chargingSchedule.chargingSchedulePeriod;
    const xs = periods.map((p) => start + p.startPeriod).concat(start + DAY);
    const ys = periods.map((p) => p.limit).concat(periods[periods.length - 1].limit);
    if (chart.current) chart.current.destroy();
    chart.current = new window.uPlot({
      width: box.current.clientWidth || 340, height: 200,
      scales: { x: { time: true }, y: { range: (u, lo, hi) => [0, Math.max(hi, 1) * 1.15] } },
      series: [{}, { label: `connector ${connector}`, stroke: "#1d5fbf", width: 2, paths: window.uPlot.paths.stepped({ align: 1 }),
        value: (u, v) => (v === null ? "–" : `${v} A`) }],
      axes: [{}, { label: "A" }],
    }, [xs, ys], box.current);
    // Follow the card's width (a phone turned, a window resized). A last report may come
    // after the view is left: its box is gone then.
    const watch = new ResizeObserver(() => {
      const el = box.current;
      if (chart.current && el && el.clientWidth) chart.current.setSize({ width: el.clientWidth, height: 200 });
    });
    watch.observe(box.current);
    return () => { watch.disconnect(); if (chart.current) { chart.current.destroy(); chart.current = null; } };
  }, [schedule]);
  const free = new Set((schedule && schedule.unconstrainedPeriods) || []);
  return html`<div data-testid="prediction">
    <label>connector<select value=${connector} onChange=${(e) => setConnector(Number(e.target.value))}>
      ${connectors.map((c) => html`<option value=${c}>${c}</option>`)}</select></label>
    ${error && html`<p class="answer bad">${error}</p>`}
    <div class="plot small" ref=${box}></div>
    ${schedule && html`<div class="scroll"><table data-testid="prediction-periods"><tbody>
      ${schedule.chargingSchedule.chargingSchedulePeriod.map((p) => html`<tr>
        <td>from ${when(new Date(Date.parse(schedule.scheduleStart) + p.startPeriod * 1000).toISOString())}</td>
        <td>${p.limit} A${p.numberPhases ? `, ${p.numberPhases} phases` : ""}</td>
        <td class="muted">${free.has(p.startPeriod) ? "no profile limits: the charger's maximum" : ""}</td></tr>`)}
    </tbody></table></div>`}
    <p class="muted">What the CSMS expects the charger to apply, from the profiles above; "Composite schedule"
      under Operations asks the charger itself.</p>
  </div>`;
}

function StatusHistory({ id, version }) {
  const [rows, setRows] = useState(null);
  useEffect(() => {
    api(`/api/chargers/${encodeURIComponent(id)}/status-history?limit=30`).then(({ status, data }) => status === 200 && setRows(data));
  }, [id, version]);
  if (!rows) return null;
  return html`<div class="scroll"><table data-testid="status-history"><tbody>
    ${rows.map((r) => html`<tr><td>${when(r.timestamp || r.receivedAt)}</td><td>#${r.connectorId}</td>
      <td>${r.status}</td><td>${r.errorCode && r.errorCode !== "NoError" ? r.errorCode : ""}${r.info ? ` ${r.info}` : ""}
        ${r.vendorErrorCode ? ` (${r.vendorErrorCode})` : ""}</td></tr>`)}
  </tbody></table></div>
  ${rows.length === 0 && html`<p class="muted">No status reported yet.</p>`}`;
}

// `detail` is GET /api/chargers/{id}; it changes whenever the live charger does.
export function Smart({ id, detail }) {
  const connectors = (detail.connectors || []).map((k) => k.connectorId).filter((c) => c > 0);
  const version = JSON.stringify(detail.chargingProfiles);
  return html`<div class="grid two">
    <div class="card"><h2>Charging profiles held</h2><${Profiles} profiles=${detail.chargingProfiles || []} />
      <h2>Predicted schedule, next 24 h</h2><${Prediction} id=${id} connectors=${connectors.length ? connectors : [1]} version=${version} /></div>
    <div class="card"><h2>Status history</h2><${StatusHistory} id=${id} version=${detail.lastSeen} /></div>
  </div>`;
}
