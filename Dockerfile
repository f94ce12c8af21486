# One image for the worker and the bridge (the command picks which).
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY dealflow ./dealflow
COPY workflows ./workflows
COPY activities ./activities
COPY bridge ./bridge
COPY stripe_sandbox ./stripe_sandbox
COPY devstack ./devstack
COPY demo ./demo
COPY truth ./truth
COPY chaos ./chaos
COPY repair ./repair
COPY worker.py starter.py ./
RUN pip install --no-cache-dir . && useradd --system --uid 10001 dealflow
USER dealflow
CMD ["dealflow", "worker"]
