"""deploy/: every file parses, and each is checked against what its consumer documents.

Neither Helm nor Grafana runs here, so their inputs are checked against the keys the
prometheus-statsd-exporter chart (1.x, values.yaml) and Grafana's provisioning documentation
define, kept as data below. The mapping rules are checked through the collector's own loader
against every name the reporter can produce.
"""

from __future__ import annotations

import json
import os
import re
import types
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from popularity_contest import activation as install
from popularity_contest import names
from popularity_contest.collector.mapping import Mapper
from popularity_contest.inprocess import lines as wire
from popularity_contest.inprocess import settings as config

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
MAPPING = DEPLOY / "statsd-mapping.yaml"
IMPORTED = "python_popcon_imported_package_total"
USER_IMPORTED = "python_popcon_user_imported_package_total"
PROCESSES = "python_popcon_processes_reported_total"
CHECK = "python_popcon_check_total"
LIBRARY = "python_popcon_library_used_total"

YAML_FILES = sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yaml", ".yml"} and p.is_file())


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text("utf-8"))


@pytest.fixture(scope="module")
def mapper() -> Mapper:
    return Mapper.load(MAPPING)


def mapped(mapper: Mapper, name: str) -> tuple[str, dict[str, str]] | None:
    result = mapper.map(name, "c")
    return None if result is None else (result.name, result.labels)


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses_to_a_mapping(path: Path) -> None:
    assert isinstance(load_yaml(path), dict)


def test_the_dashboard_is_json_and_matches_its_generator() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "build_dashboard", DEPLOY / "grafana/build_dashboard.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (DEPLOY / "grafana/popularity-contest.json").read_text("utf-8")
    json.loads(committed)
    assert committed == module.render(), "run python deploy/grafana/build_dashboard.py"


def test_the_package_ships_the_deploy_mapping_file() -> None:
    packaged = REPO / "popularity_contest/collector/statsd-mapping.yaml"
    assert packaged.resolve() == MAPPING.resolve()
    assert len(Mapper.load(None).rules) == len(Mapper.load(MAPPING).rules)


# --- The mapping: every name the reporter sends --------------------------------------------

# Package names the reporter can send: Python identifiers, any case, digits, underscores.
PACKAGES = ["numpy", "PIL", "Cython", "_", "x", "yaml", "ruamel", "a" * 100, "Ab_9", "sklearn"]
# Hub namespaces: Kubernetes namespaces (DNS labels), or anything wire-safe.
NAMESPACES = ["jhub", "prod-hub", "a", "hub-2024", "UPPER_case", "x" * 63]
# PEP 503 names as the reporter sends them with PYTHON_POPCONTEST_COUNT_DISTRIBUTIONS.
DISTRIBUTIONS = ["scikit-learn", "zope-interface", "pyyaml", "ruamel-yaml-clib", "a"]


def hub_prefix(namespace: str) -> str:
    return f"python_popcon.hub.{namespace}.imported_package"


def expected_names(prefix: str) -> list[tuple[str, str, dict[str, str]]]:
    """(statsd name, metric, labels minus namespace) for everything a reporter sends."""
    rows = []
    for package in PACKAGES:
        rows.append((f"{prefix}.{package}", IMPORTED, {"package": package}))
        user = wire.sibling(prefix, names.LEAF_USER_IMPORTED_PACKAGE)
        rows.append((f"{user}.{package}", USER_IMPORTED, {"package": package}))
    for dist in DISTRIBUTIONS:
        library = wire.sibling(prefix, names.LEAF_LIBRARY_USED)
        rows.append((f"{library}.{dist}", LIBRARY, {"distribution": dist}))
    rows.append((wire.sibling(prefix, names.LEAF_PROCESSES_REPORTED), PROCESSES, {}))
    # `popularity-contest check`'s test counter: mapped, so it never counts as unmapped.
    rows.append((wire.sibling(prefix, "check"), CHECK, {}))
    return rows


@pytest.mark.parametrize("namespace", ["", *NAMESPACES])
def test_every_name_the_reporter_sends_maps_to_its_metric_and_labels(
    mapper: Mapper, namespace: str
) -> None:
    prefix = hub_prefix(namespace) if namespace else config.DEFAULT_PREFIX
    for name, metric, labels in expected_names(prefix):
        assert all(wire.is_safe_component(part) for part in name.split("."))
        assert mapped(mapper, name) == (metric, {"namespace": namespace, **labels}), name


