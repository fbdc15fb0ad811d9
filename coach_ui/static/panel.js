"use strict";
// Shared by both panels: a live feed that reconnects on its own and rebuilds the page from the
// snapshot each (re)connection starts with, plus small DOM helpers. No build step, no framework.
const AA = {
  // Open `path` (a /ws/... feed) and keep it open. onMessage(msg) gets each message;
  // onStatus("live" | "reconnecting" | "denied") the connection state. Without a session
  // (4401) the page goes to the login page; a role that may not (4403) is "denied".
  feed(path, onMessage, onStatus) {
    let delay = 500;
    let socket = null;
    const open = () => {
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      socket = new WebSocket(`${scheme}//${location.host}${path}`);
      AA.socket = socket;
      socket.onopen = () => { delay = 500; };
      socket.onmessage = (m) => {
        const msg = JSON.parse(m.data);
        if (msg.type === "snapshot") onStatus("live");
        onMessage(msg);
      };
      socket.onclose = (e) => {
        if (e.code === 4401) {
          location.href = "/login?next=" + encodeURIComponent(location.pathname);
          return;
        }
        if (e.code === 4403) { onStatus("denied"); return; }
        onStatus("reconnecting");
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 5000);
      };
    };
    open();
  },

  status(state) {
    const el = document.getElementById("status");
    const text = {live: "● Live", reconnecting: "○ Reconnecting…", denied: "✕ Not allowed for your role"};
    el.textContent = text[state] || state;
    el.dataset.state = state;
  },

  el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("data-")) node.setAttribute(k, v);
      else if (k === "text") node.textContent = v;
      else if (k === "style") node.style.cssText = v; // CSSOM: allowed by the strict CSP
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  },

  duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const m = Math.floor(s / 60);
    return `${m}:${String(s % 60).padStart(2, "0")}`;
  },

  // Severity is shown as a shape and a word, never by colour alone.
  SEVERITY: {critical: "▲ CRITICAL", coaching: "■ COACHING", info: "● INFO"},

  moodWord(rolling) {
    if (rolling === null || rolling === undefined) return "unknown";
    return rolling < -0.25 ? "negative" : rolling > 0.25 ? "positive" : "neutral";
  },

  // A frustration gauge: a bar, the score as a number and the level as a word.
  gauge(score, level) {
    const pct = Math.round(Math.max(0, Math.min(1, score)) * 100);
    return AA.el("div", {class: `gauge level-${level}`, role: "meter", "aria-valuemin": 0,
      "aria-valuemax": 100, "aria-valuenow": pct, "aria-label": "frustration"},
      AA.el("span", {class: "bar", style: `width:${pct}%`}),
      AA.el("span", {class: "value", text: `${score.toFixed(2)} ${level.toUpperCase()}`}));
  },

  // Customer mood over the call, as an SVG line (-1 .. 1), with a zero line.
  sparkline(points, width = 220, height = 44) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("class", "spark");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "customer mood trend");
    const zero = document.createElementNS(ns, "line");
    zero.setAttribute("x1", 0); zero.setAttribute("x2", width);
    zero.setAttribute("y1", height / 2); zero.setAttribute("y2", height / 2);
    zero.setAttribute("class", "zero");
    svg.append(zero);
    if (points.length > 0) {
      const t0 = points[0][0], t1 = Math.max(points[points.length - 1][0], t0 + 1);
      const xy = points.map(([t, v]) =>
        `${((t - t0) / (t1 - t0) * (width - 4) + 2).toFixed(1)},${((1 - v) / 2 * (height - 4) + 2).toFixed(1)}`);
      if (xy.length === 1) xy.push(`${width - 2},${xy[0].split(",")[1]}`);
      const line = document.createElementNS(ns, "polyline");
      line.setAttribute("points", xy.join(" "));
      line.setAttribute("class", "trend");
      svg.append(line);
    }
    return svg;
  },

  // When each alert first reached this page (epoch ms), for latency measurements.
  alertSeen: {},
  markAlert(alert) {
    const key = `${alert.call_id}:${alert.seq}`;
    if (!(key in AA.alertSeen)) AA.alertSeen[key] = Date.now();
  },
};
