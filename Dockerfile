# CPU image of the gateway and streaming worker in one process.
#   docker build -t agent-assist .
#   docker run -p 8080:8080 -p 8081:8081 -p 8082:8082 -p 9092-9093:9092-9093 \
#     -e REDIS_URL=redis://redis:6379/0 \
#     -e AGENT_ASSIST_PANEL_TOKEN=change-me agent-assist
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    XDG_CACHE_HOME=/var/cache/agent-assist \
    NUMBA_CACHE_DIR=/var/cache/agent-assist/numba

WORKDIR /app
COPY pyproject.toml README.md ./
COPY agent_assist ./agent_assist
COPY pipeline ./pipeline
COPY gateway ./gateway
COPY coach_ui ./coach_ui

# the CPU build of torch (PyPI's default pulls gigabytes of CUDA libraries)
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install . \
    && agent-assist model \
    && useradd --system --home /app agent \
    && chown -R agent /var/cache/agent-assist

USER agent
# 8080: WebSocket ingest (native, Twilio, AudioHook, audio fork), /metrics, /healthz;
# 8081: the agent panel, wall board and their API; 8082: WebRTC offers and the softphone page;
# 9092/9093: Asterisk AudioSocket (customer legs / agent legs, TCP)
EXPOSE 8080 8081 8082 9092 9093
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz')"
ENTRYPOINT ["agent-assist"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
