"""deploy/kubernetes/: every manifest checked offline against the schemas its API server uses.

Built-in kinds are validated strictly (unknown fields are errors) against the Kubernetes
OpenAPI schemas that ``kubernetes-validate`` bundles, for the oldest Kubernetes z2jh supports
and the newest bundled. The ``PrometheusRule`` is validated against the prometheus-operator
CRD's models (``cloudcoil.models.prometheus_operator``, generated from the CRD): they ignore
unknown fields, so a field the model drops on a round trip is an error here. Then the pieces
are checked against each other: labels and selectors, ports, the store's path, the image's
user, the JupyterHub service settings, and the generated files against their sources.
(``promtool`` and ``hadolint`` run in tests/integration/test_kubernetes_deploy.py.)
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests import dockerfilekit
from tests.envkit import REPO

KUBERNETES = REPO / "deploy/kubernetes"
MANIFEST_FILES = sorted(
    path
    for folder in ("hub", "monitoring", "once")
    for path in (KUBERNETES / folder).glob("*.yaml")
)
COLLECTOR_DOCKERFILE = REPO / "deploy/container/Dockerfile"
SERVICE_NAME = "popularity-contest"
# z2jh's chart requires Kubernetes >= 1.32 (its Chart.yaml kubeVersion).
OLDEST_KUBERNETES = "1.32"

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="the test extra: pip install -e '.[test]'"
)


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in MANIFEST_FILES:
        for index, document in enumerate(yaml.safe_load_all(path.read_text("utf-8"))):
            found.append((f"{path.relative_to(KUBERNETES)}#{index}", document))
    return found


DOCUMENTS = documents()
BUILT_IN = [(where, d) for where, d in DOCUMENTS if d["kind"] != "PrometheusRule"]


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    (found,) = [
        d
        for _, d in DOCUMENTS
        if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    return found


def pod_spec(document: dict[str, Any]) -> dict[str, Any]:
    spec = document["spec"]
    if document["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    result: dict[str, Any] = spec["template"]["spec"]
    return result


def pod_labels(document: dict[str, Any]) -> dict[str, str]:
    spec = document["spec"]
    if document["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    labels: dict[str, str] = spec["template"]["metadata"]["labels"]
    return labels


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions In/NotIn/Exists)."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        if operator == "In" and labels.get(key) not in expression["values"]:
            return False
        if operator == "NotIn" and labels.get(key) in expression["values"]:
            return False
        if operator == "Exists" and key not in labels:
            return False
    return True


WORKLOADS = [(where, d) for where, d in DOCUMENTS if d["kind"] in {"Deployment", "CronJob", "Job"}]


# --- Every manifest: parses, validates ---------------------------------------------------------


def test_the_manifests_are_there() -> None:
    kinds = sorted(d["kind"] for _, d in DOCUMENTS)
    assert kinds == sorted(
        [
            "ConfigMap",
            "CronJob",
            "Deployment",
            "Job",
            "NetworkPolicy",
            "NetworkPolicy",
            "PersistentVolumeClaim",
            "PrometheusRule",
            "Service",
        ]
    )
    for where, document in DOCUMENTS:
        assert document["metadata"]["name"], where
        assert document["metadata"]["labels"]["app.kubernetes.io/name"] == SERVICE_NAME, where


@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, "latest"])
@pytest.mark.parametrize(("where", "document"), BUILT_IN, ids=[w for w, _ in BUILT_IN])
def test_built_in_kinds_validate_strictly(
    where: str, document: dict[str, Any], version: str
) -> None:
    if version == "latest":
        version = kubernetes_validate.utils.latest_version()
    kubernetes_validate.validate(document, version, strict=True)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "replicas"), "one"),  # wrong type
        (("spec", "template", "spec", "containers", 0, "securityContext", "readOnlyRoot"), True),
        (("spec", "strategy", "rollingUpdates"), {}),  # unknown field
    ],
)
def test_the_schema_check_catches_mistakes(path: tuple[Any, ...], value: object) -> None:
    broken = copy.deepcopy(one("Deployment"))
    target: Any = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, OLDEST_KUBERNETES, strict=True)


def prometheus_rule_model() -> Any:
    models = pytest.importorskip(
        "cloudcoil.models.prometheus_operator.v1", reason="the test extra: pip install -e '.[test]'"
    )
    return models.PrometheusRule


def round_trip(document: dict[str, Any]) -> dict[str, Any]:
    model = prometheus_rule_model().model_validate(document)
    dumped: dict[str, Any] = model.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


def test_prometheus_rule_validates_against_the_operator_crd_model() -> None:
    rule = one("PrometheusRule")
    assert round_trip(rule) == rule


@pytest.mark.parametrize(
    "mistake",
    [
        lambda rule: rule["spec"]["groups"][0]["rules"][0].update({"fro": "30m"}),  # unknown
        lambda rule: rule["spec"]["groups"][0]["rules"][0].update({"for": "30 minutes"}),
        lambda rule: rule["spec"].update({"group": rule["spec"].pop("groups")}),
    ],
)
def test_the_prometheus_rule_check_catches_mistakes(mistake: Any) -> None:
    rule = copy.deepcopy(one("PrometheusRule"))
    mistake(rule)
    try:
        result = round_trip(rule)
    except ValueError:  # pydantic's ValidationError
        return
    assert result != rule


# --- Generated from one source ----------------------------------------------------------------


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_manifests", KUBERNETES / "build_manifests.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_manifests_are_current() -> None:
    rendered = load_generator().render()
    assert sorted(rendered) == sorted((KUBERNETES / "monitoring").glob("*.yaml"))
    for path, text in rendered.items():
        assert path.read_text("utf-8") == text, "run python deploy/kubernetes/build_manifests.py"


def test_prometheus_rule_carries_the_alerts_file_for_kube_prometheus_stack() -> None:
    rule = one("PrometheusRule")
    alerts = yaml.safe_load((REPO / "deploy/prometheus/alerts.yaml").read_text("utf-8"))
    assert rule["spec"] == {"groups": alerts["groups"]}
    # kube-prometheus-stack's ruleSelector: the release label of the chart's release.
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["metadata"]["namespace"] == "monitoring"


def test_dashboard_config_map_is_the_dashboard_for_the_grafana_sidecar() -> None:
    config_map = one("ConfigMap", "popularity-contest-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = REPO / "deploy/grafana/popularity-contest.json"
    (key,) = config_map["data"]
    assert key == dashboard.name
    assert config_map["data"][key] == dashboard.read_text("utf-8")
    variables = {v["name"] for v in json.loads(config_map["data"][key])["templating"]["list"]}
    assert variables == {"PROMETHEUS_DS", "hub"}
    # `kubectl apply` keeps a copy in an annotation, limited to 256 KiB.
    assert len(json.dumps(config_map)) < 200 * 1024


# --- Security ---------------------------------------------------------------------------------


def image_user() -> int:
    (user,) = dockerfilekit.only(COLLECTOR_DOCKERFILE, "USER")
    uid, _, gid = user.partition(":")
    assert uid == gid
    return int(uid)


@pytest.mark.parametrize(("where", "document"), WORKLOADS, ids=[w for w, _ in WORKLOADS])
def test_pods_run_unprivileged_on_a_read_only_root(where: str, document: dict[str, Any]) -> None:
    spec = pod_spec(document)
    assert spec["automountServiceAccountToken"] is False
    pod_security = spec["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    # The image's user, which owns the store (also for the user image's `unused` Job).
    assert pod_security["runAsUser"] == pod_security["runAsGroup"] == image_user()
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in spec["containers"]:
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security.get("privileged", False) is False
        assert "memory" in container["resources"]["limits"]
        # Writable: the store's volume and /tmp, nothing else.
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert mounts == {"/data", "/tmp"}


def test_the_image_keeps_its_store_on_the_volume_the_manifests_mount() -> None:
    image_env = dockerfilekit.env(COLLECTOR_DOCKERFILE)
    store = image_env["PYTHON_POPCONTEST_SERVE_DB"]
    assert dockerfilekit.only(COLLECTOR_DOCKERFILE, "VOLUME") == [
        json.dumps([str(Path(store).parent)])
    ]
    claim = one("PersistentVolumeClaim")["metadata"]["name"]
    for where, document in WORKLOADS:
        spec = pod_spec(document)
        (container,) = spec["containers"]
        command = container.get("command", []) + container.get("args", [])
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        db = (
            command[command.index("--db") + 1]
            if "--db" in command
            else env["PYTHON_POPCONTEST_SERVE_DB"]
        )
        assert db == store, where
        volumes = {v["name"]: v for v in spec["volumes"]}
        (data,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/data"]
        assert volumes[data["name"]]["persistentVolumeClaim"]["claimName"] == claim, where


def test_pods_sharing_the_read_write_once_volume_run_beside_serve() -> None:
    assert one("PersistentVolumeClaim")["spec"]["accessModes"] == ["ReadWriteOnce"]
    serve = one("Deployment")
    assert serve["spec"]["replicas"] == 1
    assert serve["spec"]["strategy"] == {"type": "Recreate"}
    for kind in ("CronJob", "Job"):
        spec = pod_spec(one(kind))
        (term,) = spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert selects(term["labelSelector"], pod_labels(serve))


# --- serve as an externally managed JupyterHub service --------------------------------------------


@pytest.fixture(scope="module")
def z2jh_service() -> tuple[str, dict[str, Any], dict[str, Any]]:
    values = yaml.safe_load((KUBERNETES / "z2jh-service-values.yaml").read_text("utf-8"))
    assert set(values) == {"hub"}
    assert set(values["hub"]) == {"services", "loadRoles"}
    ((name, service),) = values["hub"]["services"].items()
    return name, service, values["hub"]["loadRoles"]


def serve_container() -> dict[str, Any]:
    (container,) = pod_spec(one("Deployment"))["containers"]
    return container


def serve_env() -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in serve_container()["env"]}


def test_serve_runs_without_statsd_on_the_service_port() -> None:
    container = serve_container()
    assert container["args"] == ["serve", "--no-statsd"]
    ((port,),) = [container["ports"]]
    http = serve_env()["PYTHON_POPCONTEST_SERVE_HTTP"]
    assert http == f"0.0.0.0:{port['containerPort']}"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    service = one("Service")
    assert service["spec"]["selector"] == {
        k: v for k, v in pod_labels(one("Deployment")).items() if k.startswith("app.kubernetes.io/")
    }
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] == port["name"]
    # Not scraped: its counts came from Prometheus.
    assert "annotations" not in service["metadata"]


def test_z2jh_service_points_at_the_service_and_the_deployment_has_its_settings(
    z2jh_service: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    name, service, roles = z2jh_service
    assert name == SERVICE_NAME
    # z2jh passes these keys to c.JupyterHub.services as they are, apiToken aside.
    assert set(service) <= {
        "url",
        "display",
        "info",
        "oauth_no_confirm",
        "oauth_client_allowed_scopes",
    }
    url = urlsplit(service["url"])
    kube_service = one("Service")
    (port,) = kube_service["spec"]["ports"]
    assert (url.scheme, url.hostname, url.port, url.path) == (
        "http",
        kube_service["metadata"]["name"],
        port["port"],
        "",
    )
    env = serve_env()
    prefix = f"/services/{name}/"
    assert env["JUPYTERHUB_SERVICE_NAME"] == name
    # z2jh generates the token and keeps it in its Secret `hub` under this key.
    assert env["JUPYTERHUB_API_TOKEN"] == {
        "secretKeyRef": {"name": "hub", "key": f"hub.services.{name}.apiToken"}
    }
    assert env["JUPYTERHUB_CLIENT_ID"] == f"service-{name}"
    assert env["JUPYTERHUB_SERVICE_PREFIX"] == prefix
    assert env["JUPYTERHUB_OAUTH_CALLBACK_URL"] == prefix + "oauth_callback"
    scope = f"access:services!service={name}"
    assert json.loads(env["JUPYTERHUB_OAUTH_ACCESS_SCOPES"]) == [scope]
    assert env["JUPYTERHUB_API_URL"] == "http://hub:8081/hub/api"
    assert env["JUPYTERHUB_BASE_URL"] == "/"
    (role,) = roles.values()
    assert role["scopes"] == [scope]
    assert set(role) <= {"description", "scopes", "users", "groups", "services"}


def test_the_deployment_settings_are_jupyterhubs_own_defaults_for_the_service(
    z2jh_service: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    services = pytest.importorskip("jupyterhub.services.service", reason="the hub extra")
    name, service, _ = z2jh_service
    hub_service = services.Service(name=name, url=service["url"], base_url="/")
    env = serve_env()
    assert env["JUPYTERHUB_CLIENT_ID"] == hub_service.oauth_client_id
    assert env["JUPYTERHUB_SERVICE_PREFIX"] == hub_service.prefix


# --- Network policies -----------------------------------------------------------------------------


def policy(name: str) -> dict[str, Any]:
    return one("NetworkPolicy", name)["spec"]


def test_serve_policy_admits_the_proxy_and_hub_and_reaches_the_hub_api() -> None:
    spec = policy("popularity-contest-serve")
    labels = pod_labels(one("Deployment"))
    assert selects(spec["podSelector"], labels)
    # z2jh's hub NetworkPolicy lets in pods with this label.
    assert labels["hub.jupyter.org/network-access-hub"] == "true"
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = spec["ingress"]
    sources = [peer["podSelector"]["matchLabels"] for peer in ingress["from"]]
    assert sources == [
        {"app": "jupyterhub", "component": "proxy"},
        {"app": "jupyterhub", "component": "hub"},
    ]
    assert ingress["ports"] == [{"port": serve_container()["ports"][0]["name"], "protocol": "TCP"}]
    api = urlsplit(serve_env()["JUPYTERHUB_API_URL"])
    hub_rule, dns = spec["egress"]
    assert hub_rule["to"] == [
        {"podSelector": {"matchLabels": {"app": "jupyterhub", "component": "hub"}}}
    ]
    assert hub_rule["ports"] == [{"port": api.port, "protocol": "TCP"}]
    assert dns == {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}


def test_archive_and_unused_may_reach_prometheus_and_nothing_else() -> None:
    spec = policy("popularity-contest-prometheus-readers")
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"] == []
    assert selects(spec["podSelector"], pod_labels(one("CronJob")))
    assert selects(spec["podSelector"], pod_labels(one("Job")))
    assert not selects(spec["podSelector"], pod_labels(one("Deployment")))
    prometheus_rule, dns = spec["egress"]
    (peer,) = prometheus_rule["to"]
    (container,) = pod_spec(one("CronJob"))["containers"]
    args = container["args"]
    sources = [args[i + 1] for i, arg in enumerate(args) if arg == "--source"]
    assert sources
    for source in sources:
        name, _, url = source.partition("=")
        assert name
        address = urlsplit(url)
        # <service>.<namespace>.svc: the namespace the policy lets the job reach.
        service_namespace = address.hostname.split(".")[1] if address.hostname else None
        assert peer["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": service_namespace
        }
        assert prometheus_rule["ports"] == [{"port": address.port, "protocol": "TCP"}]
    assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    assert dns == {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}


def test_archive_runs_daily_in_utc_one_at_a_time() -> None:
    cron = one("CronJob")["spec"]
    minute, hour, *rest = cron["schedule"].split()
    assert rest == ["*", "*", "*"]
    assert minute.isdigit()
    assert hour.isdigit()
    assert cron["timeZone"] == "Etc/UTC"
    assert cron["concurrencyPolicy"] == "Forbid"
    (container,) = pod_spec(one("CronJob"))["containers"]
    assert container["args"][0] == "archive"
    assert container["image"] == serve_container()["image"]


def test_commands_parse_with_the_cli() -> None:
    """The manifests' commands against the command's own parser: every one must parse."""
    from popularity_contest.commands.main import build_parser

    parser = build_parser()
    commands = {where: pod_spec(d)["containers"][0] for where, d in WORKLOADS}
    assert commands, "no workload found"
    refused = []
    for where, container in commands.items():
        argv = container.get("args") or container["command"][1:]
        try:
            parser.parse_args(argv)
        except SystemExit:
            refused.append(f"{where}: {' '.join(argv)}")
    assert not refused, "popularity-contest refuses: " + "; ".join(refused)


def test_flags_named_in_the_manifests_comments_exist() -> None:
    """A flag the Job's comments tell the operator to add must be one the command takes."""
    from popularity_contest.commands.main import build_parser

    (commands,) = [
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    unused = commands.choices["unused"]
    known = {flag for action in unused._actions for flag in action.option_strings}
    text = (KUBERNETES / "once" / "unused-job.yaml").read_text()
    named = set(re.findall(r"`(--[a-z-]+)[ `]", text))
    assert named, "the comments name no flag"
    assert named <= known, named - known
