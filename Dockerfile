# One image for the gateway (`fpslink serve`) and mock_ibps (`mock-ibps serve`); they differ only by
# command. The `load` stage adds locust for the compose `locust` service. The default target is
# `runtime`:
#   docker build -t fpslink .
#   docker run --rm -p 127.0.0.1:8000:8000 fpslink fpslink sandbox --host 0.0.0.0
# Everything is installed at build time from wheels built in the first stage, at the versions
# requirements.lock pins (what CI tested); nothing is fetched when a container runs. The image holds
# no secret: FPSLINK_OPERATOR_KEY and FPSLINK_IBPS_TOKEN come from the environment (docker-compose.yml),
# and `fpslink sandbox` generates its own into /app/.fpslink.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS wheels
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md requirements.lock ./
COPY src ./src
COPY mock_ibps ./mock_ibps
COPY migrations ./migrations
# the lock travels with the wheels, so the stages below install under the same constraint
RUN pip wheel --wheel-dir /wheels --constraint requirements.lock ".[load]" \
    && cp requirements.lock /wheels/requirements.lock

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 fpslink \
    && useradd --system --uid 10001 --gid fpslink --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin fpslink \
    && install -d -o fpslink -g fpslink -m 0750 /app
# /app is the working directory and home: `fpslink sandbox` keeps its embedded PostgreSQL in /app/.fpslink.
WORKDIR /app

FROM base AS load
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels --constraint /wheels/requirements.lock "fpslink[load]"
COPY --chown=fpslink:fpslink loadtests ./loadtests
USER fpslink:fpslink
EXPOSE 8089
ENTRYPOINT ["locust"]
CMD ["-f", "loadtests/locustfile.py"]

FROM base AS runtime
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels --constraint /wheels/requirements.lock fpslink
USER fpslink:fpslink
EXPOSE 8000 8001
CMD ["fpslink", "serve", "--host", "0.0.0.0", "--port", "8000"]
