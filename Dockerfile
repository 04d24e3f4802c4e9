# Tradewire's one image: `docker run tradewire web|worker|exchange|migrate|…`.
# Build stage: install the project and its dependencies into a venv with pip.
FROM python:3.11.13-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . .
RUN python -m venv /opt/tradewire \
    && /opt/tradewire/bin/pip install .

# Runtime stage: the venv only, run by an unprivileged user.
FROM python:3.11.13-slim-bookworm

RUN groupadd --system --gid 10001 tradewire \
    && useradd --system --uid 10001 --gid tradewire --create-home --home-dir /home/tradewire tradewire \
    && install -d -o tradewire -g tradewire -m 0700 /data
COPY --from=build /opt/tradewire /opt/tradewire

ENV PATH=/opt/tradewire/bin:$PATH \
    MALLOC_ARENA_MAX=2 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TRADEWIRE_STATE_DIR=/data
USER tradewire
WORKDIR /home/tradewire
VOLUME ["/data"]

ENTRYPOINT ["tradewire"]
CMD ["--help"]
