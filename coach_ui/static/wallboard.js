"use strict";
// Supervisor wall board: a tile per live call (most in need of help first) and the alert feed.
(() => {
  const tiles = document.getElementById("tiles");
  const feed = document.getElementById("alerts");
  let board = {calls: [], aggregates: {}, at: 0};
  let clockOffset = 0;  // server time - page time, seconds
  let alerts = [];

  function tileFor(call) {
    const now = Date.now() / 1000 + clockOffset;
    const mood = AA.moodWord(call.mood);
    const share = call.talk_share || {};
    const pct = (p) => Math.round((share[p] || 0) * 100);
    const alert = call.last_alert;
    const urgent = call.needs_help;
    return AA.el("li", {class: `tile${urgent ? " urgent" : ""}`, "data-call-id": call.call_id,
        "data-need": call.need},
      AA.el("a", {href: `/call/${encodeURIComponent(call.call_id)}`, class: "tile-link",
          "aria-label": `open call ${call.call_id}`},
        AA.el("div", {class: "tile-head"},
          AA.el("strong", {class: "agent", text: call.agent_id || "agent ?"}),
          AA.el("span", {class: "duration", "data-started": call.started_at,
            text: AA.duration(now - call.started_at)})),
        urgent ? AA.el("p", {class: "needs-help", text: "▲ NEEDS HELP"}) : null,
        AA.el("div", {class: `mood mood-${mood}`},
          AA.el("span", {class: "label", text: "Mood "}),
          AA.el("span", {class: "word", text: call.mood === null ? "—" :
            `${mood} (${call.mood >= 0 ? "+" : ""}${call.mood.toFixed(2)})`})),
        AA.el("div", {class: "feeling", "data-feeling": call.feeling ? call.feeling.label : ""},
          AA.el("span", {class: "label", text: "Feels "}),
          AA.el("span", {class: "word", text: call.feeling ?
            `${call.feeling.label} (${Math.round(call.feeling.confidence * 100)}%)` : "—"})),
        AA.sparkline(call.trend || []),
        AA.el("div", {class: "row"}, AA.el("span", {class: "label", text: "Frustration"}),
          AA.gauge(call.frustration.score, call.frustration.level)),
        AA.el("div", {class: "row"}, AA.el("span", {class: "label", text: "Talk"}),
          AA.el("div", {class: "share", "aria-label": "talk share"},
            AA.el("span", {class: "cust", style: `flex:${pct("customer") || 1}`,
              text: `Cust ${pct("customer")}%`}),
            AA.el("span", {class: "agt", style: `flex:${pct("agent") || 1}`,
              text: `Agent ${pct("agent")}%`}))),
        AA.el("p", {class: `last-alert sev-${alert ? alert.severity : "none"}`,
          text: alert ? `${AA.SEVERITY[alert.severity]} · ${alert.rule}` : "No alerts"}),
        AA.el("p", {class: "call-id", text: call.call_id})));
  }

  function renderBoard() {
    const a = board.aggregates || {};
    document.getElementById("agg-active").textContent = a.active_calls ?? 0;
    document.getElementById("agg-negative").textContent = a.negative_calls ?? 0;
    document.getElementById("agg-rate").textContent = a.alerts_per_minute ?? 0;
    tiles.replaceChildren(...board.calls.map(tileFor));
    document.getElementById("no-calls").hidden = board.calls.length > 0;
  }

  function renderAlerts() {
    feed.replaceChildren(...alerts.slice(0, 50).map((al) => {
      const ev = (al.evidence || [])[0] || {};
      const when = new Date((al.at || 0) * 1000).toLocaleTimeString();
      return AA.el("li", {class: `alert-item sev-${al.severity}`, "data-severity": al.severity,
          "data-rule": al.rule, "data-call-id": al.call_id},
        AA.el("div", {class: "alert-head"},
          AA.el("strong", {text: AA.SEVERITY[al.severity] || al.severity}),
          AA.el("span", {text: ` ${al.rule}`}), AA.el("time", {text: when})),
        AA.el("p", {}, AA.el("a", {href: `/call/${encodeURIComponent(al.call_id)}`,
          text: `${al.agent_id || "agent ?"} · ${al.call_id}`})),
        ev.text ? AA.el("q", {text: ev.text}) : AA.el("p", {class: "detail", text: ev.detail || ""}));
    }));
  }

  AA.feed("/ws/wallboard", (msg) => {
    if (msg.type === "snapshot") {
      board = msg.board;
      alerts = msg.alerts;
      alerts.forEach(AA.markAlert);
      clockOffset = board.at - Date.now() / 1000;
      renderBoard();
      renderAlerts();
    } else if (msg.type === "wallboard") {
      board = msg;
      clockOffset = board.at - Date.now() / 1000;
      renderBoard();
    } else if (msg.type === "alert") {
      AA.markAlert(msg);
      alerts.unshift(msg);
      renderAlerts();
    }
  }, AA.status);

  setInterval(() => {  // tick the durations between summaries
    const now = Date.now() / 1000 + clockOffset;
    for (const d of tiles.querySelectorAll(".duration")) {
      d.textContent = AA.duration(now - Number(d.dataset.started));
    }
  }, 1000);
})();
