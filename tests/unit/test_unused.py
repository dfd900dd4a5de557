"""``unused``'s verdicts from hand-written environments: each rule, each example of issue 10."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from popularity_contest.answers.environment import Environment, Installed, interpreter
from popularity_contest.answers.requirements import Requirements
from popularity_contest.answers.unused import (
    Verdict,
    judge,
    processes_of,
)
from popularity_contest.answers.window import Window
from popularity_contest.commands.unused import render

SPAN = Window(1_000_000, 1_000_000 + 30 * 86400)
LINUX_311 = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.7",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_release": "6.1",
    "platform_system": "Linux",
    "platform_version": "#1",
    "python_full_version": "3.11.7",
    "platform_python_implementation": "CPython",
    "python_version": "3.11",
    "sys_platform": "linux",
}
IPYTHON_ONLY = {
    "ipython": {"path": "/e/startup.py", "present": True, "mtime": 0.0},
    "site": {"path": "/e/zz.pth", "present": False, "mtime": None},
}
SITE = {
    "ipython": {"path": "/e/startup.py", "present": False, "mtime": None},
    "site": {"path": "/e/zz.pth", "present": True, "mtime": SPAN.start - 1},
}


def dist(name: str, *requires: str, packages: tuple[str, ...] | None = None, **facts: object):
    """A distribution, pip-installed unless ``facts`` say otherwise."""
    found = Installed(
        name, "1.0", list((name.replace("-", "_"),) if packages is None else packages)
    )
    found.requires = list(requires)
    for key, value in facts.items():
        setattr(found, key, value)
    return found


def environment(*dists: Installed, activation: dict | None = None, **extra: object):
    return Environment(
        python="/e/bin/python",
        distributions=list(dists),
        marker_environment=LINUX_311,
        activation=IPYTHON_ONLY if activation is None else activation,
        **extra,  # type: ignore[arg-type]
    )


def verdicts(env: Environment, imports: dict[str, float], **kwargs: object) -> dict[str, str]:
    """``{distribution: verdict word}`` (the words outputs show)."""
    found = judge(env, imports, span=SPAN, **kwargs)  # type: ignore[arg-type]
    return {v.distribution: v.verdict.value for v in found}


# --- extras ---------------------------------------------------------------------------------
# The requirement strings below are the ones these projects publish (trimmed).
JUPYTER_STACK = [
    dist(
        "nbconvert",
        "bleach[css]!=5.0.0",
        "jinja2>=3.0",
        'pyppeteer<1.1,>=1; extra == "webpdf"',
        'pytest>=7; extra == "test"',
    ),
    dist(
        "bleach",
        "webencodings",
        'tinycss2<1.5,>=1.1.0; extra == "css"',
    ),
    dist("tinycss2", "webencodings>=0.4"),
    dist("webencodings"),
    dist("jinja2", "MarkupSafe>=2.0"),
    dist("markupsafe"),
    dist("pyppeteer"),
    dist("pytest"),
    dist(
        "jupyter-events",
        "jsonschema[format-nongpl]>=4.18.0",
        "pyyaml>=5.3",
        'click; extra == "cli"',
    ),
    dist(
        "jsonschema",
        "attrs>=22.2.0",
        'fqdn; extra == "format-nongpl"',
        'isoduration; extra == "format-nongpl"',
        'uri-template; extra == "format-nongpl"',
        'webcolors>=24.6.0; extra == "format-nongpl"',
        'rfc3987; extra == "format"',
    ),
    dist("attrs"),
    dist("fqdn"),
    dist("isoduration", "arrow>=0.15.0"),
    dist("arrow", "python-dateutil>=2.7.0", packages=("arrow",)),
    dist("python-dateutil", packages=("dateutil",)),
    dist("uri-template"),
    dist("webcolors"),
    dist("rfc3987"),
    dist("pyyaml", packages=("yaml",)),
    dist("click"),
    dist("jupyter-server", "nbconvert>=6.4.4", "jupyter-events>=0.11.0"),
]


def test_requirements_with_extras_bring_in_the_extras_requirements() -> None:
    graph = Requirements(JUPYTER_STACK, LINUX_311)
    needed = graph.closure(["nbconvert"])
    assert "tinycss2" in needed  # nbconvert -> bleach[css] -> tinycss2
    assert needed["tinycss2"] == {"bleach"}
    assert "webencodings" in needed
    # Extras nobody asked for stay out.
    assert "pyppeteer" not in needed
    assert "pytest" not in needed
    events = graph.closure(["jupyter-events"])
    assert {"fqdn", "isoduration", "uri-template", "webcolors", "arrow", "python-dateutil"} <= set(
        events
    )
    assert "rfc3987" not in events  # the "format" extra, not "format-nongpl"
    assert "click" not in events


def test_the_jupyter_server_keeps_what_its_extras_need() -> None:
    # Issue 10: removing tinycss2 broke `import nbconvert` and "export as HTML".
    result = verdicts(environment(*JUPYTER_STACK), {})
    for name in ("tinycss2", "fqdn", "isoduration", "uri-template", "webcolors", "arrow"):
        assert result[name] == "infrastructure", name
    assert result["jupyter-server"] == "infrastructure"
    assert {n for n, v in result.items() if v == "unused"} == {
        "pyppeteer",
        "pytest",
        "rfc3987",
        "click",
    }


def test_an_imported_distribution_keeps_what_its_requested_extras_need() -> None:
    env = environment(*[d for d in JUPYTER_STACK if d.distribution != "jupyter-server"])
    result = verdicts(env, {"nbconvert": 3.0})
    assert result["nbconvert"] == "used"
    assert result["bleach"] == "dependency"
    assert result["tinycss2"] == "dependency"
    assert result["jupyter_events".replace("_", "-")] == "unused"
    assert result["fqdn"] == "unused"  # only jupyter-events, unused, asked for it


def test_extras_chain_transitively_and_extra_names_are_normalised() -> None:
    env = environment(
        dist("app", "mid[Fancy_Stuff]"),
        dist("mid", 'deep[more]; extra == "fancy-stuff"'),
        dist("deep", 'leaf; extra == "more"', 'other; extra == "less"'),
        dist("leaf"),
        dist("other"),
    )
    result = verdicts(env, {"app": 1.0})
    assert result == {
        "app": "used",
        "mid": "dependency",
        "deep": "dependency",
        "leaf": "dependency",
        "other": "unused",
    }


def test_markers_are_evaluated_for_the_target_environment() -> None:
    env = environment(
        dist(
            "app",
            'old-backport; python_version < "3.8"',
            'winonly; sys_platform == "win32"',
            'linuxonly; sys_platform == "linux"',
            'weird; platform_release ~= "not a version"',
            "not a valid requirement ((",
        ),
        dist("old-backport"),
        dist("winonly"),
        dist("linuxonly"),
        dist("weird"),
        dist("not"),
    )
    result = verdicts(env, {"app": 1.0})
    assert result["old-backport"] == "unused"
    assert result["winonly"] == "unused"
    assert result["linuxonly"] == "dependency"
    # A marker that cannot be evaluated, or a requirement that cannot be parsed: keep.
    assert result["weird"] == "dependency"
    assert result["not"] == "dependency"
    windows = Environment("/p", env.distributions, {**LINUX_311, "sys_platform": "win32"})
    result = {v.distribution: v.verdict.value for v in judge(windows, {"app": 1.0})}
    assert result["winonly"] == "dependency"
    assert result["linuxonly"] == "unused"


def test_requirement_cycles_terminate() -> None:
    env = environment(dist("a", "b"), dist("b", "a[x]"), dist("c", "c"))
    assert verdicts(env, {"a": 1.0}) == {"a": "used", "b": "dependency", "c": "unused"}


# --- the privacy threshold ------------------------------------------------------------------
def test_below_the_threshold_is_hidden_never_a_candidate() -> None:
    env = environment(dist("common"), dist("rare", "rare-dep"), dist("rare-dep"), dist("idle"))
    imports = {"common": 9.0, "rare": 4.0}
    found = {v.distribution: v for v in judge(env, imports, min_processes=5, span=SPAN)}
    assert found["common"].verdict is Verdict.USED
    assert found["rare"].verdict is Verdict.HIDDEN
    assert found["rare"].processes is None  # the count is not shown
    assert found["rare"].as_dict()["processes"] is None
    assert found["rare-dep"].verdict is Verdict.DEPENDENCY  # what a hidden one needs stays too
    assert found["idle"].verdict is Verdict.UNUSED
    text = render(list(found.values()), "requirements", span=SPAN, python="p", hub=None)
    assert text.splitlines() == ["idle==1.0"]
    table = render(list(found.values()), "table", span=SPAN, python="p", hub=None, min_processes=5)
    assert "4" not in next(line for line in table.splitlines() if line.startswith("rare "))
    assert "hidden is not unused" in table
    # Without a threshold, the same counts make it used.
    assert verdicts(env, imports)["rare"] == "used"


# --- commands and activation ----------------------------------------------------------------
def commands_env(activation: dict) -> Environment:
    return environment(
        dist("numpy", scripts=["f2py", "numpy-config"]),
        dist("plotly", "narwhals", scripts=["plotly_get_chrome"]),
        dist("narwhals"),
        activation=activation,
    )


def test_commands_are_kept_only_when_activation_cannot_observe_them() -> None:
    without_site = {v.distribution: v for v in judge(commands_env(IPYTHON_ONLY), {}, span=SPAN)}
    assert without_site["numpy"].verdict is Verdict.COMMANDS
    assert "f2py" in without_site["numpy"].reason
    assert "without `install site`" in without_site["numpy"].reason
    assert without_site["narwhals"].verdict is Verdict.COMMANDS  # plotly's command needs it
    assert without_site["narwhals"].reason.startswith("required by plotly")
    # With `install site` for the whole window, running f2py imports numpy and is counted.
    assert verdicts(commands_env(SITE), {}) == {
        "numpy": "unused",
        "plotly": "unused",
        "narwhals": "unused",
    }
    assert verdicts(commands_env(SITE), {"numpy": 2.0})["numpy"] == "used"


def test_site_installed_during_the_window_does_not_cover_it() -> None:
    late = {**SITE, "site": {**SITE["site"], "mtime": SPAN.start + 86400}}
    found = {v.distribution: v for v in judge(commands_env(late), {}, span=SPAN)}
    assert found["numpy"].verdict is Verdict.COMMANDS
    assert "newer than the window's start" in found["numpy"].reason


def test_infrastructure_is_never_a_candidate_even_with_site() -> None:
    env = environment(
        dist("pip"),
        dist("setuptools", pth_imports=True),
        dist("wheel"),
        dist("ipykernel", "comm", "ipython>=7"),
        dist("ipython", "jedi", packages=("IPython",)),
        dist("jedi"),
        dist("comm"),
        dist("popularity-contest", "statsd"),
        dist("statsd"),
        dist("srv-ext"),
        dist("lab-theme", packages=(), jupyter=["labextension"]),
        dist("my-kernel", jupyter=["kernelspec"]),
        dist("exporter", entry_point_groups=["nbconvert.exporters"]),
        activation=SITE,
        server_extensions=["srv_ext"],
    )
    found = {v.distribution: v for v in judge(env, {}, span=SPAN)}
    assert {n for n, v in found.items() if v.verdict is not Verdict.INFRASTRUCTURE} == set()
    assert found["srv-ext"].reason == "enabled Jupyter server extension"
    assert found["lab-theme"].reason == "ships a JupyterLab extension"
    assert found["my-kernel"].reason == "ships a Jupyter kernel"
    assert found["statsd"].reason == "required by popularity-contest"


def test_startup_code_and_local_installs_are_kept() -> None:
    env = environment(
        dist("nspkg-thing", "helper", pth_imports=True),
        dist("helper"),
        dist("mine", "mine-dep", local="directory"),
        dist("mine-dep"),
        dist("from-git", local="vcs"),
        dist("from-wheel-file", local="file"),  # counted by the reporter: judged as usual
        activation=SITE,
    )
    found = {v.distribution: v for v in judge(env, {}, span=SPAN)}
    assert found["nspkg-thing"].verdict is Verdict.STARTUP
    assert found["helper"].verdict is Verdict.STARTUP
    assert found["mine"].verdict is Verdict.LOCAL
    assert found["mine-dep"].verdict is Verdict.LOCAL
    assert found["from-git"].verdict is Verdict.LOCAL
    assert found["from-wheel-file"].verdict is Verdict.UNUSED


# --- only what pip can remove ---------------------------------------------------------------
def test_only_pip_and_uv_installs_with_a_record_are_listed_for_pip() -> None:
    env = environment(
        dist("by-pip"),
        dist("by-uv", installer="uv"),
        dist("by-conda", installer="conda"),
        dist("by-debian", installer="debian"),
        dist("no-installer", installer=None),
        dist("no-record", record=False),
        dist("egg", metadata="egg-info"),
        dist("system", in_prefix=False),
        activation=SITE,
    )
    found = judge(env, {}, span=SPAN)
    assert {v.verdict for v in found} == {Verdict.UNUSED}
    text = render(found, "requirements", span=SPAN, python="p", hub=None)
    assert text.splitlines() == ["by-pip==1.0", "by-uv==1.0"]
    managers = {v.distribution: v.manager for v in found}
    assert managers["by-conda"] == "conda"
    assert managers["no-installer"] == "unknown"
    assert managers["no-record"] == "pip (no RECORD)"
    assert managers["system"] == "pip (outside the environment)"
    table = render(found, "table", span=SPAN, python="p", hub=None, environment=env)
    assert "8 unused, 2 removal candidates for pip" in table
    assert "6 unused distributions are not pip's to remove" in table


# --- what the columns mean ------------------------------------------------------------------
def test_processes_is_the_largest_count_a_lower_bound_or_exact() -> None:
    attrs = dist("attrs", packages=("attr", "attrs"))
    # Issue 10: attrs showed 34 "imports" for 17 processes.
    assert processes_of(attrs, {"attr": 17.0, "attrs": 17.0}) == (17.0, False)
    assert processes_of(attrs, {"attrs": 5.0}) == (5.0, True)  # one name seen: exact
    assert processes_of(attrs, {"attr": 17.0, "attrs": 12.0}, {"attrs": 20.0}) == (20.0, True)
    # library_used below the names' count: some processes did not send it; lower bound.
    assert processes_of(attrs, {"attr": 17.0, "attrs": 2.0}, {"attrs": 3.0}) == (17.0, False)
    found = judge(environment(attrs), {"attr": 17.0, "attrs": 17.0})
    assert found[0].as_dict()["processes"] == 17
    assert found[0].as_dict()["processes_exact"] is False
    table = render(found, "table", span=SPAN, python="p", hub=None)
    row = next(line for line in table.splitlines() if line.startswith("attrs "))
    assert row.split()[3] == ">=17"
    assert ">=N: a lower bound" in table


def test_verdict_words_and_both_orders_are_pinned() -> None:
    # The words are an output contract (table, JSON, CSV, the page's rows and their classes).
    assert [v.value for v in Verdict] == [
        "used",
        "hidden",
        "infrastructure",
        "dependency",
        "local",
        "commands",
        "startup",
        "unused",
    ]
    page_order = sorted(Verdict, key=lambda v: v.page_rank)
    assert [v.value for v in page_order] == [
        "unused",
        "hidden",
        "dependency",
        "used",
        "commands",
        "startup",
        "local",
        "infrastructure",
    ]
    assert len({v.page_rank for v in Verdict}) == len(Verdict)
    assert Verdict("hidden") is Verdict.HIDDEN


def test_json_and_csv_carry_the_window() -> None:
    env = environment(dist("app", "lib"), dist("lib"), dist("gone"), activation=SITE)
    found = judge(env, {"app": 2.0}, span=SPAN)
    document = json.loads(
        render(found, "json", span=SPAN, python="p", hub="hub-a", environment=env)
    )
    assert document["window"] == {"start": "1970-01-12T13:46:40Z", "end": "1970-02-11T13:46:40Z"}
    assert document["activation"] == {"ipython": False, "site": True}
    assert document["candidates"] == 1
    assert document["hub"] == "hub-a"
    assert [d["verdict"] for d in document["distributions"]] == ["used", "dependency", "unused"]
    rows = list(csv.DictReader(io.StringIO(render(found, "csv", span=SPAN, python="p", hub=""))))
    assert rows[1]["required_by"] == "app"
    assert rows[1]["reason"] == "required by app"
    assert {r["window_start"] for r in rows} == {"1970-01-12T13:46:40Z"}
    assert rows[0]["processes"] == "2"
    assert rows[2]["pip_removable"] == "True"


def test_interpreter_from_prefix(tmp_path: Path) -> None:
    assert interpreter("/x/python", None) == "/x/python"
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").write_text("")
    assert interpreter(None, str(tmp_path)) == str(tmp_path / "bin" / "python")


@pytest.mark.parametrize("missing", ["tinycss2", "fqdn"])
def test_every_candidate_can_go_without_breaking_a_kept_one(missing: str) -> None:
    """The promise, checked on the graph: no kept distribution requires a candidate."""
    env = environment(*JUPYTER_STACK, dist("numpy", scripts=["f2py"]), activation=IPYTHON_ONLY)
    found = judge(env, {"yaml": 1.0})
    candidates = {v.distribution for v in found if v.verdict is Verdict.UNUSED}
    assert missing not in candidates
    graph = Requirements(env.distributions, LINUX_311)
    kept = [v.distribution for v in found if v.verdict is not Verdict.UNUSED]
    assert not candidates & set(graph.closure(kept))