@given(
    namespace=st.from_regex(r"[A-Za-z0-9_-]{1,63}", fullmatch=True),
    package=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,99}", fullmatch=True),
)
def test_any_hub_and_package_map_exactly(namespace: str, package: str) -> None:
    mapper = Mapper.load(MAPPING)
    name = f"{hub_prefix(namespace)}.{package}"
    assert mapped(mapper, name) == (IMPORTED, {"namespace": namespace, "package": package})


def test_each_metric_keeps_one_label_set_across_rules(mapper: Mapper) -> None:
    label_sets: dict[str, set[frozenset[str]]] = {}
    for rule in mapper.rules:
        assert rule.action == "map"
        assert rule.name.endswith("_total")
        label_sets.setdefault(rule.name, set()).add(frozenset(rule.labels))
    assert label_sets == {
        IMPORTED: {frozenset({"namespace", "package"})},
        USER_IMPORTED: {frozenset({"namespace", "package"})},
        PROCESSES: {frozenset({"namespace"})},
        LIBRARY: {frozenset({"namespace", "distribution"})},
        CHECK: {frozenset({"namespace"})},
        names.DIRECTLY_IMPORTED_PACKAGE: {frozenset({"namespace", "package"})},
        names.DIRECTLY_IMPORTED_USER_PACKAGE: {frozenset({"namespace", "package"})},
    }


@pytest.mark.parametrize(
    ("name", "metric", "labels"),
    [
        # popularity-contest 0.4.x, default prefix `python_popcon`.
        ("python_popcon.library_used.numpy", LIBRARY, {"distribution": "numpy"}),
        ("python_popcon.library_used.scikit-learn", LIBRARY, {"distribution": "scikit-learn"}),
        ("python_popcon.library_used.PyYAML", LIBRARY, {"distribution": "PyYAML"}),
        ("python_popcon.library_used.zope.interface", LIBRARY, {"distribution": "zope.interface"}),
        (
            "python_popcon.library_used.ruamel.yaml.clib",
            LIBRARY,
            {"distribution": "ruamel.yaml.clib"},
        ),
        ("python_popcon.reports", PROCESSES, {}),
        # 0.4.x with the per-hub prefix python_popcon.namespace.<ns>.
        (
            "python_popcon.namespace.jhub.library_used.pandas",
            LIBRARY,
            {"namespace": "jhub", "distribution": "pandas"},
        ),
        (
            "python_popcon.namespace.jhub.library_used.ruamel.yaml",
            LIBRARY,
            {"namespace": "jhub", "distribution": "ruamel.yaml"},
        ),
        ("python_popcon.namespace.jhub.reports", PROCESSES, {"namespace": "jhub"}),
        # 0.4.x with the prefix its README gave, python_popcon.namespace.<ns>.library_used.
        (
            "python_popcon.namespace.jhub.library_used.library_used.pandas",
            LIBRARY,
            {"namespace": "jhub", "distribution": "pandas"},
        ),
        (
            "python_popcon.namespace.jhub.library_used.library_used.zope.interface",
            LIBRARY,
            {"namespace": "jhub", "distribution": "zope.interface"},
        ),
        ("python_popcon.namespace.jhub.library_used.reports", PROCESSES, {"namespace": "jhub"}),
    ],
)
def test_names_from_0_4_keep_their_history(
    mapper: Mapper, name: str, metric: str, labels: dict[str, str]
) -> None:
    assert mapped(mapper, name) == (metric, {"namespace": "", **labels})


@pytest.mark.parametrize(
    "name",
    [
        "python_popcon.imported_package",
        "python_popcon.imported_package.numpy.core",
        "python_popcon.hub.jhub.imported_package",
        "python_popcon.hub.jhub.imported_package.a.b",
        "python_popcon.hub.imported_package.numpy",
        "other_app.requests",
    ],
)
def test_names_outside_the_scheme_stay_unmapped(mapper: Mapper, name: str) -> None:
    assert mapped(mapper, name) is None


# --- Helm values ----------------------------------------------------------------------------

