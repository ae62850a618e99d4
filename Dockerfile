FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api api
COPY clarion clarion
COPY campaigns campaigns
COPY workers workers
COPY scheduler scheduler
COPY config config
COPY clicksend clicksend
COPY sandbox sandbox
RUN pip install --no-cache-dir .
ENTRYPOINT ["clarion"]
