"""A real CeleryExecutor Airflow deployment on 127.0.0.1, for the tests: Debian's redis-server (the
broker), a postgres cluster of its own (the metadata DB and Celery's result backend), `airflow
api-server`, `scheduler`, `dag-processor` and two `airflow celery worker`s (w1, w2).

Every process has its own HOME, TMPDIR, AIRFLOW_HOME (so its own logs) and working directory; the
dags folder is the only file location they share, as on machines that share no disk. The settings
reach them through the environment only.

Standard library only at module level: the workers import `worker_hostname` from here.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from glob import glob
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKERS = ("w1", "w2")
WORKER_NAME_VAR = "MLOPS_TEST_CELERY_WORKER"  # the worker's Celery hostname, for worker_hostname()
FINISHED = frozenset({"success", "failed"})


def worker_hostname() -> str:
    """Airflow's `[core] hostname_callable` on the workers: the Celery worker's name (w1@host), so
    that a task instance's hostname tells which of two workers on one machine ran it."""
    return os.environ.get(WORKER_NAME_VAR) or socket.getfqdn()


class ClusterError(RuntimeError):
    """Raised when a process of the cluster dies or does not become ready, or a DAG run or a DAG
    file does not reach the state asked for in time; the message shows the logs that say why."""


# --- what must be installed -------------------------------------------------------------------


def _postgres_bin() -> Path | None:
    found = sorted(glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    return Path(on_path).parent if on_path else None


def _redis_server() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None
    )


def missing_debian_parts() -> list[str]:
    missing = []
    if _redis_server() is None:
        missing.append("Debian's redis-server")
    if _postgres_bin() is None:
        missing.append("Debian's postgresql")
    return missing


def missing_parts() -> list[str]:
    """What the cluster needs and this machine lacks (empty when all is there); imports nothing."""
    from importlib.metadata import PackageNotFoundError, version
    from importlib.util import find_spec

    missing = missing_debian_parts()
    missing += [f"the Python module {name}" for name in ("psycopg2", "asyncpg") if find_spec(name) is None]
    for distribution in ("apache-airflow-providers-celery", "celery"):
        try:
            found = version(distribution)
        except PackageNotFoundError:
            missing.append(f"the Python package {distribution}")
            continue
        if distribution == "celery" and tuple(int(part) for part in found.split(".")[:2]) >= (5, 7):
            missing.append(f"celery<5.7 (found {found}: the Celery provider's import of it crashes the workers)")
    return missing


def can_install_debian_packages() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


# --- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Process:
    """One started server: its own process group, its output in `log`."""

    name: str
    popen: subprocess.Popen
    log: Path

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise ClusterError(f"{self.name} exited with code {code}; the last lines of {self.log}:\n{self.tail()}")

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def wait_stopped(self, timeout: float) -> None:
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait(timeout=10)
        self.signal(signal.SIGKILL)  # what the group leader left behind (task processes)


@dataclass(frozen=True)
class Worker:
    """One Celery worker's own places: nothing of them is shared with another process."""

    name: str  # w1, w2: also its own queue
    celery_hostname: str  # w1@<host>
    home: Path
    tmp: Path
    workdir: Path
    airflow_home: Path

    @property
    def log_folder(self) -> Path:
        return self.airflow_home / "logs"


@dataclass(frozen=True)
class TaskRun:
    """One task instance of a finished DAG run, as Airflow recorded it."""

    task_id: str
    map_index: int
    state: str | None
    try_number: int
    hostname: str  # on the workers, their Celery name: w1@<host>
    queue: str | None
    worker: str | None  # the worker whose log folder holds the last try's log: w1, w2 (None: no log)
    logs: tuple[str, ...]  # each try's log, rendered as text lines

    @property
    def log(self) -> str:
        """The last try's log."""
        return self.logs[-1] if self.logs else ""


@dataclass(frozen=True)
class DagRunResult:
    dag_id: str
    run_id: str
    state: str
    tasks: dict[str, TaskRun]  # by task id ("task_id[i]" for a mapped task's instance i)
    seconds: float  # from trigger() to the end of the run, as wait() saw it


