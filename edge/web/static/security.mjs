// Security for commissioning over TLS: per charger its profile, ws or wss and its client
// certificate; the wss listener's certificate, the site CA, the latest security events.
import { useEffect, useRef, useState } from "./vendor/hooks.mjs";
import { api, html, Icon, useRefresh, when } from "./lib.mjs";

const EVERY_MS = 30000; // at most this often by itself; the live link's hints come between
const HINT_MS = 2000; // a burst of refused handshakes makes one fetch per this
const PROFILES = ["no authentication", "password (ws)", "password over TLS", "client certificate"];

// `value`, passed on at most once per `ms` (the last one of a burst wins).
function useThrottle(value, ms) {
  const [out, setOut] = useState(value);
  const last = useRef(0);
  useEffect(() => {
    const timer = setTimeout(() => { last.current = Date.now(); setOut(value); },
      Math.max(0, last.current + ms - Date.now()));
    return () => clearTimeout(timer);
  }, [value]);
  return out;
}

const day = (text) => (text ? when(text).slice(0, 10) : "–");
const left = (days) => (days < 0 ? `expired ${-days} d ago` : `${days} d left`);

// A warning in words (not by colour alone), with its icon.
const Warn = ({ bad, id, children }) => html`<strong class=${bad ? "bad" : "warn"} data-testid=${id}>
  <${Icon} name="alert" /> ${children}</strong>`;

function Expiry({ cert, id, what }) {
  if (!cert.notAfter) return "–";
  return html`${day(cert.notAfter)} <span class="muted">(${left(cert.expiresInDays)})</span>
    ${cert.expiringSoon && html`<br /><${Warn} bad=${cert.expiresInDays < 0} id=${id}>
      ${cert.expiresInDays < 0 ? `${what} has expired` : `${what} expires within 30 days`}: renew it<//>`}`;
}

// Profile and transport in short, for the chargers list and a charger's detail.
export function SecurityMark({ c }) {
  const s = c && c.security;
  if (!s) return null;
  const at = c.connected && s.connectedAt;
  return html`<span class=${`transport ${at && at.transport === "wss" ? "wss" : "ws"}`} data-testid=${`sec-${c.id}`}>
    profile ${s.profile}${at ? ` · ${at.transport}` : ""}</span>`;
}

function Connection({ c }) {
  const at = c.security && c.security.connectedAt;
  if (!c.connected || !at) return html`<span class="muted">offline${at ? `, last over ${at.transport}` : ""}</span>`;
  const wss = at.transport === "wss";
  return html`<span class=${`transport ${wss ? "wss" : "ws"}`} data-testid=${`transport-${c.id}`}>
    ${wss && html`<${Icon} name="lock" />`}${at.transport}</span>
    ${wss ? html` <span class="muted">${at.tls}</span>` : html` <span class="muted">not encrypted</span>`}`;
}

