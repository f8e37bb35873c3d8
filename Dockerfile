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
COPY infra/smtp_sink.py infra/smtp_sink.py
RUN pip install --no-cache-dir .
ENV HOST=0.0.0.0
