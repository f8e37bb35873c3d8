# One image for the four services and the worker (compose.yaml picks the command).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY servicekit servicekit
COPY kafka_integration kafka_integration
COPY materializer materializer
COPY customers customers
COPY orders orders
COPY security security
COPY notifications notifications
COPY console console
COPY infra/smtp_sink.py infra/smtp_sink.py
RUN pip install --no-cache-dir .
# Run as a user without privileges. The mount points exist here, owned by that user, so the
# named volumes compose mounts on them start with that owner (the private key's folder: 0700).
RUN useradd --system --uid 10001 --no-create-home app \
    && mkdir -p /keys /public-keys /state /mail \
    && chown app /keys /public-keys /state /mail \
    && chmod 0700 /keys
USER app
ENV HOST=0.0.0.0
