// Firmware images (upload, send to a charger, status history) and diagnostics files.
import { useState } from "./vendor/hooks.mjs";
import { Action, Answer, api, bytes, html, when } from "./lib.mjs";
import { useList } from "./tags.mjs";

// POST /api/firmware as multipart with the browser's upload progress (fetch has none).
function upload(file, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    const body = new FormData();
    body.append("file", file, file.name);
    xhr.open("POST", "/api/firmware");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      let data = xhr.responseText;
      try { data = JSON.parse(data); } catch { /* text as it is */ }
      resolve({ status: xhr.status, data });
    };
    xhr.onerror = () => resolve({ status: 0, data: { error: "network" } });
    xhr.send(body);
  });
}

function Upload({ online, done }) {
  const [progress, setProgress] = useState(null);
  const [answer, setAnswer] = useState(null);
  const submit = async (event) => {
    event.preventDefault();
    const file = event.target.elements.file.files[0];
    if (!file) return;
    setAnswer(null);
    setProgress(0);
    const result = await upload(file, setProgress);
    setProgress(null);
    setAnswer(result);
    if (result.status === 201) { event.target.reset(); done(); }
  };
  return html`<form class="row" onSubmit=${submit} data-testid="firmware-upload">
    <label>image<input type="file" name="file" required /></label>
    <button type="submit" disabled=${!online || progress !== null}>Upload</button>
    ${progress !== null && html`<progress max="1" value=${progress} aria-label="upload progress"></progress>
      <span>${Math.round(progress * 100)} %</span>`}
    <${Answer} answer=${answer} />
  </form>`;
}

export function Files({ live, online }) {
  const images = useList("/api/firmware");
  const statuses = useList("/api/events?kind=FirmwareStatusNotification&limit=50");
  const diagnostics = useList("/api/diagnostics");
  const ids = Object.keys(live.chargers).sort();
  const names = (images.rows || []).map((f) => f.name);
  const chargerPost = (id, path, body) => api(`/api/chargers/${encodeURIComponent(id)}/${path}`, { method: "POST", body });
  return html`<div data-testid="files">
    <div class="card"><h2>Firmware images</h2>
      <${Upload} online=${online} done=${images.reload} />
      ${images.rows && html`<div class="scroll"><table data-testid="firmware-list"><thead><tr><th>name</th><th>size</th>
          <th>sha256</th><th>uploaded</th></tr></thead><tbody>
        ${images.rows.map((f) => html`<tr><td>${f.name}</td><td>${bytes(f.size)}</td>
          <td class="hash">${f.sha256}</td><td>${when(f.uploadedAt)}</td></tr>`)}
      </tbody></table></div>`}
      ${images.rows && images.rows.length === 0 && html`<p class="muted">No image uploaded yet.</p>`}
    </div>
    <div class="card"><h2>Update a charger's firmware</h2>
      ${ids.length && names.length ? html`<${Action} title="Send firmware" online=${online} done=${statuses.reload} fields=${[
        { name: "chargerId", label: "charger", options: ids },
        { name: "file", label: "image", options: names },
        { name: "retrieveDate", label: "not before (UTC, optional)", placeholder: "2027-01-31T02:00:00Z" }]}
        run=${(v) => chargerPost(v.chargerId, "firmware-update", { file: v.file, ...(v.retrieveDate.trim() ? { retrieveDate: v.retrieveDate.trim() } : {}) })} />`
      : html`<p class="muted">Upload an image and connect a charger first.</p>`}
      <h2>Firmware status reports <button class="plain" onClick=${statuses.reload}>Refresh</button></h2>
      ${statuses.rows && html`<div class="scroll"><table data-testid="firmware-status"><tbody>
        ${statuses.rows.map((e) => html`<tr><td>${when(e.at)}</td><td>${e.charger_id}</td><td>${e.data && e.data.status}</td></tr>`)}
      </tbody></table></div>`}
      ${statuses.rows && statuses.rows.length === 0 && html`<p class="muted">None yet.</p>`}
    </div>
    <div class="card"><h2>Diagnostics</h2>
      ${ids.length ? html`<${Action} title="Request diagnostics" online=${online} fields=${[
        { name: "chargerId", label: "charger", options: ids },
        { name: "protocol", label: "upload over", options: ["http", "ftp"] }]}
        run=${(v) => chargerPost(v.chargerId, "diagnostics", { protocol: v.protocol })} />` : ""}
      <h2>Received files <button class="plain" onClick=${diagnostics.reload}>Refresh</button></h2>
      ${diagnostics.rows && html`<div class="scroll"><table data-testid="diagnostics-list"><tbody>
        ${diagnostics.rows.map((f) => html`<tr><td>${when(f.receivedAt)}</td><td>${f.chargerId}</td>
          <td><a href=${`/api/diagnostics/${encodeURIComponent(f.chargerId)}/${encodeURIComponent(f.name)}`} download=${f.name}>${f.name}</a></td>
          <td>${bytes(f.size)}</td></tr>`)}
      </tbody></table></div>`}
      ${diagnostics.rows && diagnostics.rows.length === 0 && html`<p class="muted">None received.</p>`}
    </div>
  </div>`;
}
