// The softphone: a stereo microphone or WAV file to the gateway's WebRTC endpoint.
"use strict";

const $ = (id) => document.getElementById(id);
const phone = (window.softphone = { state: "idle", channelCount: null, callId: null, error: null });

function status(state, text) {
  phone.state = state;
  $("status").dataset.state = state;
  $("status").textContent = text;
}

async function sourceStream(source, file) {
  if (source === "file") {
    const ctx = new AudioContext({ sampleRate: 48000 });
    const data = await (await fetch(file)).arrayBuffer();
    const buffer = await ctx.decodeAudioData(data);
    const node = ctx.createBufferSource();
    node.buffer = buffer;
    const dest = ctx.createMediaStreamDestination();
    dest.channelCount = buffer.numberOfChannels;
    node.connect(dest);
    node.onended = () => setTimeout(hangup, 1500);
    node.start();
    return { stream: dest.stream, ctx, channels: buffer.numberOfChannels };
  }
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: {
      channelCount: { ideal: 2 },
      echoCancellation: false,
      noiseSuppression: false,
      autoGainControl: false,
    },
  });
  const channels = stream.getAudioTracks()[0].getSettings().channelCount || 1;
  return { stream, ctx: null, channels };
}

// Two mono tracks, channel 0 and channel 1 of a stereo stream.
function split(stream, ctx) {
  ctx = ctx || new AudioContext({ sampleRate: 48000 });
  const input = ctx.createMediaStreamSource(stream);
  const splitter = ctx.createChannelSplitter(2);
  input.connect(splitter);
  return [0, 1].map((i) => {
    const dest = ctx.createMediaStreamDestination();
    dest.channelCount = 1;
    splitter.connect(dest, i);
    return dest.stream.getAudioTracks()[0];
  });
}

let pc = null;

async function call(opts) {
  status("connecting", "Connecting...");
  const src = await sourceStream(opts.source, opts.file);
  phone.channelCount = src.channels;
  let layout = opts.layout;
  if (src.channels < 2 && (layout === "tracks" || layout === "stereo")) {
    layout = "agent"; // a mono microphone is the agent's voice
  }
  pc = new RTCPeerConnection({ iceServers: [] });
  if (layout === "tracks") {
    for (const track of split(src.stream, src.ctx)) pc.addTrack(track);
  } else {
    pc.addTrack(src.stream.getAudioTracks()[0]);
  }
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
  });
  const headers = { "Content-Type": "application/json" };
  if (opts.token) headers.Authorization = "Bearer " + opts.token;
  const body = {
    type: "offer",
    sdp: pc.localDescription.sdp,
    call_id: opts.call_id || undefined,
    agent_id: opts.agent_id,
    layout,
  };
  const reply = await fetch("/webrtc/offer", { method: "POST", headers, body: JSON.stringify(body) });
  const answer = await reply.json();
  if (!reply.ok) throw new Error(answer.reason || answer.error);
  phone.callId = answer.call_id;
  await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  status("streaming", `Streaming call ${answer.call_id} (${layout}, ${src.channels} channel source).`);
  $("hangup").disabled = false;
}

async function hangup() {
  if (!pc) return;
  const callId = phone.callId;
  $("hangup").disabled = true;
  if (callId) { // say goodbye first: closing alone reads as a peer that went away
    const headers = { "Content-Type": "application/json" };
    const token = $("token").value;
    if (token) headers.Authorization = "Bearer " + token;
    await fetch("/webrtc/hangup", { method: "POST", headers, body: JSON.stringify({ call_id: callId }) });
  }
  pc.getSenders().forEach((s) => s.track && s.track.stop());
  pc.close();
  pc = null;
  status("ended", `Call ${callId || ""} ended.`);
}
phone.hangup = hangup;

function options() {
  const out = {};
  for (const id of ["call_id", "agent_id", "source", "file", "layout", "token"]) out[id] = $(id).value;
  return out;
}

$("form").addEventListener("submit", (e) => {
  e.preventDefault();
  call(options()).catch((err) => {
    phone.error = String(err.message || err);
    status("error", "Call failed: " + phone.error);
  });
});
$("hangup").addEventListener("click", hangup);

// ?call_id=..&agent_id=..&source=..&file=..&layout=..&autostart=1 fill in the form (never the
// key: a URL lands in histories and logs; it is typed in, or kept by the browser's password store)
const query = new URLSearchParams(location.search);
for (const [k, v] of query) if ($(k) && k !== "token") $(k).value = v;
if (query.get("autostart")) $("form").requestSubmit();