# prometheus-community/helm-charts, charts/prometheus-statsd-exporter/values.yaml (chart 1.0.0,
# statsd_exporter v0.28.0): every key path the chart reads.
CHART_KEYS: dict[str, Any] = {
    "replicaCount": int,
    "deploymentRevisionHistoryLimit": int,
    "image": {"repository": str, "pullPolicy": str, "tag": str},
    "imagePullSecrets": list,
    "nameOverride": str,
    "fullnameOverride": str,
    "extraEnv": dict,
    "extraArgs": list,
    "statsd": {
        "udpPort": int,
        "tcpPort": int,
        "cacheSize": int,
        "eventQueueSize": int,
        "eventFlushThreshold": int,
        "eventFlushInterval": str,
        "mappingConfigMapName": str,
        "mappingConfigMapKey": str,
        "mappingConfig": str,
    },
    "livenessProbe": dict,
    "readinessProbe": dict,
    "prometheus": {"monitor": dict},
    "serviceMonitor": {
        "enabled": bool,
        "interval": str,
        "scrapeTimeout": str,
        "namespace": str,
        "honorLabels": bool,
        "additionalLabels": dict,
        "kind": str,
        "metricRelabelings": list,
        "relabelings": list,
        "apiVersion": str,
        "endpoint": str,
    },
    "serviceAccount": {"create": bool, "annotations": dict, "name": str},
    "podAnnotations": dict,
    "podLabels": dict,
    "podSecurityContext": dict,
    "securityContext": dict,
    "service": {"type": str, "port": int, "path": str, "annotations": dict},
    "ingress": dict,
    "resources": dict,
    "autoscaling": dict,
    "lifecycle": dict,
    "nodeSelector": dict,
    "tolerations": list,
    "affinity": dict,
    "topologySpreadConstraints": list,
}


def check_against_schema(values: dict[str, Any], schema: dict[str, Any], where: str) -> None:
    for key, value in values.items():
        assert key in schema, f"{where}{key} is not a key of the chart"
        expected = schema[key]
        if isinstance(expected, dict):
            assert isinstance(value, dict), f"{where}{key} must be a mapping"
            check_against_schema(value, expected, f"{where}{key}.")
        else:
            assert isinstance(value, expected), f"{where}{key} must be {expected.__name__}"


@pytest.fixture(scope="module")
def helm_values() -> dict[str, Any]:
    values: dict[str, Any] = load_yaml(DEPLOY / "helm/prometheus-statsd-exporter-values.yaml")
    return values


def test_helm_values_use_only_keys_the_chart_reads(helm_values: dict[str, Any]) -> None:
    check_against_schema(helm_values, CHART_KEYS, "")


def test_helm_mapping_config_is_the_mapping_file(helm_values: dict[str, Any]) -> None:
    embedded = helm_values["statsd"]["mappingConfig"]
    assert yaml.safe_load(embedded) == load_yaml(MAPPING)
    # ... and loads as rules in its own right.
    assert len(Mapper.from_yaml(embedded, "helm values").rules) == len(Mapper.load(MAPPING).rules)