# what every line of a task's log repeats: the task instance it belongs to, where it was logged
_CONTEXT_KEYS = frozenset(
    {"timestamp", "map_index", "ti_id", "dag_id", "task_id", "try_number", "run_id", "filename", "lineno"}
)


def render_log(raw: str) -> str:
    """Airflow 3's task logs are JSON lines: render each as `[level] logger: event key=value...`."""
    lines = []
    for line in raw.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            lines.append(line)
            continue
        level, logger, event = record.pop("level", ""), record.pop("logger", ""), record.pop("event", "")
        extra = " ".join(
            f"{key}={value if isinstance(value, str) else json.dumps(value)}"
            for key, value in record.items()
            if key not in _CONTEXT_KEYS
        )
        lines.append(f"[{level}] {logger}: {event}" + (f" {extra}" if extra else ""))
    return "\n".join(lines)


# --- the cluster ------------------------------------------------------------------------------


@dataclass
class CeleryCluster:
    """Start with `CeleryCluster(base, extra_env).start()`, stop with `stop()` (idempotent)."""

    base: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)
    workers: dict[str, Worker] = field(default_factory=dict)
    start_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # start()'s phases, in seconds

    def __post_init__(self) -> None:
        self.base = Path(self.base)
        self.dags_folder = self.base / "dags"
        self.logs = self.base / "logs"  # the servers' own output
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self._pgdata_root: Path | None = None
        self._stopped = False
        self._trigger_times: dict[tuple[str, str], float] = {}

    # -- environment

    def common_env(self) -> dict[str, str]:
        """What every Airflow process of the cluster runs with, before its own HOME, TMPDIR and
        AIRFLOW_HOME: the test process's environment, the cluster's settings and `extra_env`. So it
        is also what DAG files see, in the dag-processor and on the workers."""
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT", "AIRFLOW", "PYTEST_"))
            and key.lower() not in {"http_proxy", "https_proxy", "all_proxy", "home", "tmpdir", "tmp", "temp"}
        }
        pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        database = f"postgresql+psycopg2://airflow@127.0.0.1:{self.pg_port}/postgres"
        return {
            **inherited,
            "PYTHONPATH": pythonpath,
            "PYTHONUNBUFFERED": "1",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "SCARF_ANALYTICS": "false",
            "DO_NOT_TRACK": "true",
            "DVC_NO_ANALYTICS": "1",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": self._fernet_key,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API__SECRET_KEY": self._secret,
            "AIRFLOW__API_AUTH__JWT_SECRET": self._secret,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            # the driver named, or SQLAlchemy 2.1 looks for psycopg 3
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{database}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
            # a triggered run starts within seconds, a new or changed DAG file is parsed within seconds
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "1",
            "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "1",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            **self.extra_env,
        }

    def _own_env(self, name: str) -> tuple[dict[str, str], Path]:
        """A process's own HOME, TMPDIR, AIRFLOW_HOME and working directory, under base/name."""
        root = self.base / name
        home, tmp, work = root / "home", root / "tmp", root / "work"
        for path in (home, tmp, work):
            path.mkdir(parents=True, exist_ok=True)
        env = {
            **self.common_env(),
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "AIRFLOW_HOME": str(home / "airflow"),
        }
        return env, work

    def worker_env(self, name: str) -> dict[str, str]:
        """The whole environment worker `name` runs with."""
        worker = self.workers[name]
        env, _ = self._own_env(name)
        return {
            **env,
            WORKER_NAME_VAR: worker.celery_hostname,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_hostname",
        }

    # -- start and stop

    def start(self, timeout: float = 240) -> CeleryCluster:
        started = time.monotonic()
        deadline = started + timeout
        self.dags_folder.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.redis_port, self.pg_port = free_port(), free_port()
        self._secret = secrets.token_urlsafe(32)
        from cryptography.fernet import Fernet  # Airflow's own dependency

        self._fernet_key = Fernet.generate_key().decode()
        host = socket.gethostname()
        for name in WORKERS:
            root = self.base / name
            self.workers[name] = Worker(
                name, f"{name}@{host}", root / "home", root / "tmp", root / "work", root / "home" / "airflow"
            )
        try:
            self._start_redis()
            self._start_postgres(deadline)
            self._wait_redis(deadline)
            self._wait_postgres(deadline)
            self.timings["redis and postgres"] = time.monotonic() - started
            self._migrate(deadline)
            self.timings["airflow db migrate"] = time.monotonic() - started - sum(self.timings.values())
            airflow = str(Path(sys.executable).with_name("airflow"))
            self._spawn(
                "api-server",
                [airflow, "api-server", "--host", "127.0.0.1", "--port", str(self.api_port), "--workers", "1"],
            )
            self._spawn("scheduler", [airflow, "scheduler"])
            self._spawn("dag-processor", [airflow, "dag-processor"])
            for name, worker in self.workers.items():
                self._spawn(
                    name,
                    [
                        airflow,
                        "celery",
                        "worker",
                        "--celery-hostname",
                        worker.celery_hostname,
                        "--queues",
                        f"default,{name}",
                        "--concurrency",
                        "2",
                        "--skip-serve-logs",  # the tests read each worker's log folder
                        "--without-gossip",
                        "--without-mingle",
                    ],
                    env=self.worker_env(name),
                )
            self._wait_ready(deadline)
            self.timings["the Airflow servers and workers ready"] = (
                time.monotonic() - started - sum(self.timings.values())
            )
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started
        return self

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None, **popen) -> Process:
        own_env, work = self._own_env(name)
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv,
                cwd=popen.pop("cwd", work),
                env=env or own_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **popen,
            )
        self.processes[name] = Process(name, process, log)
        return self.processes[name]

    def _start_redis(self) -> None:
        self._spawn(
            "redis",
            [
                _redis_server() or "redis-server",
                "--bind", "127.0.0.1", "--port", str(self.redis_port),
                "--save", "", "--appendonly", "no", "--dir", str(self.base / "redis"),
            ],
        )  # fmt: skip

    def _wait_redis(self, deadline: float) -> None:
        while True:
            self.processes["redis"].check_alive()
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.redis_port), 1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
            self._before(deadline, "redis")
            time.sleep(0.1)

    def _start_postgres(self, deadline: float) -> None:
        """initdb and postgres, as a user other than root when run as root (postgres refuses root);
        the data directory outside pytest's temp dir, which only its owner may enter."""
        bindir = _postgres_bin()
        assert bindir is not None, "postgres is not installed"
        user = None
        if os.geteuid() == 0:
            user = "postgres"
            try:
                pwd.getpwnam(user)
            except KeyError:
                user = "nobody"
        self._pgdata_root = Path(tempfile.mkdtemp(prefix="airflow-celery-pg-"))
        data = self._pgdata_root / "data"
        if user:
            entry = pwd.getpwnam(user)
            os.chown(self._pgdata_root, entry.pw_uid, entry.pw_gid)
        as_user = {"user": user, "cwd": self._pgdata_root} if user else {"cwd": self._pgdata_root}
        log = self.logs / "initdb.log"
        with log.open("wb") as out:
            result = subprocess.run(
                [str(bindir / "initdb"), "-D", str(data), "-U", "airflow", "--auth=trust", "-E", "UTF8", "--no-sync"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"},
                timeout=max(deadline - time.monotonic(), 1),
                check=False,
                **as_user,
            )
        if result.returncode != 0:
            raise ClusterError(
                f"initdb exited with code {result.returncode}: {log.read_text(errors='replace')[-3000:]}"
            )
        self._spawn(
            "postgres",
            [
                str(bindir / "postgres"), "-D", str(data), "-p", str(self.pg_port),
                "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                "-c", "max_connections=200",
            ],
            env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"},
            **as_user,
        )  # fmt: skip

    def _wait_postgres(self, deadline: float) -> None:
        import psycopg2

        while True:
            self.processes["postgres"].check_alive()
            try:
                psycopg2.connect(host="127.0.0.1", port=self.pg_port, user="airflow", dbname="postgres").close()
                return
            except psycopg2.OperationalError:
                self._before(deadline, "postgres")
                time.sleep(0.1)

    def _migrate(self, deadline: float) -> None:
        process = self._spawn("db-migrate", [str(Path(sys.executable).with_name("airflow")), "db", "migrate"])
        while process.popen.poll() is None:
            self._before(deadline, "airflow db migrate")
            time.sleep(0.2)
        if process.popen.returncode != 0:
            process.check_alive()

    def check_alive(self) -> None:
        """Raise ClusterError, with its log's last lines, when a server of the cluster has exited."""
        for process in self.processes.values():
            if process.name != "db-migrate":
                process.check_alive()

    def _worker_ready(self, name: str) -> bool:
        return (
            re.search(rf"{re.escape(self.workers[name].celery_hostname)} ready\.", self.processes[name].tail(400))
            is not None
        )

    def _wait_ready(self, deadline: float) -> None:
        """The API answers, the scheduler and dag-processor have sent heartbeats, each worker says ready."""
        waiting = ["api-server", "scheduler", "dag-processor", *self.workers]
        while True:
            self.check_alive()
            health = None
            with contextlib.suppress(OSError, ValueError):
                health = self.api("GET", "/api/v2/monitor/health", timeout=3)
            waiting = []
            if health is None:
                waiting.append("api-server")
            else:
                for part in ("scheduler", "dag_processor"):
                    if (health.get(part) or {}).get("status") != "healthy":
                        waiting.append(part.replace("_", "-"))
            waiting += [name for name in self.workers if not self._worker_ready(name)]
            if not waiting:
                return
            self._before(deadline, *waiting)
            time.sleep(0.3)

    def _before(self, deadline: float, *waiting: str) -> None:
        if time.monotonic() > deadline:
            tails = "\n\n".join(
                f"--- the last lines of {self.processes[name].log}:\n{self.processes[name].tail()}"
                for name in waiting
                if name in self.processes
            )
            raise ClusterError(f"not ready in time: {', '.join(waiting)}\n{tails}")

    def stop(self) -> None:
        """Stop every process (its whole process group), Airflow's first, then redis and postgres."""
        if self._stopped:
            return
        self._stopped = True
        servers = {"redis", "postgres"}
        airflow = [p for p in self.processes.values() if p.name not in servers]
        for process in airflow:
            process.signal(signal.SIGTERM)
        self._wait_all(airflow, 10)
        rest = [p for p in self.processes.values() if p.name in servers]
        for process in rest:
            process.signal(signal.SIGINT if process.name == "postgres" else signal.SIGTERM)  # SIGINT: fast shutdown
        self._wait_all(rest, 15)
        if self._pgdata_root is not None:
            shutil.rmtree(self._pgdata_root, ignore_errors=True)

    @staticmethod
    def _wait_all(processes: list[Process], timeout: float) -> None:
        threads = [threading.Thread(target=p.wait_stopped, args=(timeout,)) for p in processes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    # -- the REST API

    def api(self, method: str, path: str, body: object = None, timeout: float = 30) -> dict:
        """Call the API server (auth: SimpleAuthManager with all users admins, no token needed);
        an HTTP error raises ClusterError with the response's body."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.api_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=timeout) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as error:
            raise ClusterError(
                f"{method} {path}: HTTP {error.code}: {error.read().decode(errors='replace')[:2000]}"
            ) from None
        return json.loads(text) if text else {}

    # -- DAG files, runs, XCom

    def put_dag(self, name: str, source: str, timeout: float = 90) -> list[str]:
        """Write `name`.py into the shared dags folder and wait until the dag-processor has parsed
        this version of it; return the ids of the DAGs it defines. An import error fails with its
        stack trace. The workers parse the same file when they run a task: a DAG file reads its
        settings from its own source or from the environment all processes share (common_env())."""
        filename = name if name.endswith(".py") else f"{name}.py"
        if not ("airflow" in source.lower() and "dag" in source.lower()):
            # [core] dag_discovery_safe_mode: the dag-processor skips such a file without a word
            raise ClusterError(f"{filename} does not name both 'airflow' and 'dag': the dag-processor would skip it")
        target = self.dags_folder / filename
        staged = self.dags_folder / f".{filename}.staged"
        staged.write_text(source)
        written = datetime.now(timezone.utc)
        os.replace(staged, target)  # the processor never sees half a file
        deadline = time.monotonic() + timeout
        while True:
            self.processes["dag-processor"].check_alive()
            errors = self.api("GET", "/api/v2/importErrors?limit=100").get("import_errors", [])
            for error in errors:
                if Path(error["filename"]).name == filename and _parse_time(error["timestamp"]) >= written:
                    raise ClusterError(f"{filename} failed to import:\n{error['stack_trace']}")
            dags = self.api("GET", "/api/v2/dags?limit=1000").get("dags", [])
            parsed = [
                dag["dag_id"]
                for dag in dags
                if Path(dag.get("fileloc") or "").name == filename
                and dag.get("last_parsed_time")
                and _parse_time(dag["last_parsed_time"]) >= written
            ]
            if parsed:
                return sorted(parsed)
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"{filename} was not parsed into a DAG within {timeout:.0f}s; "
                    f"the last lines of the dag-processor's log:\n{self.processes['dag-processor'].tail(15)}"
                )
            time.sleep(0.5)

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        """Unpause the DAG and trigger a run now; return its run id."""
        self.api("PATCH", f"/api/v2/dags/{_q(dag_id)}", {"is_paused": False})
        run = self.api("POST", f"/api/v2/dags/{_q(dag_id)}/dagRuns", {"logical_date": None, "conf": conf or {}})
        self._trigger_times[(dag_id, run["dag_run_id"])] = time.monotonic()
        return run["dag_run_id"]

    def wait(self, dag_id: str, run_id: str, timeout: float = 240) -> DagRunResult:
        """Wait until the run is success or failed; then its state and each task instance's."""
        started = self._trigger_times.get((dag_id, run_id), time.monotonic())
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            run = self.api("GET", f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}")
            if run["state"] in FINISHED:
                seconds = time.monotonic() - started
                break
            if time.monotonic() > deadline:
                tasks = {key: task.state for key, task in self.task_runs(dag_id, run_id).items()}
                tails = "\n\n".join(
                    f"--- the last lines of {self.processes[name].log}:\n{self.processes[name].tail(30)}"
                    for name in ("scheduler", *self.workers)
                )
                raise ClusterError(
                    f"{dag_id} run {run_id} still {run['state']} after {timeout:.0f}s; tasks: {tasks}\n{tails}"
                )
            time.sleep(0.5)
        return DagRunResult(dag_id, run_id, run["state"], self.task_runs(dag_id, run_id), seconds)

    def task_runs(self, dag_id: str, run_id: str) -> dict[str, TaskRun]:
        path = f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances?limit=1000"
        found = {}
        for ti in self.api("GET", path)["task_instances"]:
            map_index = ti.get("map_index", -1)
            key = ti["task_id"] if map_index < 0 else f"{ti['task_id']}[{map_index}]"
            worker, logs = self._logs(dag_id, run_id, ti["task_id"], map_index, ti.get("try_number") or 0)
            found[key] = TaskRun(
                task_id=ti["task_id"],
                map_index=map_index,
                state=ti.get("state"),
                try_number=ti.get("try_number") or 0,
                hostname=ti.get("hostname") or "",
                queue=ti.get("queue"),
                worker=worker,
                logs=logs,
            )
        return found

    def _logs(
        self, dag_id: str, run_id: str, task_id: str, map_index: int, tries: int
    ) -> tuple[str | None, tuple[str, ...]]:
        """Each try's log from the worker log folder that holds it (the workers share no disk, and
        do not serve their logs: the tests read their folders)."""
        relative = Path(f"dag_id={dag_id}", f"run_id={run_id}", f"task_id={task_id}")
        if map_index >= 0:
            relative /= f"map_index={map_index}"
        worker, logs = None, []
        for attempt in range(1, tries + 1):
            text = ""
            for name, each in self.workers.items():
                path = each.log_folder / relative / f"attempt={attempt}.log"
                if path.exists():
                    text, worker = render_log(path.read_text(errors="replace")), name
                    break
            logs.append(text)
        return worker, tuple(logs)

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1) -> object:
        """The XCom value as the task pushed it (JSON-decoded); ClusterError when there is none."""
        path = (
            f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}/xcomEntries/{_q(key)}"
            f"?map_index={map_index}&deserialize=true&stringify=false"
        )
        return self.api("GET", path)["value"]


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
