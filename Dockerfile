# The agent-assist image: one process (`serve`), or a gateway (`serve --role gateway`) and
# workers (`worker`) on separate machines, as deploy/k8s runs it.
#
#   CPU (the default):
#     docker build -t agent-assist .
#   GPU (CUDA 12 with cuDNN 9, what CTranslate2 4.x and torch's cu126 wheels need):
#     docker build -t agent-assist:cuda \
#       --build-arg BASE_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 \
#       --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126 .
#     then run workers with AGENT_ASSIST_DEVICE=cuda AGENT_ASSIST_COMPUTE_TYPE=float16
#
#   docker run -p 8080:8080 -p 8081:8081 -p 8082:8082 -p 9092-9093:9092-9093 \
#     -v agent-assist-state:/var/lib/agent-assist -v /etc/agent-assist:/run/secrets:ro \
#     -e REDIS_URL=redis://redis:6379/0 -e AGENT_ASSIST_PANEL_SECRET_FILE=/run/secrets/panel \
#     -e AGENT_ASSIST_WEBRTC_PORT=8082 -e AGENT_ASSIST_AUDIOSOCKET_ALLOW=172.16.0.0/12 agent-assist
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# where torch comes from: its CPU build by default (PyPI's default pulls gigabytes of CUDA)
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    XDG_CACHE_HOME=/var/cache/agent-assist \
    NUMBA_CACHE_DIR=/var/cache/agent-assist/numba \
    PATH=/opt/venv/bin:$PATH

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# A CUDA base has no Python: take the distribution's (3.12 on Ubuntu 24.04) into a venv.
# hadolint ignore=DL3008
RUN if ! command -v python3 >/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/venv

WORKDIR /app
COPY pyproject.toml README.md ./
COPY agent_assist ./agent_assist
COPY pipeline ./pipeline
COPY gateway ./gateway
COPY coach_ui ./coach_ui

RUN pip install torch==2.13.0 --index-url "${TORCH_INDEX_URL}" \
    && pip install . \
    && agent-assist model \
    && useradd --system --uid 10001 --home /app agent \
    && mkdir -p /var/lib/agent-assist \
    && chown -R 10001 /var/cache/agent-assist /var/lib/agent-assist

# Secure with no extra step: the key-based ingests only, with a key made on the first start into
# the volume (docker exec ... cat /var/lib/agent-assist/ingest-keys), unless AGENT_ASSIST_INGEST_KEYS
# (or its _FILE) is given. Twilio and AudioHook: set their credentials and AGENT_ASSIST_INGESTS.
ENV AGENT_ASSIST_MINT_INGEST_KEY=/var/lib/agent-assist/ingest-keys \
    AGENT_ASSIST_INGESTS=native,audiofork
VOLUME ["/var/lib/agent-assist"]
USER 10001
# 8080: WebSocket ingest (native, Twilio, AudioHook, audio fork), /metrics, /healthz
#       (a worker: /metrics only);
# 8081: the agent panel, wall board and their API; 8082: WebRTC offers and the softphone page;
# 9092/9093: Asterisk AudioSocket (customer legs / agent legs, TCP)
EXPOSE 8080 8081 8082 9092 9093
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/metrics')"]
ENTRYPOINT ["agent-assist"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