function ClientCertificate({ c, revoked: revokedNow }) {
  const at = c.security && c.security.connectedAt;
  const cert = at && at.certificate;
  if (!cert) return html`<span class="muted">${c.security && c.security.profile === 3 ? "not connected" : "none"}</span>`;
  // The live message says what was true when the charger last changed; a revocation
  // since (the CA, a new CRL) shows from the view's own fetch.
  const revoked = cert.revoked || revokedNow.has(c.id);
  return html`<div data-testid=${`client-cert-${c.id}`}>
    <span class="mono" title=${cert.subject}>${cert.serial}</span><br />
    expires <${Expiry} cert=${cert} id=${`cert-expiry-${c.id}`} what="its certificate" />
    ${revoked && html`<br /><${Warn} bad id=${`cert-revoked-${c.id}`}>revoked: renew it, it can no longer reconnect<//>`}
  </div>`;
}

function Chargers({ live, revoked }) {
  const chargers = Object.values(live.chargers).sort((a, b) => a.id.localeCompare(b.id));
  if (!chargers.length) return html`<p class="muted">No charger known yet.</p>`;
  return html`<div class="scroll"><table data-testid="security-chargers"><thead><tr><th>charger</th>
      <th>profile, connection</th><th>client certificate</th></tr></thead><tbody>
    ${chargers.map((c) => {
      const s = c.security || {};
      return html`<tr data-testid=${`security-${c.id}`}><td><a href=${`#/chargers/${encodeURIComponent(c.id)}`}>${c.id}</a></td>
        <td data-testid=${`profile-${c.id}`}>${s.profile === undefined ? "–" : html`<strong>${s.profile}</strong>
          <span class="muted"> ${PROFILES[s.profile] || ""}</span>`}
          ${s.pendingProfile && html`<br /><span class="warn">${s.pendingProfile} pending: waits for the charger to reconnect</span>`}
          <br /><${Connection} c=${c} /></td>
        <td><${ClientCertificate} c=${c} revoked=${revoked} /></td></tr>`;
    })}
  </tbody></table></div>`;
}

function ServerCertificate({ wss, tls }) {
  if (wss === false) {
    return html`<p data-testid="no-tls">No wss listener (<code>[ocpp.tls]</code> is not configured): chargers connect
      over ws only, at profile 0 or 1.</p>`;
  }
  if (!tls) return html`<p class="muted">Loading…</p>`;
  if (tls.status !== 200) return html`<p class="answer bad">${tls.status} ${tls.data && tls.data.detail}</p>`;
  const t = tls.data;
  return html`<dl class="kv" data-testid="server-certificate">
    ${t.certificates.map((cert, i) => html`<dt>${cert.keyType} certificate</dt><dd>${cert.subject}<br />
      <span class="muted">serial</span> <span class="mono">${cert.serialNumber}</span><br />
      expires <${Expiry} cert=${cert} id=${`server-expiry-${i}`} what="the server certificate" /></dd>`)}
    <dt>Client CA</dt><dd>${t.clientCa || "none: no charger can use profile 3"}${t.clientCas ? ` (${t.clientCas})` : ""}</dd>
    <dt>Revocation list</dt><dd>${t.crl || "none"}${t.crl ? `: ${t.revokedCertificates} revoked, checked ${t.crlCheckedInHandshake ? "in the handshake" : "at the upgrade"}` : ""}</dd>
    ${t.problems.length > 0 && html`<dt>Problems</dt><dd><ul>${t.problems.map((p) => html`<li class=${p.severity === "warning" ? "warn" : "bad"}>${p.text}</li>`)}</ul></dd>`}
  </dl>`;
}

function SiteCa({ ca }) {
  if (!ca) return html`<p class="muted">Loading…</p>`;
  if (ca.status !== 200) return html`<p class="muted">${ca.data && ca.data.detail}</p>`;
  const c = ca.data;
  if (!c.exists) {
    return html`<p data-testid="site-ca">No site CA yet: the first charger that asks for a certificate makes it
      (or <code>edge-csms ca init</code>).</p>`;
  }
  return html`<dl class="kv" data-testid="site-ca">
    <dt>Subject</dt><dd>${c.subject}${c.operatorCa ? " (the operator's CA)" : ""}</dd>
    <dt>Expires</dt><dd>${day(c.notAfter)} <span class="muted">(${left(c.expiresInDays)})</span></dd>
    <dt>Fingerprint</dt><dd class="mono">${c.fingerprint}</dd>
    <dt>For chargers</dt><dd><a href="/api/ca/certificate" download="site-ca.pem">Download the CA certificate (PEM)</a></dd>
  </dl>`;
}

function Events({ events }) {
  if (!events) return html`<p class="muted">Loading…</p>`;
  if (events.status !== 200) return html`<p class="answer bad">${events.status} ${events.data && events.data.detail}</p>`;
  if (!events.data.length) return html`<p class="muted" data-testid="security-events">None recorded.</p>`;
  return html`<div class="scroll"><table data-testid="security-events"><thead><tr><th>received</th><th>charger</th>
      <th>event, details</th></tr></thead><tbody>
    ${events.data.map((e) => html`<tr data-testid="security-event" class=${e.critical ? "critical" : ""}>
      <td>${when(e.receivedAt)}</td><td>${e.chargerId || "site"}</td>
      <td class="event">${e.critical && html`<strong class="bad">critical </strong>`}${e.type}
        <span class="muted">${e.source === "edge" ? " (edge)" : ""}</span>
        ${e.techInfo && html`<br /><span class="message muted">${e.techInfo}</span>`}</td></tr>`)}
  </tbody></table></div>`;
}

export function Security({ live }) {
  const [state, setState] = useState({ tls: null, ca: null, events: null, revoked: new Set() });
  const [wss, setWss] = useState(null); // whether the wss listener runs (/api/about)
  const tick = useRefresh(EVERY_MS);
  const hint = useThrottle(live.security, HINT_MS);
  useEffect(() => { api("/api/about").then(({ status, data }) => status === 200 && setWss(data.wss)); }, []);
  useEffect(() => {
    if (wss === null) return undefined;
    let gone = false;
    const described = wss ? api("/api/security/tls") : Promise.resolve(null);
    Promise.all([described, api("/api/ca"), api("/api/security/events?limit=20"),
      api("/api/chargers")]).then(([tls, ca, events, chargers]) => {
      if (gone) return;
      const cert = (c) => c.security && c.security.connectedAt && c.security.connectedAt.certificate;
      const revoked = new Set(chargers.status === 200 ? chargers.data.filter((c) => cert(c) && cert(c).revoked).map((c) => c.id) : []);
      setState({ tls, ca, events, revoked });
    });
    return () => { gone = true; };
  }, [tick, hint, wss]);
  return html`<div data-testid="security">
    <div class="card"><h2>Chargers</h2><${Chargers} live=${live} revoked=${state.revoked} />
      <p class="muted">Profiles are never lowered. 0: no authentication, 1: a password over ws, 2: a password over
        wss, 3: a client certificate over wss. Certificates expiring within 30 days are flagged.</p></div>
    <div class="grid two">
      <div class="card"><h2>Server certificate (wss)</h2><${ServerCertificate} wss=${wss} tls=${state.tls} /></div>
      <div class="card"><h2>Site CA</h2><${SiteCa} ca=${state.ca} /></div>
    </div>
    <div class="card"><h2>Security events <span class="muted">(the latest 20)</span></h2><${Events} events=${state.events} />
      <p class="muted">Critical ones (the Whitepaper's) are marked critical, in red. Every one: <code>/api/security/events</code>.</p></div>
  </div>`;
}
