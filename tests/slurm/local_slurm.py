"""A throw-away one-node SLURM cluster on 127.0.0.1, for tests and for trying the profile by hand.

    python tests/slurm/local_slurm.py -- snakemake --workflow-profile profiles/slurm ...

starts the cluster, runs the command with SLURM_CONF set, and stops the daemons afterwards (also
on Ctrl-C or a failure). The tests use `LocalSlurm` from a pytest fixture with a finalizer.

What it does (as root; Debian/Ubuntu):

- installs `slurmctld slurmd slurm-client munge` with `apt-get install -y --no-install-recommends`
  when a binary is missing (without starting the distribution's services);
- writes a one-node configuration into a fresh folder under /tmp: NodeName=localhost
  NodeAddr=127.0.0.1 with 2 CPUs and the machine's memory, SlurmctldHost=localhost(127.0.0.1),
  CommunicationParameters=NoInAddrAny, proctrack/linuxproc, task/none, select/cons_tres, no
  accounting, free ports, state/spool/log folders inside the temporary folder;
- links it to /etc/slurm/slurm.conf: the Snakemake jobstep executor drops every SLURM_* variable
  (SLURM_CONF included) before it runs a job's command, so an `srun` inside a job only finds the
  configuration there. An existing /etc/slurm/slurm.conf that this module did not write is never
  touched: the cluster then refuses to start (the tests skip);
- starts munged (own key and socket), slurmctld and slurmd in the foreground as child processes,
  waits until the node is idle, and on `stop()` cancels the jobs left and ends the three daemons
  by their PIDs.

Anything that makes this impossible raises `Unavailable` with the reason; the tests turn that
into pytest.skip.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
BINARIES = (
    "slurmctld",
    "slurmd",
    "slurmstepd",
    "sbatch",
    "srun",
    "squeue",
    "sinfo",
    "scontrol",
    "scancel",
    "munged",
    "mungekey",
)
ETC_CONF = Path("/etc/slurm/slurm.conf")
MARK = "# written by remoteclip tests/slurm/local_slurm.py"
NODE = "localhost"
PARTITION = "debug"


class Unavailable(RuntimeError):
    """Why no local SLURM cluster can run here."""


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]


def ensure_installed(timeout: int = 900, log=print) -> None:
    """Install Debian's SLURM and munge packages when a binary is missing (root and apt-get only)."""
    missing = missing_binaries()
    if not missing:
        return
    if os.geteuid() != 0:
        raise Unavailable(
            f"SLURM/munge binaries missing ({', '.join(missing)}) and not root, so they cannot be "
            f"installed with apt-get"
        )
    if shutil.which("apt-get") is None:
        raise Unavailable(f"SLURM/munge binaries missing ({', '.join(missing)}) and no apt-get to install them")
    # package scripts must not start the distribution's own daemons (they would outlive the test)
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = not policy.exists()
    if made_policy:
        policy.write_text("#!/bin/sh\n# temporary, remoteclip tests/slurm/local_slurm.py\nexit 101\n")
        policy.chmod(0o755)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    log(f"local_slurm: {' '.join(install)}")
    try:
        proc = subprocess.run(install, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:  # a stale package index: refresh once and retry
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, text=True, timeout=timeout)
            proc = subprocess.run(install, env=env, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise Unavailable(f"apt-get install {' '.join(PACKAGES)} failed: {err}") from None
    finally:
        if made_policy:
            policy.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise Unavailable(
            f"apt-get install {' '.join(PACKAGES)} failed ({proc.returncode}): {(proc.stdout + proc.stderr)[-1500:]}"
        )
    missing = missing_binaries()
    if missing:
        raise Unavailable(f"still missing after apt-get install: {', '.join(missing)}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise Unavailable("cannot read MemTotal from /proc/meminfo")


def _pid_alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


def running_daemons() -> list[str]:
    """SLURM daemons already running on this machine (a real cluster's, or a leftover)."""
    found = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            name = comm.read_text().strip()
        except OSError:
            continue
        if name in ("slurmctld", "slurmd", "slurmdbd"):
            found.append(f"{name} (pid {comm.parent.name})")
    return found


def _which(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


class LocalSlurm:
    """One slurmctld + one slurmd on 127.0.0.1, configured under a fresh temporary folder."""

    def __init__(self, cpus: int = 2, memory_mb: int | None = None, min_job_age: int = 300):
        self.cpus = cpus
        self.memory_mb = memory_mb
        self.min_job_age = min_job_age
        self.root: Path | None = None
        self.procs: dict[str, subprocess.Popen] = {}
        self._linked_etc = False
        self._made_etc_dir = False

    # ---------------------------------------------------------------- configuration
    @property
    def conf(self) -> Path:
        assert self.root is not None
        return self.root / "slurm.conf"

    @property
    def env(self) -> dict:
        """The environment for SLURM client commands (and Snakemake) talking to this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def _config_text(self) -> str:
        r = self.root
        memory = self.memory_mb or max(1024, int(_memory_mb() * 0.9))
        return f"""{MARK}
ClusterName=remoteclip-test
SlurmctldHost={NODE}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
CommunicationParameters=NoInAddrAny
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={r}/munge/munge.socket.2
SlurmUser=root
SlurmdUser=root
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/run/slurmctld.pid
SlurmdPidFile={r}/run/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge={self.min_job_age}
MailProg=/bin/true
NodeName={NODE} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={memory} State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
"""

    def _claim_etc_conf(self) -> None:
        if ETC_CONF.is_symlink() or ETC_CONF.exists():
            ours = ETC_CONF.is_symlink() and (
                not ETC_CONF.exists() or ETC_CONF.read_text(errors="replace").startswith(MARK)
            )
            if not ours:
                raise Unavailable(
                    f"{ETC_CONF} exists and was not written by this test (a real SLURM installation?); not touching it"
                )
            if ETC_CONF.exists():
                # a link to another local cluster: two at once would fight over it, unless its
                # daemons are gone (a killed run)
                other = Path(os.readlink(ETC_CONF)).parent
                alive = [p for p in other.glob("*/*.pid") if _pid_alive(p)]
                if alive:
                    raise Unavailable(
                        f"{ETC_CONF} points to another local test cluster ({other}) whose "
                        f"daemons still run ({', '.join(p.name for p in alive)})"
                    )
            ETC_CONF.unlink()  # stale link of an earlier, killed run
        if not ETC_CONF.parent.exists():
            ETC_CONF.parent.mkdir(parents=True)
            self._made_etc_dir = True
        ETC_CONF.symlink_to(self.conf)
        self._linked_etc = True

    # ---------------------------------------------------------------- life cycle
    def start(self, timeout: float = 60) -> LocalSlurm:
        if os.geteuid() != 0:
            raise Unavailable("the local SLURM cluster runs its daemons as root; not root here")
        ensure_installed()
        others = running_daemons()
        if others:
            raise Unavailable(
                f"SLURM daemons already run here ({', '.join(others)}); a second cluster would "
                f"take over their /etc/slurm/slurm.conf"
            )
        # munged wants every folder on its socket path executable by all: no pytest tmp_path (0700)
        self.root = Path(tempfile.mkdtemp(prefix="remoteclip-slurm-"))
        self.root.chmod(0o755)
        for sub in ("munge", "state", "spool", "log", "run"):
            (self.root / sub).mkdir(mode=0o755)
        atexit.register(self.stop)
        try:
            self.conf.write_text(self._config_text())
            self._claim_etc_conf()
            self._start_munge(timeout)
            self._spawn("slurmctld", [_which("slurmctld"), "-D", "-f", str(self.conf)])
            self._wait(lambda: self._ok(["scontrol", "ping"], "UP"), timeout, "slurmctld to answer")
            self._spawn("slurmd", [_which("slurmd"), "-D", "-N", NODE, "-f", str(self.conf)])
            self._wait(lambda: self.node_state() in ("idle", "mixed", "allocated"), timeout, "the node to be idle")
        except Unavailable:
            self.stop()
            raise
        except (OSError, subprocess.SubprocessError) as err:  # e.g. mungekey failing: say why
            logs = self.logs()
            self.stop()
            raise Unavailable(f"starting the local cluster failed: {err!r}\n{logs}") from err
        except BaseException:
            self.stop()
            raise
        return self

    def _start_munge(self, timeout: float) -> None:
        m = self.root / "munge"
        subprocess.run([_which("mungekey"), "--create", f"--keyfile={m}/munge.key"], check=True, capture_output=True)
        (m / "munge.key").chmod(0o600)
        self._spawn(
            "munged",
            [
                _which("munged"),
                "--foreground",
                "--force",
                f"--socket={m}/munge.socket.2",
                f"--key-file={m}/munge.key",
                f"--pid-file={m}/munged.pid",
                f"--seed-file={m}/munged.seed",
                f"--log-file={self.root}/log/munged.log",
            ],
        )
        self._wait(lambda: (m / "munge.socket.2").exists(), timeout, "munged's socket")

    def _spawn(self, name: str, cmd: list[str]) -> None:
        out = open(self.root / "log" / f"{name}.out", "wb")
        self.procs[name] = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env, start_new_session=True
        )
        out.close()

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise Unavailable(f"{name} exited ({proc.returncode}) while waiting for {what}:\n{self.logs()}")
            if ready():
                return
            time.sleep(0.3)
        raise Unavailable(f"timed out after {timeout:.0f} s waiting for {what}:\n{self.logs()}")

    def _ok(self, cmd: list[str], needle: str) -> bool:
        try:
            proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return proc.returncode == 0 and needle in proc.stdout

    def node_state(self) -> str:
        try:
            proc = subprocess.run(
                ["sinfo", "-h", "-N", "-n", NODE, "-o", "%T"], env=self.env, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return proc.stdout.strip().rstrip("*~#!%$@^-")

    def jobs(self) -> list[str]:
        proc = subprocess.run(["squeue", "-h", "-o", "%i"], env=self.env, capture_output=True, text=True, timeout=10)
        return proc.stdout.split() if proc.returncode == 0 else []

    def logs(self, lines: int = 30) -> str:
        if self.root is None:
            return ""
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            text = _tail(path, lines)
            if text:
                parts.append(f"--- {path.name}\n{text}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancel what is left, then end slurmd, slurmctld and munged by their PIDs. Idempotent."""
        running = {n: p for n, p in self.procs.items() if p.poll() is None}
        if "slurmctld" in running:
            try:
                left = self.jobs()
                if left:
                    subprocess.run(["scancel", *left], env=self.env, capture_output=True, timeout=20)
                    deadline = time.monotonic() + 30
                    while self.jobs() and time.monotonic() < deadline:
                        time.sleep(0.5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.procs.clear()
        if self._linked_etc:
            if ETC_CONF.is_symlink() and os.readlink(ETC_CONF) == str(self.conf):
                ETC_CONF.unlink()
            self._linked_etc = False
            if self._made_etc_dir:
                try:
                    ETC_CONF.parent.rmdir()
                except OSError:
                    pass
                self._made_etc_dir = False
        if self.root is not None and os.environ.get("REMOTECLIP_SLURM_KEEP") != "1":
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> LocalSlurm:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = argv[argv.index("--") + 1 :]
    cluster = LocalSlurm()
    # SIGTERM (e.g. from a CI timeout) unwinds like Ctrl-C, so the daemons are stopped
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        cluster.start()
    except Unavailable as err:
        print(f"local_slurm: no cluster: {err}", file=sys.stderr)
        return 3
    try:
        print(f"local_slurm: cluster up (SLURM_CONF={cluster.conf}); running {' '.join(cmd)}", file=sys.stderr)
        return subprocess.run(cmd, env=cluster.env).returncode
    except KeyboardInterrupt:
        return 130
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