def test_helm_values_expose_statsd_udp_and_keep_the_hub_label(
    helm_values: dict[str, Any],
) -> None:
    z2jh = load_yaml(DEPLOY / "z2jh/config.yaml")
    port = helm_values["statsd"]["udpPort"]
    assert str(port) == z2jh["singleuser"]["extraEnv"]["PYTHON_POPCONTEST_STATSD_PORT"]
    annotations = helm_values["service"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(helm_values["service"]["port"])
    # The operator's `namespace` target label would otherwise replace the hub's.
    assert helm_values["serviceMonitor"]["honorLabels"] is True
    assert helm_values["replicaCount"] == 1


# --- zero-to-jupyterhub -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def z2jh() -> dict[str, Any]:
    values: dict[str, Any] = load_yaml(DEPLOY / "z2jh/config.yaml")
    return values


def run_extra_config(z2jh: dict[str, Any], c: object, namespace: str) -> None:
    source = z2jh["hub"]["extraConfig"]["popularity-contest"]
    code = compile(source, "hub.extraConfig.popularity-contest", "exec")
    saved = dict(os.environ)
    os.environ["POD_NAMESPACE"] = namespace
    try:
        exec(code, {"c": c})  # noqa: S102 (that is what z2jh does with it)
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.parametrize("namespace", ["jhub", "prod-hub-2"])
def test_z2jh_extra_config_puts_the_namespace_into_a_mapped_prefix(
    z2jh: dict[str, Any], mapper: Mapper, namespace: str
) -> None:
    # z2jh runs extraConfig after copying singleuser.extraEnv into KubeSpawner.environment.
    extra_env = dict(z2jh["singleuser"]["extraEnv"])
    c = types.SimpleNamespace(KubeSpawner=types.SimpleNamespace(environment=dict(extra_env)))
    run_extra_config(z2jh, c, namespace)
    environment = c.KubeSpawner.environment
    assert environment == {
        **extra_env,
        "PYTHON_POPCONTEST_STATSD_PREFIX": f"python_popcon.hub.{namespace}.imported_package",
    }
    reporter = config.reporter_config(environment)
    assert reporter.problem is None
    assert (reporter.port, reporter.prefix) == (9125, environment[config.PREFIX])
    assert mapped(mapper, f"{reporter.prefix}.numpy") == (
        IMPORTED,
        {"namespace": namespace, "package": "numpy"},
    )


def test_z2jh_extra_config_works_on_a_real_traitlets_config(z2jh: dict[str, Any]) -> None:
    traitlets_config = pytest.importorskip("traitlets.config")
    for preset in ({}, {"OTHER": "1"}):
        c = traitlets_config.Config()
        if preset:
            c.KubeSpawner.environment = dict(preset)
        run_extra_config(z2jh, c, "jhub")
        environment = c.KubeSpawner.environment
        if not isinstance(environment, dict):  # a LazyConfigValue merges into the trait
            environment = environment.get_value({})
        assert environment == {
            **preset,
            "PYTHON_POPCONTEST_STATSD_PREFIX": "python_popcon.hub.jhub.imported_package",
        }


def test_z2jh_network_policy_lets_user_pods_reach_the_exporter(
    z2jh: dict[str, Any], helm_values: dict[str, Any]
) -> None:
    (rule,) = z2jh["singleuser"]["networkPolicy"]["egress"]
    assert rule["ports"] == [{"port": helm_values["statsd"]["udpPort"], "protocol": "UDP"}]
    (peer,) = rule["to"]
    assert set(peer) == {"namespaceSelector", "podSelector"}
    # The chart's selector labels (release popcon-statsd), as the Service's host name says.
    labels = peer["podSelector"]["matchLabels"]
    assert labels["app.kubernetes.io/name"] == "prometheus-statsd-exporter"
    host = z2jh["singleuser"]["extraEnv"]["PYTHON_POPCONTEST_STATSD_HOST"]
    service, namespace = host.split(".")[:2]
    assert service == f"{labels['app.kubernetes.io/instance']}-prometheus-statsd-exporter"
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": namespace}
    assert helm_values["serviceMonitor"]["namespace"] == namespace


def test_z2jh_extra_files_alternative_is_the_installed_startup_file() -> None:
    text = (DEPLOY / "z2jh/config.yaml").read_text("utf-8")
    block = text[text.index("  # extraFiles:") :]
    uncommented = "\n".join(line.replace("# ", "", 1) for line in block.splitlines())
    files = yaml.safe_load(uncommented)["extraFiles"]
    (entry,) = files.values()
    assert entry["mountPath"].endswith(f"/etc/ipython/startup/{install.STARTUP_NAME}")
    code = compile(entry["stringData"], "startup", "exec")
    assert "popularity_contest.reporter" in code.co_consts
    # It must never raise, like the file `popularity-contest install ipython` writes.
    assert "except Exception:" in entry["stringData"]


def test_dockerfile_installs_the_package_and_the_ipython_startup_file() -> None:
    text = (DEPLOY / "z2jh/Dockerfile").read_text("utf-8")
    run = re.search(r"^RUN (.*?)(?<!\\)$", text, re.MULTILINE | re.DOTALL)
    assert run is not None
    commands = [c.strip() for c in run.group(1).replace("\\\n", " ").split("&&")]
    # The checkout's wheel (from the bind-mounted dist/), never 0.4.1 from PyPI by name;
    # tests/integration/test_container_steps.py runs these lines.
    assert commands[0].split()[:3] == [
        "--mount=type=bind,source=dist,target=/tmp/dist",
        "set",
        "--",
    ]
    assert commands[2] == 'python -m pip install --no-cache-dir "$1"'
    assert commands[3] == "popularity-contest install ipython"


# --- Grafana ------------------------------------------------------------------------------------

# Grafana's provisioning documentation: the keys of a data source and of a dashboard provider.
DATASOURCE_KEYS = {
    "name", "type", "access", "orgId", "uid", "url", "user", "database", "basicAuth",
    "basicAuthUser", "withCredentials", "isDefault", "jsonData", "secureJsonData", "version",
    "editable",
}  # fmt: skip
PROVIDER_KEYS = {
    "name", "orgId", "folder", "folderUid", "type", "disableDeletion", "updateIntervalSeconds",
    "allowUiUpdates", "options",
}  # fmt: skip
PROVIDER_OPTION_KEYS = {"path", "foldersFromFilesStructure"}


def test_grafana_datasource_provisioning_file() -> None:
    document = load_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yaml")
    assert set(document) <= {"apiVersion", "datasources", "deleteDatasources", "prune"}
    assert document["apiVersion"] == 1
    (source,) = document["datasources"]
    assert set(source) <= DATASOURCE_KEYS
    assert source["type"] == "prometheus"
    assert source["access"] in {"proxy", "direct"}
    assert source["url"].startswith("http")


def test_grafana_dashboard_provider_file() -> None:
    document = load_yaml(DEPLOY / "grafana/provisioning/dashboards/popularity-contest.yaml")
    assert set(document) == {"apiVersion", "providers"}
    assert document["apiVersion"] == 1
    (provider,) = document["providers"]
    assert set(provider) <= PROVIDER_KEYS
    assert provider["type"] == "file"
    assert set(provider["options"]) <= PROVIDER_OPTION_KEYS
    assert provider["options"]["path"].startswith("/")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (DEPLOY / "grafana/popularity-contest.json").read_text("utf-8")
    )
    return document


