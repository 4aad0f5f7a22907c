"""Start a real one-node SLURM (slurmctld + slurmd) for tests, and stop it afterwards.

Needs root and slurm-wlm; when ``slurmctld`` is missing it runs
``apt-get install -y slurm-wlm`` (CI must never skip the SLURM tests). Everything lives
under a temporary folder; clients find it through ``SLURM_CONF``.
Job ids start at a random number: MPICH names its shared memory after the PMI job id,
so a restarted cluster reusing ids could meet segments left by an aborted earlier job.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["LocalSlurm", "ensure_slurm_installed"]

_CONF = """\
ClusterName=hpcacqtest
FirstJobId={first_job_id}
SlurmctldHost={host}
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
MpiDefault=pmi2
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
ReturnToService=2
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
KillWait=30
MinJobAge=600
InactiveLimit=0
SchedulerType=sched/backfill
NodeName={host} CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def ensure_slurm_installed() -> None:
    """Install slurm-wlm with apt-get when ``slurmctld`` is missing (we are root in CI)."""
    if shutil.which("slurmctld"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "slurm-wlm"], check=True, env=env)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


class LocalSlurm:
    """A running one-node cluster; ``env`` is the environment for sbatch/squeue/scancel."""

    def __init__(self, root: Path, *, cpus: int = 2):
        self.root = Path(root)
        self.host = socket.gethostname().split(".")[0]
        self.cpus = cpus
        self.conf = self.root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.procs: list[subprocess.Popen] = []

    def start(self, timeout_s: float = 60.0) -> LocalSlurm:
        for sub in ("state", "spool"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(_CONF.format(host=self.host, root=self.root, cpus=self.cpus,
                                          ctld_port=_free_port(), slurmd_port=_free_port(),
                                          first_job_id=random.randint(10_000, 9_000_000)))
        for cmd in (["slurmctld", "-D", "-i"], ["slurmd", "-D"]):
            log = open(self.root / f"{cmd[0]}.stdout", "wb")
            self.procs.append(subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT))
        self._wait_idle(timeout_s)
        return self

    def _wait_idle(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        state = ""
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args[0]} exited ({proc.returncode}); see {self.root}: {self.logs()}")
            state = self.run("sinfo", "-h", "-o", "%T", check=False).stdout.strip()
            if state == "idle":
                return
            time.sleep(0.5)
        raise RuntimeError(f"node not idle after {timeout_s} s (state {state!r}): {self.logs()}")

    def logs(self) -> str:
        parts = []
        for name in ("slurmctld.log", "slurmd.log"):
            path = self.root / name
            if path.exists():
                parts.append(f"--- {name}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    def run(self, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        """Run a SLURM client command against this cluster."""
        return subprocess.run(list(args), env={**self.env, **(env or {})}, capture_output=True, text=True,
                              check=check, timeout=60)

    def submit(self, script: Path, *, env: dict | None = None, cwd: Path | None = None) -> str:
        """``sbatch --parsable SCRIPT``; returns the job id."""
        out = subprocess.run(["sbatch", "--parsable", str(script)], env={**self.env, **(env or {})},
                             capture_output=True, text=True, check=True, timeout=60, cwd=cwd)
        return out.stdout.strip().split(";")[0]

    def job_state(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` as a dict (JobState, ExitCode, ...)."""
        text = self.run("scontrol", "-o", "show", "job", job_id, check=False).stdout
        fields = {}
        for word in text.split():
            key, sep, value = word.partition("=")
            if sep and key not in fields:
                fields[key] = value
        return fields

    def wait(self, job_id: str, timeout_s: float = 300.0, *, until=("COMPLETED", "FAILED", "CANCELLED",
                                                                    "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY")) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self.job_state(job_id)
            if state.get("JobState") in until:
                return state
            time.sleep(0.5)
        raise TimeoutError(f"job {job_id} still {self.job_state(job_id).get('JobState')} after {timeout_s} s")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
