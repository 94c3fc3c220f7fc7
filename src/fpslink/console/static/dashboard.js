// The live dashboard: polls /console/api/dashboard and redraws numbers, chart and tables in place.
"use strict";
(() => {
  const POLL_MS = 1500;
  const MAX_POLLS = 20000; // about eight hours, the life of a session
  const SVG = "http://www.w3.org/2000/svg";
  const W = 600;
  const H = 160;
  const PAD = 16;
  let polls = 0;
  let timer = null;
  let busy = false;

  const byId = (id) => document.getElementById(id);
  const text = (id, value) => {
    const node = byId(id);
    if (node) node.textContent = value === null || value === undefined ? "—" : String(value);
  };

  function cell(row, value, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = value === null || value === undefined ? "—" : String(value);
    row.appendChild(td);
    return td;
  }

  function fill(tableId, rows, build) {
    const table = byId(tableId);
    if (!table) return;
    const body = table.tBodies[0];
    const fresh = document.createElement("tbody");
    rows.forEach((r) => fresh.appendChild(build(r)));
    table.replaceChild(fresh, body);
  }

  function paymentLink(id) {
    const td = document.createElement("td");
    const a = document.createElement("a");
    a.className = "mono";
    a.href = "/console/payments/" + encodeURIComponent(id);
    a.textContent = id.slice(0, 8) + "…";
    td.appendChild(a);
    return td;
  }

  function chart(series) {
    const svg = byId("throughput");
    if (!svg) return;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const peak = Math.max(1, ...series.map((p) => p.settled + p.rejected));
    const slot = (W - PAD) / Math.max(series.length, 1);
    const scale = (H - PAD) / peak;
    const axis = document.createElementNS(SVG, "line");
    axis.setAttribute("class", "axis");
    axis.setAttribute("x1", PAD);
    axis.setAttribute("x2", W);
    axis.setAttribute("y1", H - PAD);
    axis.setAttribute("y2", H - PAD);
    svg.appendChild(axis);
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", 2);
    label.setAttribute("y", 10);
    label.textContent = String(peak);
    svg.appendChild(label);
    series.forEach((p, i) => {
      const x = PAD + i * slot;
      const w = Math.max(slot - 1, 1);
      let y = H - PAD;
      [["settled", p.settled], ["rejected", p.rejected]].forEach(([kind, n]) => {
        if (!n) return;
        const h = n * scale;
        y -= h;
        const rect = document.createElementNS(SVG, "rect");
        rect.setAttribute("class", kind);
        rect.setAttribute("x", x.toFixed(1));
        rect.setAttribute("y", y.toFixed(1));
        rect.setAttribute("width", w.toFixed(1));
        rect.setAttribute("height", h.toFixed(1));
        const title = document.createElementNS(SVG, "title");
        title.textContent = n + " " + kind;
        rect.appendChild(title);
        svg.appendChild(rect);
      });
    });
  }

  // Hong Kong time, to the second, as every other time in the console (the layout's clock included)
  function hkt(iso) {
    const at = new Date(Date.parse(iso) + 8 * 3600 * 1000);
    return at.toISOString().slice(0, 19).replace("T", " ") + " HKT";
  }

  function draw(d) {
    text("as-of", hkt(d.as_of));
    text("settled-rate", d.rates.settled_per_s);
    text("rejected-rate", d.rates.rejected_per_s);
    text("settled-total", d.totals.settled);
    text("rejected-total", d.totals.rejected);
    text("pending-count", d.pending.count);
    ["p50", "p90", "p99", "max"].forEach((k) => text("lat-" + k, d.latency_ms[k]));
    text("lat-count", d.latency_ms.count);
    chart(d.series);
    fill("pending", d.pending.oldest, (r) => {
      const tr = document.createElement("tr");
      tr.appendChild(paymentLink(r.payment_id));
      cell(tr, r.state);
      cell(tr, r.age_s, "num");
      cell(tr, r.attempts, "num");
      return tr;
    });
    fill("busiest", d.busiest, (r) => {
      const tr = document.createElement("tr");
      cell(tr, r.account_id, "mono");
      cell(tr, r.participant_id);
      cell(tr, r.direction);
      cell(tr, r.used, "num");
      cell(tr, r.cap || "none", "num");
      const td = cell(tr, "");
      if (r.ratio !== null) {
        const bar = document.createElement("progress");
        bar.max = 1;
        bar.value = r.ratio;
        td.appendChild(bar);
      }
      return tr;
    });
    if (d.ibps_calls) {
      fill("ibps-calls", d.ibps_calls, (r) => {
        const tr = document.createElement("tr");
        cell(tr, r.call);
        cell(tr, r.outcome);
        cell(tr, r.count, "num");
        return tr;
      });
    }
    if (d.recovery) {
      fill("recovery", d.recovery, (r) => {
        const tr = document.createElement("tr");
        cell(tr, r.state);
        cell(tr, r.count, "num");
        return tr;
      });
    }
  }

  async function poll() {
    timer = null;
    if (busy) return;
    busy = true;
    polls += 1;
    const live = byId("live");
    const windowSelect = byId("window");
    const seconds = windowSelect ? windowSelect.value : "60";
    try {
      const response = await fetch("/console/api/dashboard?window=" + encodeURIComponent(seconds), {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "application/json" },
      });
      if (response.status === 401) {
        polls = MAX_POLLS;
        window.location.assign("/console/login?next=" + encodeURIComponent("/console/dashboard"));
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      draw(await response.json());
      if (live) {
        live.dataset.updates = String(Number(live.dataset.updates || "0") + 1);
        live.textContent = "live";
      }
    } catch (err) {
      if (live) live.textContent = "reconnecting…";
    } finally {
      busy = false;
    }
    if (polls < MAX_POLLS && !document.hidden) timer = window.setTimeout(poll, POLL_MS);
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && timer === null) timer = window.setTimeout(poll, 0);
  });
  const windowSelect = byId("window");
  if (windowSelect) {
    windowSelect.addEventListener("change", () => {
      if (timer !== null) window.clearTimeout(timer);
      timer = window.setTimeout(poll, 0);
    });
  }
  timer = window.setTimeout(poll, 0);
})();
