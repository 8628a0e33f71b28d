# lagwatch container image: `docker build -t lagwatch .`, then `docker run -p 7980:7980 lagwatch --bootstrap-servers ...`
# Two stages: the build stage makes a virtualenv from the locked dependency set; the final stage copies only it.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements.lock ./
RUN python -m venv /opt/lagwatch \
    && /opt/lagwatch/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: -r requirements.lock
COPY pyproject.toml README.md ./
# exporter/runbooks.md links to the runbooks in docs/; the package ships them for /runbooks.
COPY docs/runbooks.md ./docs/runbooks.md
COPY exporter ./exporter
RUN /opt/lagwatch/bin/pip install --no-cache-dir --no-deps . \
    && find /opt/lagwatch -name '__pycache__' -type d -prune -exec rm -rf {} +

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="lagwatch" \
      org.opencontainers.image.description="Burrow's Kafka consumer-lag evaluation as a Prometheus exporter" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/lagwatch/lagwatch" \
      org.opencontainers.image.licenses="Apache-2.0"
# /var/lib/lagwatch holds the HEAD history that makes lag in seconds available at once after a restart:
# mount a volume there to keep it across container replacements.
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin lagwatch \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/lagwatch
COPY --from=build /opt/lagwatch /opt/lagwatch
ENV PATH=/opt/lagwatch/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LAGWATCH_HTTP__LISTEN=0.0.0.0:7980 \
    LAGWATCH_LAG_SECONDS__STATE_DIR=/var/lib/lagwatch
USER 10001:10001
VOLUME ["/var/lib/lagwatch"]
EXPOSE 7980
# Plain HTTP on the default port; with TLS or basic auth in a web config, override the check in your runtime.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7980/-/healthy', timeout=4)"]
ENTRYPOINT ["lagwatch"]
CMD ["serve"]
