"""docker-compose.yml and the Dockerfile, checked statically (Docker cannot run here)."""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from devstack.ports import setting_env_name
from settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
OWN = {name for name, svc in SERVICES.items() if "build" in svc}
ONE_SHOT = {name for name, svc in SERVICES.items() if svc.get("restart") == "no"}
LONG_RUNNING = set(SERVICES) - ONE_SHOT
SECRETISH = re.compile(r"PASSWORD|PWD|TOKEN|SECRET|API_KEY", re.IGNORECASE)
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def env_of(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment", {})
    assert isinstance(env, dict), f"{service}: write environment as a mapping"
    return {k: str(v) for k, v in env.items()}


def depends(service: str) -> dict[str, dict[str, Any]]:
    deps = SERVICES[service].get("depends_on", {})
    assert isinstance(deps, dict), f"{service}: depends_on needs conditions"
    return deps


def test_the_stack_has_every_service() -> None:
    assert set(SERVICES) == {
        "postgres",
        "temporal-schema",
        "temporal",
        "temporal-namespace",
        "temporal-ui",
        "migrate",
        "exchange",
        "webhook",
        "worker",
        "ui",
    }
    assert OWN == {"migrate", "exchange", "webhook", "worker", "ui"}
    assert ONE_SHOT == {"temporal-schema", "temporal-namespace", "migrate"}


@pytest.mark.parametrize("service", sorted(set(SERVICES) - OWN))
def test_third_party_images_are_pinned_to_a_version(service: str) -> None:
    image = SERVICES[service]["image"]
    name, _, tag = image.rpartition(":")
    assert name and tag and tag != "latest", image
    assert re.match(r"^\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?$", tag), f"{image}: pin an exact version"


def test_temporal_admin_tools_match_the_server_version() -> None:
    server = SERVICES["temporal"]["image"].rpartition(":")[2]
    for job in ("temporal-schema", "temporal-namespace"):
        assert SERVICES[job]["image"] == f"temporalio/admin-tools:{server}"


@pytest.mark.parametrize("service", sorted(OWN))
def test_own_services_run_the_project_image_with_a_tradewire_command(service: str) -> None:
    svc = SERVICES[service]
    assert svc["build"] == "." and svc["image"] == "tradewire:local"
    assert svc["command"][0] in {"web", "worker", "exchange", "migrate", "ui"}
    expected = {"webhook": "web"}.get(service, service)
    assert svc["command"] == [expected]


def test_only_the_paper_exchange_is_behind_a_profile() -> None:
    profiled = {name: svc["profiles"] for name, svc in SERVICES.items() if "profiles" in svc}
    assert profiled == {"exchange": ["paper"]}


@pytest.mark.parametrize("service", sorted(LONG_RUNNING))
def test_every_long_running_service_has_a_healthcheck(service: str) -> None:
    check = SERVICES[service].get("healthcheck")
    assert check and check["test"][0] in {"CMD", "CMD-SHELL"}, service
    assert SERVICES[service]["restart"] == "unless-stopped"


@pytest.mark.parametrize("service", sorted(OWN & LONG_RUNNING))
def test_own_healthchecks_ask_the_component_itself(service: str) -> None:
    component = SERVICES[service]["command"][0]
    test = SERVICES[service]["healthcheck"]["test"]
    assert test == ["CMD", "python", "-m", "devstack.healthcheck", component]


def test_dependencies_wait_for_health_or_success() -> None:
    for name in SERVICES:
        for target, dep in depends(name).items():
            assert target in SERVICES, f"{name} depends on unknown {target}"
            condition = dep["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{name} waits on {target}'s health"
            else:
                assert condition == "service_completed_successfully", (name, target)
                assert target in ONE_SHOT, f"{target} never completes"
            if "profiles" in SERVICES[target]:
                assert dep.get("required") is False, f"{name} must start without {target}"


@pytest.mark.parametrize("service", ["webhook", "worker", "ui"])
def test_the_apps_start_after_the_database_temporal_and_the_migration(service: str) -> None:
    deps = depends(service)
    assert deps["postgres"]["condition"] == "service_healthy"
    assert deps["temporal"]["condition"] == "service_healthy"
    assert deps["migrate"]["condition"] == "service_completed_successfully"


def test_migrate_runs_once_temporal_has_its_namespace_and_schema() -> None:
    assert depends("migrate")["temporal-namespace"]["condition"] == "service_completed_successfully"
    assert depends("temporal")["temporal-schema"]["condition"] == "service_completed_successfully"
    assert depends("temporal-schema")["postgres"]["condition"] == "service_healthy"


def test_published_ports_are_local_and_follow_the_settings() -> None:
    published = {name: svc["ports"] for name, svc in SERVICES.items() if "ports" in svc}
    assert published == {
        "temporal-ui": ["127.0.0.1:${TRADEWIRE_TEMPORAL_UI_PORT:-8233}:8080"],
        "webhook": ["127.0.0.1:${TRADEWIRE_WEBHOOK_PORT:-8000}:8000",
                    "127.0.0.1:${TRADEWIRE_METRICS_PORT:-9464}:9464"],
        "worker": ["127.0.0.1:9465:9465"],
        "ui": ["127.0.0.1:${TRADEWIRE_UI_PORT:-8300}:8300"],
    }
    assert env_of("ui")["TRADEWIRE_UI_PORT"] == "8300"
    assert env_of("ui")["TRADEWIRE_UI_HOST"] == "0.0.0.0"  # inside; the host's loopback outside
    # /metrics: every address inside the container, the host's loopback outside.
    for name in ("webhook", "worker"):
        assert env_of(name)["TRADEWIRE_METRICS_PORT"] == "9464"
        assert env_of(name)["TRADEWIRE_METRICS_HOST"] == "0.0.0.0"
    assert env_of("webhook")["TRADEWIRE_WEBHOOK_PORT"] == "8000"
    assert env_of("webhook")["TRADEWIRE_HOST"] == "0.0.0.0"
    assert env_of("exchange")["TRADEWIRE_EXCHANGE_PORT"] == "8100"
    assert env_of("exchange")["TRADEWIRE_PAPER_HOST"] == "0.0.0.0"
    assert "TRADEWIRE_HOST" not in env_of("exchange")
    assert env_of("webhook")["TRADEWIRE_EXCHANGE_BASE_URL"].endswith(":-http://exchange:8100}")


def test_no_secret_has_a_default() -> None:
    for match in INTERPOLATION.finditer(COMPOSE_TEXT):
        name, operator, default = match.groups()
        if SECRETISH.search(name):
            assert operator in (":?", "?") or (operator in (":-", "-") and default == ""), (
                f"{match.group(0)}: a secret must be required (:?) or empty by default"
            )
    for service in SERVICES:
        for key, value in env_of(service).items():
            if SECRETISH.search(key) and value:
                assert value.startswith("${") and value.endswith("}"), f"{service}: {key} literal"


def test_the_admin_token_and_database_password_are_required() -> None:
    assert "${TRADEWIRE_ADMIN_TOKEN:?" in COMPOSE_TEXT
    assert "${POSTGRES_PASSWORD:?" in COMPOSE_TEXT


def test_every_tradewire_variable_is_a_real_setting() -> None:
    known = {setting_env_name(field) for field in Settings.model_fields}
    used = {m.group(1) for m in INTERPOLATION.finditer(COMPOSE_TEXT)}
    for service in SERVICES:
        used |= set(env_of(service))
    unknown = sorted(name for name in used if name.startswith("TRADEWIRE_") and name not in known)
    assert unknown == []


def test_temporal_allows_eager_start_and_postgres_holds_its_databases() -> None:
    dynamic = yaml.safe_load(COMPOSE["configs"]["temporal-dynamic-config"]["content"])
    assert dynamic["system.enableEagerWorkflowStart"][0]["value"] is True
    target = SERVICES["temporal"]["configs"][0]["target"]
    assert target.endswith(env_of("temporal")["DYNAMIC_CONFIG_FILE_PATH"])
    init = COMPOSE["configs"]["postgres-init"]["content"]
    schema_job = SERVICES["temporal-schema"]["command"][0]
    for database in ("temporal", "temporal_visibility"):
        assert f"CREATE DATABASE {database};" in init
        assert f"--db {database} setup-schema" in schema_job
        assert f"--db {database} update-schema" in schema_job


def test_the_app_and_temporal_share_one_database_login() -> None:
    url = env_of("migrate")["TRADEWIRE_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://tradewire:${POSTGRES_PASSWORD:?")
    assert url.endswith("@postgres:5432/tradewire")
    assert env_of("postgres")["POSTGRES_USER"] == env_of("temporal")["POSTGRES_USER"]


# --- the image ----------------------------------------------------------------------------------

DOCKERFILE = (ROOT / "Dockerfile").read_text()
DOCKERIGNORE = (ROOT / ".dockerignore").read_text().split()


def test_the_image_is_python_311_slim_installed_with_pip_and_runs_tradewire() -> None:
    bases = re.findall(r"^FROM (\S+)", DOCKERFILE, re.MULTILINE)
    assert bases and all(re.match(r"python:3\.11(\.\d+)?-slim", base) for base in bases)
    assert "pip install ." in DOCKERFILE
    assert 'ENTRYPOINT ["tradewire"]' in DOCKERFILE


def test_the_image_runs_as_an_unprivileged_user() -> None:
    users = re.findall(r"^USER (\S+)", DOCKERFILE, re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}


def test_local_state_and_secrets_stay_out_of_the_build_context() -> None:
    for entry in (".env", ".venv", ".git", ".tradewire", "tests"):
        assert entry in DOCKERIGNORE
    for needed in ("README.md", "pyproject.toml"):
        assert needed not in DOCKERIGNORE  # `pip install .` reads both


def test_temporal_is_reachable_only_on_its_internal_network() -> None:
    """Review D2: Temporal's gRPC port gives full control of trading. No port of it is
    published, its network has no route out, and only what talks to Temporal joins it."""
    assert "ports" not in SERVICES["temporal"]
    assert COMPOSE["networks"]["temporal"] == {"internal": True}
    members = {name for name, svc in SERVICES.items() if "temporal" in svc.get("networks", [])}
    # The dashboard signals the kill switch's cancels and starts incident answers (ui/actions.py).
    assert members == {"temporal", "temporal-namespace", "temporal-ui", "migrate", "webhook",
                       "worker", "postgres", "ui"}
    assert SERVICES["temporal"]["networks"] == ["temporal"]  # the paper exchange cannot reach it
    assert env_of("temporal-ui")["TEMPORAL_DISABLE_WRITE_ACTIONS"] == "true"


# --- first start: one server key, the request budget split, pairs synced (issue 22) ------------

SERVER_KEY = re.compile(r"^\$\{TRADEWIRE_SECRET_KEY:\?[^}]+\}$")
KEY_HOLDERS = {
    name for name in OWN if env_of(name).get("TRADEWIRE_BITUNIX_API_KEY", "") != ""
}


def budget_share(service: str) -> Decimal:
    """The service's TRADEWIRE_EXCHANGE_BUDGET_SHARE: a literal, so the shares can be summed
    (unset: the setting's default, the whole budget)."""
    raw = env_of(service).get("TRADEWIRE_EXCHANGE_BUDGET_SHARE")
    if raw is None:
        return Settings.model_fields["exchange_budget_share"].default
    assert "$" not in raw, f"{service}: the budget share must be a literal, not {raw}"
    return Decimal(raw)


@pytest.mark.parametrize("service", ["migrate", "webhook", "worker"])
def test_the_server_key_is_required_and_the_same_for_every_app(service: str) -> None:
    """A strategy added by `docker compose run|exec … strategy add` hashes its secret under the
    key the webhook verifies with; a key generated per container would answer every alert 401."""
    assert SERVER_KEY.match(env_of(service)["TRADEWIRE_SECRET_KEY"]), env_of(service)
    assert env_of(service)["TRADEWIRE_SECRET_KEY"] == env_of("webhook")["TRADEWIRE_SECRET_KEY"]


def test_the_paper_exchange_holds_no_key() -> None:
    env = env_of("exchange")
    for key in ("TRADEWIRE_BITUNIX_API_KEY", "TRADEWIRE_BITUNIX_API_SECRET", "TRADEWIRE_SECRET_KEY"):
        assert env[key] == "", key


def test_the_processes_holding_exchange_keys_stay_within_the_account_budget() -> None:
    """BitUnix's limits are per account: the long-running processes that hold the keys (and
    run at once) take shares of it that sum to at most the whole; a one-shot that holds them
    runs to completion before any of those starts, so it may use it all."""
    assert KEY_HOLDERS == {"worker"}  # migrate's pair sync is a public read
    for name in KEY_HOLDERS:
        assert Decimal(0) < budget_share(name) <= Decimal(1), name
    running = KEY_HOLDERS & LONG_RUNNING
    assert running == {"worker"}
    assert sum(budget_share(name) for name in running) <= Decimal(1)
    for job in KEY_HOLDERS & ONE_SHOT:
        for name in running:
            assert depends(name)[job]["condition"] == "service_completed_successfully", (job, name)


def test_migrate_syncs_the_pairs_once_the_exchange_answers() -> None:
    """`tradewire migrate` syncs the pairs: with the paper profile it waits for the simulator;
    it reaches a live exchange over the default network (the temporal one has no route out)."""
    dep = depends("migrate")["exchange"]
    assert dep == {"condition": "service_healthy", "required": False}
    assert "default" in SERVICES["migrate"]["networks"]
    assert SERVICES["migrate"]["command"] == ["migrate"]  # no --skip-pairs


def test_the_pair_sync_interval_is_configurable_with_the_default_of_the_setting() -> None:
    value = env_of("worker")["TRADEWIRE_PAIRS_SYNC_INTERVAL_S"]
    default = Settings.model_fields["pairs_sync_interval_s"].default
    assert value == f"${{TRADEWIRE_PAIRS_SYNC_INTERVAL_S:-{default}}}"


# --- the Compose Specification ---------------------------------------------------------------------

SCHEMA = json.loads((ROOT / "tests" / "fixtures" / "compose-spec.json").read_text())
# What `docker compose` would read from `.env` for the interpolated check: every required one.
SAMPLE_ENV = {"POSTGRES_PASSWORD": "ab12", "TRADEWIRE_ADMIN_TOKEN": "cd34",
              "TRADEWIRE_SECRET_KEY": "ef56"}


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution, enough for this file: ${X}, ${X:-d}, ${X:?e}, $$."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, operator, rest = match.groups()
        if name in env and (env[name] or operator not in (":-", ":?")):
            return env[name]
        if operator in (":-", "-"):
            return interpolate(rest, env)
        raise AssertionError(f"{match.group(0)}: compose refuses to start without {name}")

    text = value.replace("$$", "\0")
    previous = None
    while previous != text:  # nested defaults: ${A:-http://x:${B:-1}}
        previous, text = text, INTERPOLATION.sub(one, text)
    return text.replace("\0", "$")


def schema_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema_rs.validator_for(SCHEMA)
    return [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(document)]


def test_the_compose_file_follows_the_compose_specification() -> None:
    assert schema_errors(COMPOSE) == []
    assert schema_errors(interpolate(COMPOSE, SAMPLE_ENV)) == []


def test_a_required_secret_missing_stops_compose() -> None:
    for name in SAMPLE_ENV:
        env = {k: v for k, v in SAMPLE_ENV.items() if k != name}
        with pytest.raises(AssertionError, match=name):
            interpolate(COMPOSE, env)


def test_the_schema_check_catches_a_mistake() -> None:
    """The vendored schema is strict enough to matter: a misspelt key or a condition compose
    does not know fails it."""
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["worker"]["enviroment"] = {}
    broken["services"]["webhook"]["depends_on"]["migrate"]["condition"] = "service_completed"
    errors = schema_errors(broken)
    assert any("enviroment" in e for e in errors), errors
    assert any("service_completed" in e for e in errors), errors


def test_the_internet_facing_webhook_holds_no_exchange_keys() -> None:
    """Off the fast path (the default) the webhook places no order: it gets no keys, and its
    public health read takes a small share of the budget."""
    env = env_of("webhook")
    assert env["TRADEWIRE_FAST_PATH"] == "false"
    assert env["TRADEWIRE_BITUNIX_API_KEY"] == env["TRADEWIRE_BITUNIX_API_SECRET"] == ""
    assert budget_share("webhook") < Decimal(1)


def test_every_setting_of_dot_env_reaches_the_apps() -> None:
    """Compose reads `.env` only to fill in `${…}`: without `env_file` a TRADEWIRE_RISK_* limit
    (or any setting not listed in the compose file) would silently not apply."""
    for name in OWN:
        files = SERVICES[name].get("env_file")
        assert files == [{"path": ".env", "required": False}], (name, files)


def test_the_dashboard_holds_the_admin_token_and_nothing_that_trades() -> None:
    env = env_of("ui")
    assert "${TRADEWIRE_ADMIN_TOKEN:?" in env["TRADEWIRE_ADMIN_TOKEN"]
    for key in ("TRADEWIRE_SECRET_KEY", "TRADEWIRE_BITUNIX_API_KEY", "TRADEWIRE_BITUNIX_API_SECRET"):
        assert env[key] == "", key


def test_receiver_secrets_stay_with_the_worker() -> None:
    for name in OWN - {"worker"}:
        for key in ("TRADEWIRE_NOTIFY_WEBHOOK_SECRET", "TRADEWIRE_TELEGRAM_BOT_TOKEN"):
            assert env_of(name)[key] == "", (name, key)
