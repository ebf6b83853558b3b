"""The deployment files in examples/deploy say what they claim, and their commands are real.

PM2's config is loaded by node; the systemd units go through `systemd-analyze verify` where it
exists; Docker cannot run here, so the Compose file is parsed and checked (and given to
`docker compose config` when that exists), and the Dockerfile's build and run steps are
replayed in a fresh virtualenv: COPY, `pip install` of both distributions, `jobrunner migrate`,
CMD, HEALTHCHECK and STOPSIGNAL against a real PostgreSQL.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobrunner._cli._parser import build_parser
from jobrunner._settings import parse_duration, parse_size
from jr_support import REPO

DEPLOY = REPO / "examples" / "deploy"
ENV_EXAMPLE = DEPLOY / "worker.env.example"
NODE = shutil.which("node")


def env_file(path: Path) -> dict[str, str]:
    """KEY=value lines, the format all three supervisors read."""
    out = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and key == key.strip() and re.fullmatch(r"[A-Z][A-Z0-9_]*", key), line
            assert not value.startswith(("'", '"')), f"no quotes, every reader agrees: {line}"
            out[key] = value
    return out


EXAMPLE = env_file(ENV_EXAMPLE)
DRAIN = parse_duration(EXAMPLE["JOBRUNNER_SHUTDOWN_TIMEOUT"])
MAX_MEMORY = parse_size(EXAMPLE["JOBRUNNER_MAX_MEMORY"])


def assert_real_command(argv: list[str]) -> None:
    """`argv` is a jobrunner command the real parser accepts."""
    assert Path(argv[0]).name == "jobrunner", argv
    args = build_parser().parse_args(argv[1:])  # SystemExit(2) on an unknown option
    assert args.command, argv


def test_the_env_example_is_valid_settings():
    from jobrunner._settings import Settings

    names = {"DATABASE_URL", *(k for k in EXAMPLE if k.startswith("JOBRUNNER_"))}
    settings = Settings.load({k: EXAMPLE[k] for k in names})
    assert settings.database_url.startswith("postgresql://")
    assert settings.auto_migrate is False, "migrations run once per deploy, not per worker"
    assert settings.shutdown_timeout == DRAIN and settings.max_memory == MAX_MEMORY


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# -- PM2 -----------------------------------------------------------------------------------

# Every attribute an app may have (PM2's lib/API/schema.json): a typo is not silently ignored.
PM2_KEYS = words(
    """
    script name name_prefix filter_env namespace install_url cwd args exec_interpreter
    interpreter node_args interpreter_args out_file error_file log_file disable_logs
    log_type log_date_format time env max_memory_restart pid_file restart_delay
    exp_backoff_restart_delay source_map_support wait_ready instances kill_timeout
    shutdown_with_message listen_timeout cron_restart merge_logs vizion autorestart
    watch_delay watch ignore_watch watch_options min_uptime max_restarts exec_mode force
    append_env_to_name post_update increment_var instance_var treekill port uid gid
    kill_retry_time stop_exit_codes autostart
    """
)


def load_pm2(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    config = DEPLOY / "pm2" / "ecosystem.config.js"
    script = f"console.log(JSON.stringify(require({json.dumps(str(config))})))"
    return subprocess.run(
        [NODE or "node", "-e", script],
        env={"PATH": os.environ["PATH"], **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_pm2_ecosystem_runs_the_worker_as_documented(tmp_path: Path):
    done = load_pm2(tmp_path, WORKER_ENV_FILE=str(ENV_EXAMPLE))
    assert done.returncode == 0, done.stderr
    apps = {app["name"]: app for app in json.loads(done.stdout)["apps"]}
    assert set(apps) == {"web", "worker"}
    for app in apps.values():
        assert set(app) <= PM2_KEYS, set(app) - PM2_KEYS
        assert app["out_file"].endswith(".log") and app["error_file"].endswith(".log")
    web, worker = apps["web"], apps["worker"]
    assert (web["script"], web["args"]) == ("npm", ["start"])
    assert web["env"]["DATABASE_URL"] == EXAMPLE["DATABASE_URL"], "the app enqueues in SQL"

    assert worker["script"].endswith("/bin/jobrunner") and worker["interpreter"] == "none"
    assert worker["args"][:3] == ["run", "--plugin", "cineqo"]
    assert_real_command(["jobrunner", *worker["args"]])
    assert worker["exec_mode"] == "fork" and worker["instances"] == 2
    assert worker["env"] == EXAMPLE
    assert worker["kill_timeout"] > DRAIN * 1000, "PM2 must not SIGKILL a draining worker"
    limit = re.fullmatch(r"(\d+)([KMG]?)", worker["max_memory_restart"])
    assert limit, "PM2's own format"
    pm2_bytes = int(limit[1]) * 1024 ** " KMG".index(limit[2] or " ")
    assert pm2_bytes > MAX_MEMORY, "jobrunner's graceful limit comes before PM2's restart"
    assert 75 not in worker["stop_exit_codes"], "exit 75 (memory) must restart"
    assert worker["autorestart"] is True


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_pm2_follows_the_env_file_and_refuses_a_missing_one(tmp_path: Path):
    custom = tmp_path / "worker.env"
    custom.write_text("DATABASE_URL=postgresql://db/x\nJOBRUNNER_SHUTDOWN_TIMEOUT=2m\n")
    done = load_pm2(tmp_path, WORKER_ENV_FILE=str(custom), WORKER_INSTANCES="4")
    assert done.returncode == 0, done.stderr
    worker = json.loads(done.stdout)["apps"][1]
    assert worker["kill_timeout"] == (120 + 15) * 1000
    assert worker["instances"] == 4
    assert worker["env"] == {
        "DATABASE_URL": "postgresql://db/x",
        "JOBRUNNER_SHUTDOWN_TIMEOUT": "2m",
    }

    missing = load_pm2(tmp_path, WORKER_ENV_FILE=str(tmp_path / "nope.env"))
    assert missing.returncode != 0
    assert "nope.env is missing" in missing.stderr


# -- systemd -------------------------------------------------------------------------------

UNITS = sorted((DEPLOY / "systemd").glob("*.service"))


def unit_file(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections of a unit file; a key may repeat (EnvironmentFile=)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, line
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.mark.parametrize("path", UNITS, ids=[p.name for p in UNITS])
def test_systemd_unit_restarts_drains_and_is_hardened(path: Path):
    service = unit_file(path)["Service"]
    one = {key: values[-1] for key, values in service.items()}
    assert_real_command(shlex.split(one["ExecStart"]))
    assert shlex.split(one["ExecStart"])[1:4] == ["run", "--plugin", "cineqo"]
    assert one["Restart"] == "always"
    assert "75" not in one.get("RestartPreventExitStatus", "").split(), "memory exits restart"
    assert one["KillSignal"] == "SIGTERM"
    assert parse_duration(one["TimeoutStopSec"]) > DRAIN
    assert any(f.lstrip("-") == "/etc/cineqo/worker.env" for f in service["EnvironmentFile"])
    assert one["User"] not in {"root", "0"}
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert one[key] == "yes", key
    assert one["ProtectSystem"] == "strict"
    assert "/var/lib/cineqo" in one["ReadWritePaths"].split()
    assert EXAMPLE["CINEQO_DATA_DIR"].startswith(one["ReadWritePaths"]), "data is writable"
    assert parse_size(one["MemoryMax"]) > MAX_MEMORY
    assert unit_file(path)["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)
@pytest.mark.parametrize("path", UNITS, ids=[p.name for p in UNITS])
def test_systemd_analyze_verify_accepts_the_unit(path: Path, tmp_path: Path):
    # verify wants ExecStart's program to exist: point it at this environment's jobrunner.
    jobrunner = Path(sys.executable).with_name("jobrunner")
    text = path.read_text().replace("/opt/cineqo/venv/bin/jobrunner", str(jobrunner))
    assert str(jobrunner) in text
    (tmp_path / path.name).write_text(text)
    name = path.name.replace("@.service", "@1.service")  # a template is verified as an instance
    done = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / name)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Unknown keys and bad values are only warnings: any line about our unit fails the test.
    about_us = [line for line in done.stderr.splitlines() if path.name.split("@")[0] in line]
    assert done.returncode == 0 and not about_us, done.stderr


# -- Docker Compose ------------------------------------------------------------------------

COMPOSE = DEPLOY / "docker" / "docker-compose.yml"
SERVICE_KEYS = words(
    """
    build command container_name depends_on deploy entrypoint env_file environment expose
    healthcheck image init labels logging networks ports restart stop_grace_period
    stop_signal user volumes working_dir
    """
)


def _scalar(text: str) -> object:
    if text.startswith(("[", '"')):
        return json.loads(text)  # flow lists and double-quoted strings, as this file uses them
    if text.startswith("'"):
        return text[1:-1]
    if text in {"true", "false"}:
        return text == "true"
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def _block(lines: list[tuple[int, str]], i: int) -> tuple[object, int]:
    """The mapping or list whose lines start at lines[i], with their indent; and the next i."""
    indent = lines[i][0]
    if lines[i][1].startswith("- "):
        items = []
        while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
            items.append(_scalar(lines[i][1][2:].strip()))
            i += 1
        return items, i
    mapping: dict[str, object] = {}
    while i < len(lines) and lines[i][0] == indent:
        key, value = re.fullmatch(r"([\w.-]+):(?:\s+(.*))?", lines[i][1]).groups()
        i += 1
        if value:
            mapping[key] = _scalar(value)
        elif i < len(lines) and lines[i][0] > indent:
            mapping[key], i = _block(lines, i)
        else:
            mapping[key] = None
    return mapping, i


def parse_yaml(text: str) -> object:
    """The YAML subset Compose files are written in here: block mappings and lists, flow
    lists, plain and quoted scalars. (PyYAML, when installed, is checked to agree.)"""
    lines = []
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*", "", raw).rstrip()
        if line.strip():
            lines.append((len(line) - len(line.lstrip()), line.strip()))
    value, end = _block(lines, 0)
    assert end == len(lines), f"could not parse line {lines[end]}"
    return value


def compose() -> dict:
    spec = parse_yaml(COMPOSE.read_text())
    assert isinstance(spec, dict)
    return spec


def test_the_yaml_reader_agrees_with_pyyaml():
    yaml = pytest.importorskip("yaml")
    assert compose() == yaml.safe_load(COMPOSE.read_text())


def test_compose_migrates_once_then_scales_workers():
    spec = compose()
    services = spec["services"]
    assert set(services) == {"postgres", "migrate", "worker"}
    for name, service in services.items():
        assert set(service) <= SERVICE_KEYS, (name, set(service) - SERVICE_KEYS)
    postgres, migrate, worker = services["postgres"], services["migrate"], services["worker"]
    assert postgres["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}
    assert migrate["command"] == ["jobrunner", "migrate"]
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert migrate["restart"] == "no"
    assert worker["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert "container_name" not in worker and "ports" not in worker, "--scale worker=3"
    assert worker["environment"]["JOBRUNNER_AUTO_MIGRATE"] == "false"
    assert parse_duration(worker["stop_grace_period"]) > DRAIN
    assert worker.get("stop_signal", "SIGTERM") == "SIGTERM"
    assert parse_size(worker["deploy"]["resources"]["limits"]["memory"]) > MAX_MEMORY
    assert worker["logging"]["options"]["max-size"], "logs are rotated"
    for service in (migrate, worker):
        assert_real_command(service["command"])
        assert service["env_file"] == "worker.env"
        context = (COMPOSE.parent / service["build"]["context"]).resolve()
        assert context == REPO and (context / service["build"]["dockerfile"]).is_file()
        assert service["environment"]["DATABASE_URL"].endswith("@postgres:5432/cineqo")
    assert set(spec["volumes"]) == {"pgdata", "cineqo-data"}


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    plugin = docker and subprocess.run([docker, "compose", "version"], capture_output=True)
    if plugin and plugin.returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@pytest.mark.skipif(_compose_cli() is None, reason="neither `docker compose` nor docker-compose")
def test_docker_compose_config_accepts_the_file(tmp_path: Path):
    folder = tmp_path / "examples" / "deploy" / "docker"
    shutil.copytree(COMPOSE.parent, folder)
    shutil.copy(ENV_EXAMPLE, folder / "worker.env")
    done = subprocess.run(
        [*_compose_cli(), "-f", str(folder / COMPOSE.name), "config", "-q"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


# -- Dockerfile ----------------------------------------------------------------------------

DOCKERFILE = DEPLOY / "docker" / "Dockerfile.worker"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    out, pending = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        word, _, rest = (pending + line).partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    return out


def _exec_form(text: str) -> list[str]:
    argv = json.loads(text)  # exec form: the signal reaches jobrunner, not a shell
    assert isinstance(argv, list)
    return argv


def test_dockerfile_is_slim_unprivileged_and_checks_health():
    steps = instructions()
    kinds = [kind for kind, _ in steps]
    values = dict(steps)  # the last of each kind
    assert values["FROM"] == "python:3.11-slim"
    user = values["USER"]
    assert user not in {"root", "0"} and kinds.index("USER") > kinds.index("RUN")
    assert any(kind == "RUN" and "useradd" in arg and user in arg for kind, arg in steps)
    assert values["STOPSIGNAL"] == "SIGTERM"
    options, _, check = values["HEALTHCHECK"].partition(" CMD ")
    assert "--interval=" in options
    assert _exec_form(check)[:2] == ["jobrunner", "healthcheck"]
    assert_real_command(_exec_form(check))
    assert _exec_form(values["CMD"]) == ["jobrunner", "run", "--plugin", "cineqo"]
    assert_real_command(_exec_form(values["CMD"]))
    [install] = [arg for kind, arg in steps if kind == "RUN" and "pip install" in arg]
    assert "./plugins/cineqo" in shlex.split(install), "both distributions"


OFFLINE = ("--no-index", "--no-deps", "--no-build-isolation", "--quiet")


def _replay_build(app: Path) -> Path:
    """COPY and RUN pip install as the Dockerfile does, into a fresh venv; its bin folder."""
    for kind, arg in instructions():
        if kind == "COPY":
            *sources, dest = shlex.split(arg)
            target = app / dest
            for source in sources:
                origin = REPO / source
                if origin.is_dir():
                    shutil.copytree(
                        origin,
                        app / dest if len(sources) == 1 else target / origin.name,
                        symlinks=True,  # plugins/cineqo/src -> ../../src, as Docker copies it
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                    )
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy(origin, target)
    venv = app.parent / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # No network in tests: dependencies come from this environment, not PyPI.
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "deps.pth").write_text("\n".join(p for p in sys.path if p.endswith("site-packages")))
    [install] = [arg for kind, arg in instructions() if kind == "RUN" and "pip install" in arg]
    argv = shlex.split(install)
    pip_args = argv[argv.index("install") + 1 :]
    python = str(venv / "bin" / "python")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", *OFFLINE, *pip_args],
        cwd=app,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return venv / "bin"


def test_the_image_builds_migrates_runs_and_stops_in_a_plain_venv(
    tmp_path: Path, pg_url: str, pg_schema: str
):
    bin_dir = _replay_build(tmp_path / "app")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("JOBRUNNER_", "PYTHON"))},
        **EXAMPLE,
        "DATABASE_URL": pg_url,
        "JOBRUNNER_SCHEMA": pg_schema,
        "CINEQO_DATA_DIR": str(tmp_path / "data"),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    }
    where = subprocess.run(
        ["python", "-c", "import jobrunner, jobrunner_cineqo; print(jobrunner.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(bin_dir.parent)), "the built wheel, not the checkout"
    plugins = subprocess.run(["jobrunner", "plugins"], env=env, capture_output=True, text=True)
    assert plugins.returncode == 0 and "cineqo  (jobrunner-cineqo" in plugins.stdout

    # docker-compose.yml's order: migrate once, then the image's CMD; HEALTHCHECK; STOPSIGNAL.
    values = dict(instructions())
    migrate = compose()["services"]["migrate"]["command"]
    subprocess.run(migrate, env=env, check=True, capture_output=True, timeout=60)
    worker = subprocess.Popen(
        _exec_form(values["CMD"]), env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    check = _exec_form(values["HEALTHCHECK"].partition(" CMD ")[2])
    try:
        for _ in range(120):  # the worker's first heartbeat comes as it starts
            health = subprocess.run(check, env=env, capture_output=True, text=True, timeout=60)
            if health.returncode == 0 or worker.poll() is not None:
                break
            time.sleep(0.5)
        assert health.returncode == 0, health.stdout + health.stderr
        worker.send_signal(getattr(signal, values["STOPSIGNAL"]))
        _out, err = worker.communicate(timeout=DRAIN + 15)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, err
    assert "stopping gracefully" in err
    after = subprocess.run(check, env=env, capture_output=True, text=True, timeout=60)
    assert after.returncode == 1, "a stopped worker is unhealthy"
