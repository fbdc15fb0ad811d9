#!/usr/bin/env bash
# Render agent_assist/samples/sample_call.txt into a stereo 8 kHz mu-law WAV with espeak-ng and sox:
# customer on the left channel (0), agent on the right (1), turns one after another with short gaps.
# Also writes sample_call.timeline.tsv (start and end second of each turn) beside it.
# Needs the Debian packages espeak-ng and sox (`make sample-call` installs them).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
script="$here/agent_assist/samples/sample_call.txt"
out="$here/agent_assist/samples/sample_call.wav"
timeline="$here/agent_assist/samples/sample_call.timeline.tsv"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

gap=0.6        # seconds of silence between turns
t=1.0          # the call opens with a second of silence
n=0
: >"$timeline"
cust_parts=() ; agent_parts=()
while IFS=$'\t' read -r speaker tone text; do
  [[ -z "$speaker" || "$speaker" == \#* ]] && continue
  n=$((n + 1))
  case "$speaker/$tone" in
    customer/calm)    voice=en-us+m1; speed=135; pitch=45; amp=100; wordgap=4; level=-9 ;;
    customer/annoyed) voice=en-us+m1; speed=150; pitch=70; amp=170; wordgap=3; level=-2 ;;
    agent/*)          voice=en-us+f2; speed=145; pitch=50; amp=100; wordgap=4; level=-6 ;;
    *) echo "unknown speaker/tone: $speaker/$tone" >&2; exit 1 ;;
  esac
  espeak-ng -v "$voice" -s "$speed" -p "$pitch" -a "$amp" -g "$wordgap" -w "$tmp/raw$n.wav" "$text"
  sox "$tmp/raw$n.wav" -r 8000 -c 1 -b 16 "$tmp/turn$n.wav" gain -n "$level"
  dur="$(soxi -D "$tmp/turn$n.wav")"
  sox "$tmp/turn$n.wav" "$tmp/placed$n.wav" pad "$t" 0
  if [[ "$speaker" == customer ]]; then cust_parts+=("$tmp/placed$n.wav"); else agent_parts+=("$tmp/placed$n.wav"); fi
  end="$(echo "$t + $dur" | bc -l)"
  printf '%s\t%.3f\t%.3f\t%s\n' "$speaker" "$t" "$end" "$text" >>"$timeline"
  t="$(echo "$end + $gap" | bc -l)"
done <"$script"

total="$(echo "$t + 1.0" | bc -l)"
mix() { # mix the given parts into one mono track of the call's full length
  local dst="$1"; shift
  sox -n -r 8000 -c 1 -b 16 "$tmp/silence.wav" trim 0 "$total"
  if (($# == 1)); then sox -m "$tmp/silence.wav" "$1" "$dst"; else sox -m "$tmp/silence.wav" "$@" "$dst"; fi
  sox "$dst" "$dst.trim.wav" trim 0 "$total" && mv "$dst.trim.wav" "$dst"
}
mix "$tmp/customer.wav" "${cust_parts[@]}"
mix "$tmp/agent.wav" "${agent_parts[@]}"
sox -M "$tmp/customer.wav" "$tmp/agent.wav" -e mu-law -b 8 "$out"
soxi "$out"