def test_dashboard_has_no_hard_coded_datasource(dashboard: dict[str, Any]) -> None:
    text = json.dumps(dashboard)
    uids = set(re.findall(r'"uid": "([^"]*)"', text)) - {dashboard["uid"]}
    assert uids == {"${PROMETHEUS_DS}"}
    assert "__inputs" not in dashboard
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${PROMETHEUS_DS}"}
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]


def test_dashboard_variables(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    # The names of jupyterhub/grafana-dashboards' variables, so links between them work.
    assert set(variables) == {"PROMETHEUS_DS", "hub"}
    assert variables["PROMETHEUS_DS"]["type"] == "datasource"
    assert variables["PROMETHEUS_DS"]["query"] == "prometheus"
    hub = variables["hub"]
    assert hub["type"] == "query"
    assert hub["multi"] is True
    assert hub["includeAll"] is True
    assert hub["allValue"] == ".*"  # also matches the empty namespace of a single machine
    assert hub["query"]["query"] == f"label_values({PROCESSES}, namespace)"


def test_dashboard_panels_and_their_queries(dashboard: dict[str, Any]) -> None:
    titles = [panel["title"] for panel in dashboard["panels"]]
    assert len(set(titles)) == len(titles)
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(titles)
    for panel in dashboard["panels"]:
        (target,) = panel["targets"]
        expr = target["expr"]
        assert expr.count("(") == expr.count(")")
        assert 'namespace=~"$hub"' in expr
        assert "increase(" not in expr  # it misses the first count of a new series
        window = "$__range" if target["instant"] else "$__interval"
        assert window in expr
        assert panel["type"] == ("table" if target["instant"] else "timeseries")


def test_direct_imports_table_sits_next_to_top_packages(dashboard: dict[str, Any]) -> None:
    grid = {panel["title"]: panel["gridPos"] for panel in dashboard["panels"]}
    top, direct = grid["Top packages"], grid["Direct imports"]
    assert (direct["y"], direct["h"]) == (top["y"], top["h"])
    assert direct["x"] == top["x"] + top["w"]
    # No two panels overlap.
    cells = [
        (x, y)
        for g in grid.values()
        for x in range(g["x"], g["x"] + g["w"])
        for y in range(g["y"], g["y"] + g["h"])
    ]
    assert len(cells) == len(set(cells))
    assert all(g["x"] + g["w"] <= 24 for g in grid.values())
