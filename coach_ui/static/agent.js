"use strict";
// Agent panel: the two-speaker live transcript (interims grey and marked, finals solid), the
// customer's mood and the coaching cards with knowledge suggestions. /agent/{id} follows that
// agent's current call; /call/{id} shows one call (the wall board's click-through).
(() => {
  const [, mode, rawId] = location.pathname.split("/");
  const ident = decodeURIComponent(rawId || "");
  const SPEAKER = {customer: "Customer", agent: "Agent"};
  let state;

  function reset(msg) {
    state = {callId: msg.call_id, agentId: msg.agent_id, call: msg.call || {}, finals: new Map(),
      interims: new Map(), sentiment: null, emotion: null, feeling: null, frustration: null, cards: [],
      suggestions: null, ended: (msg.call || {}).status === "ended"};
  }

  function apply(ev) {
    switch (ev.type) {
      case "transcript":
        if (ev.final) {
          state.finals.set(`${ev.channel}:${ev.utterance}`, ev);
          const open = state.interims.get(ev.channel);
          if (open && open.utterance <= ev.utterance) state.interims.delete(ev.channel);
        } else if (!state.finals.has(`${ev.channel}:${ev.utterance}`)) {
          state.interims.set(ev.channel, ev);
        }
        break;
      case "sentiment": if (ev.channel === "customer") state.sentiment = ev; break;
      case "emotion": if (ev.channel === "customer") state.emotion = ev; break;
      case "feeling": if (ev.channel === "customer") state.feeling = ev; break;
      case "frustration": state.frustration = ev; break;
      case "alert": AA.markAlert(ev); state.cards.unshift(ev); break;
      case "suggestions": state.suggestions = ev; break;
      case "call_ended": state.ended = true; break;
      default: break;
    }
  }

  function line(ev) {
    const who = AA.el("span", {class: "who", text: `${SPEAKER[ev.channel] || ev.channel}:`});
    if (ev.final) {
      return AA.el("li", {class: `line final ${ev.channel}`, "data-channel": ev.channel,
        "data-utterance": ev.utterance}, who, AA.el("span", {class: "text", text: ` ${ev.text}`}));
    }
    return AA.el("li", {class: `line interim ${ev.channel}`, "data-channel": ev.channel,
        "aria-label": `${SPEAKER[ev.channel]} speaking`}, who,
      AA.el("span", {class: "text", text: ` ${ev.committed}`}),
      AA.el("span", {class: "unstable", text: ev.unstable ? ` ${ev.unstable}` : ""}),
      AA.el("span", {class: "typing", text: " …"}));
  }

  function render() {
    const title = mode === "agent" ? `Agent ${ident}` : `Call ${ident}`;
    document.getElementById("title").textContent = title;
    const info = state.callId ? `call ${state.callId}` + (state.agentId ? ` · agent ${state.agentId}` : "") : "";
    document.getElementById("call-info").textContent = info + (state.ended ? " · call ended" : "");
    document.getElementById("no-call").hidden = Boolean(state.callId);

    const finals = [...state.finals.values()].sort((a, b) => a.start - b.start || a.seq - b.seq);
    const lines = finals.map(line).concat([...state.interims.values()].map(line));
    const box = document.getElementById("transcript");
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    box.replaceChildren(...lines);
    if (atBottom) box.scrollTop = box.scrollHeight;

    const mood = document.getElementById("mood");
    const s = state.sentiment, f = state.frustration, e = state.emotion;
    const rolling = s ? s.rolling : null;
    mood.replaceChildren(
      AA.el("p", {class: `mood-${AA.moodWord(rolling)}`, "data-mood": AA.moodWord(rolling)},
        AA.el("span", {class: "label", text: "Sentiment "}),
        AA.el("strong", {text: s ? `${AA.moodWord(rolling)} (${rolling >= 0 ? "+" : ""}${rolling.toFixed(2)})` : "—"}),
        s ? AA.el("span", {class: "trend", text: s.trend < -0.05 ? " ↓ falling" : s.trend > 0.05 ? " ↑ rising" : " → steady"}) : null),
      AA.el("p", {}, AA.el("span", {class: "label", text: "Voice "}),
        AA.el("strong", {text: e ? e.label : "—"})),
      AA.el("p", {class: "feeling", "data-feeling": state.feeling ? state.feeling.label : ""},
        AA.el("span", {class: "label", text: "Feels "}),
        AA.el("strong", {text: state.feeling ?
          `${state.feeling.label} (${Math.round(state.feeling.confidence * 100)}%)` : "—"})),
      AA.el("div", {class: "row"}, AA.el("span", {class: "label", text: "Frustration "}),
        AA.gauge(f ? f.score : 0, f ? f.level : "low")));

    // The newest cards in full; older ones fold away so the suggestions stay in view.
    const cards = state.cards.map((a) => {
      const ev = (a.evidence || [])[0] || {};
      return AA.el("li", {class: `card sev-${a.severity}`, "data-severity": a.severity, "data-rule": a.rule},
        AA.el("div", {class: "card-head"}, AA.el("strong", {text: AA.SEVERITY[a.severity] || a.severity}),
          AA.el("span", {class: "rule", text: ` ${a.rule}`})),
        AA.el("p", {class: "prompt", text: a.prompt}),
        ev.text ? AA.el("q", {text: ev.text}) : AA.el("p", {class: "detail", text: ev.detail || ""}));
    });
    const older = cards.slice(2);
    document.getElementById("cards").replaceChildren(...cards.slice(0, 2), older.length ?
      AA.el("li", {class: "older"}, AA.el("details", {},
        AA.el("summary", {text: `${older.length} earlier alert${older.length > 1 ? "s" : ""}`}),
        AA.el("ol", {class: "cards"}, ...older))) : null);

    const items = state.suggestions ? state.suggestions.items : [];
    document.getElementById("suggestions").replaceChildren(...items.map((it) =>
      AA.el("li", {class: "suggestion", "data-id": it.id},
        AA.el("div", {class: "card-head"}, AA.el("strong", {text: it.title}),
          AA.el("span", {class: "score", text: ` match ${Math.round(it.score * 100)}%`})),
        AA.el("p", {text: it.answer}))));
  }

  reset({call_id: "", agent_id: ""});
  render();
  AA.feed(`/ws/${mode}/${encodeURIComponent(ident)}`, (msg) => {
    if (msg.type === "snapshot") {
      reset(msg);
      msg.events.forEach(apply);
      msg.interims.forEach(apply);
    } else {
      apply(msg);
    }
    render();
  }, AA.status);
})();
