"""Two real processes on loopback (CPU, gloo collectives, jax.distributed) behave as one.

1. Equivalence: 2 processes x 2 simulated devices, each feeding only its own rows of a fixed
   global batch, produce the same losses and parameters as one process with 4 devices on the
   same (data=2, fsdp=2) mesh. The single-process run also shows that a batch with rows in
   the wrong place changes the loss by far more than the tolerance, so a process that fed the
   wrong rows (or drew different dropout) would fail the test.
2. The real CLI: ``gatortron-jax pretrain --coordinator_address ... --num_processes 2
   --process_id I`` on the shipped sample; both exit 0 and write one checkpoint together.
"""

import importlib.util
import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
WORKER = HERE / "multiprocess_worker.py"
TIMEOUT_S = 420


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices: int) -> dict:
    return dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
                TF_CPP_MIN_LOG_LEVEL="2")


def _run_all(cmds: list[list[str]], cwd, logs: list[pathlib.Path], env: dict) -> list[int]:
    """Start every command, wait (bounded) for all; kill the rest if one fails or time runs out."""
    procs = []
    try:
        for cmd, log in zip(cmds, logs):
            procs.append(subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT))
        deadline = time.time() + TIMEOUT_S
        while time.time() < deadline:
            codes = [p.poll() for p in procs]
            if all(c is not None for c in codes) or any(c not in (None, 0) for c in codes):
                break
            time.sleep(0.5)
        return [p.poll() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)


def _tails(logs) -> str:
    return "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs if log.exists())


def test_two_processes_match_single_process(tmp_path):
    port = _free_port()
    outs = [tmp_path / f"proc{i}.json" for i in range(2)]
    logs = [tmp_path / f"proc{i}.log" for i in range(2)]
    cmds = [[sys.executable, str(WORKER), "--out", str(outs[i]), "--devices", "2",
             "--coordinator", f"127.0.0.1:{port}", "--num_processes", "2", "--process_id", str(i)] for i in range(2)]
    procs = []
    try:
        for cmd, log in zip(cmds, logs):
            procs.append(subprocess.Popen(cmd, cwd=HERE.parent, env=_env(2), stdout=log.open("w"),
                                          stderr=subprocess.STDOUT))
        # Meanwhile, the single-process reference here (4 of this session's 8 devices).
        import jax

        spec = importlib.util.spec_from_file_location("multiprocess_worker", WORKER)
        worker = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(worker)
        single = worker.run(devices=jax.devices()[:4])
        deadline = time.time() + TIMEOUT_S
        for p in procs:
            p.wait(timeout=max(deadline - time.time(), 1))
    except subprocess.TimeoutExpired:
        pytest.fail("multi-process workers timed out\n" + _tails(logs))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
    assert [p.returncode for p in procs] == [0, 0], _tails(logs)
    multi = [json.loads(o.read_text()) for o in outs]

    assert [m["process_index"] for m in multi] == [0, 1]
    assert all(m["process_count"] == 2 and m["mesh_devices"] == 4 for m in multi)
    assert multi[0]["local_rows"] == [0, 1, 2, 3] and multi[1]["local_rows"] == [4, 5, 6, 7]
    assert single["local_rows"] == list(range(8))
    # Sensitivity: misplaced rows move the loss by much more than the tolerance below.
    assert abs(single["perturbed_eval_loss"] - single["eval_loss"]) > 1e-3
    for m in multi:
        assert m["losses"] == pytest.approx(single["losses"], rel=1e-5, abs=1e-6)
        assert m["eval_loss"] == pytest.approx(single["eval_loss"], rel=1e-5)
        assert m["param_checksum"] == pytest.approx(single["param_checksum"], rel=1e-5)
    assert single["losses"][-1] < single["losses"][0]  # it trained


@pytest.mark.slow  # two full CLI start-ups (TensorFlow + seqio + compile): ~1.5-2.5 min on 2 cores
def test_cli_pretrain_two_processes_checkpoint_once(repo_root, tmp_path):
    model_dir = tmp_path / "run"
    port = _free_port()
    exe = pathlib.Path(sys.executable).with_name("gatortron-jax")
    common = [
        "pretrain", "--gin_file=gin/pretrain/sample_tiny.gin", f"--model_dir={model_dir}",
        "--gin.TrainConfig.num_steps=3", "--gin.TrainConfig.batch_size=4", "--gin.TrainConfig.seq_len=32",
        "--gin.TrainConfig.log_every=1", "--gin.TrainConfig.eval_every=3", "--gin.TrainConfig.eval_batches=2",
        "--gin.MLMDataConfig.validate_corpus=False",
        f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
    ]
    logs = [tmp_path / f"pretrain{i}.log" for i in range(2)]
    codes = _run_all([[str(exe), *common, f"--process_id={i}"] for i in range(2)], repo_root, logs, _env(2))
    assert codes == [0, 0], _tails(logs)
    out = [log.read_text() for log in logs]
    for text in out:
        assert "step 3/3 | loss" in text
        assert "4 global devices" in text
    assert "mesh {'data': 4, 'fsdp': 1, 'tensor': 1}" in out[0]
    # Both hosts log the same (globally reduced) loss.
    loss_lines = [[line.split("| loss ")[1].split(" ")[0] for line in t.splitlines() if "step 3/3 | loss" in line]
                  for t in out]
    assert loss_lines[0] == loss_lines[1]
    # One checkpoint, written cooperatively: a single committed step directory.
    assert sorted(os.listdir(model_dir / "checkpoints")) == ["3"]
    step_dir = model_dir / "checkpoints" / "3"
    assert (step_dir / "state").is_dir() and (step_dir / "meta").is_dir()
    assert not list((model_dir / "checkpoints").glob("*.orbax-checkpoint-tmp*"))
    assert json.loads((model_dir / "config.json").read_text())["mesh"] == {"data": 4, "fsdp": 1, "tensor": 1}


def _free_slurm_job_id() -> int:
    """A job id whose JAX-derived SLURM coordinator port (61440 + id % 4096) is free now."""
    import random

    for _ in range(200):
        job = random.randrange(10**6)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", 61440 + job % 4096))
                return job
            except OSError:
                continue
    raise RuntimeError("no free port in JAX's SLURM range")


def test_slurm_env_one_process_per_node_uses_every_local_device(tmp_path):
    """SLURM-style launch on loopback: 2 "nodes" (processes) x 2 devices, one task per node.

    JAX alone would set local_device_ids=[SLURM_LOCALID]=[0] (one GPU per node); ours passes
    every device of the node, and the mesh holds all 4 devices of both processes.
    """
    job = _free_slurm_job_id()
    outs = [tmp_path / f"slurm{i}.json" for i in range(2)]
    logs = [tmp_path / f"slurm{i}.log" for i in range(2)]
    procs = []
    try:
        for i in range(2):
            env = {k: v for k, v in _env(2).items() if not k.startswith(("SLURM_", "JAX_COORDINATOR", "JAX_LOCAL"))}
            env.update(SLURM_JOB_ID=str(job), SLURM_STEP_NODELIST="127.0.0.1", SLURM_NTASKS="2",
                       SLURM_PROCID=str(i), SLURM_LOCALID="0", SLURM_NODEID=str(i), SLURM_NTASKS_PER_NODE="1",
                       SLURM_GPUS_ON_NODE="2")
            cmd = [sys.executable, str(WORKER), "--out", str(outs[i]), "--devices", "2", "--slurm", "--steps", "1"]
            procs.append(subprocess.Popen(cmd, cwd=HERE.parent, env=env, stdout=logs[i].open("w"),
                                          stderr=subprocess.STDOUT))
        for p in procs:
            p.wait(timeout=TIMEOUT_S)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
    assert [p.returncode for p in procs] == [0, 0], _tails(logs)
    got = [json.loads(o.read_text()) for o in outs]
    assert [g["process_index"] for g in got] == [0, 1]
    for g in got:
        assert g["env_local_device_ids"] == [0, 1]  # all of the node's devices, not [SLURM_LOCALID]
        assert len(g["local_devices"]) == 2 and g["global_devices"] == 4 and g["mesh_devices"] == 4
        assert set(g["local_devices"]) <= set(g["mesh_device_ids"])  # every local device is in the mesh
    assert got[0]["mesh_device_ids"] == got[1]["mesh_device_ids"] and len(set(got[0]["mesh_device_ids"])) == 4
    assert got[0]["losses"] == got[1]["losses"]
    text = logs[0].read_text()
    assert "2 local devices" in text and "4 global devices" in text


def test_local_device_ids_from_env():
    from gatortron_jax.core.distributed import local_device_ids_from_env

    slurm = {"SLURM_JOB_ID": "1", "SLURM_GPUS_ON_NODE": "8"}
    assert local_device_ids_from_env(slurm) == list(range(8))  # one task per node (default)
    assert local_device_ids_from_env({**slurm, "SLURM_NTASKS_PER_NODE": "1"}) == list(range(8))
    assert local_device_ids_from_env({**slurm, "SLURM_NTASKS_PER_NODE": "8"}) is None  # one task per GPU: JAX's rule
    assert local_device_ids_from_env({**slurm, "JAX_LOCAL_DEVICE_IDS": "0,1,2,3"}) == [0, 1, 2, 3]
    assert local_device_ids_from_env({}) is None


def test_distributed_initialize_reads_env(monkeypatch):
    import jax

    from gatortron_jax.core import distributed

    seen = {}
    monkeypatch.setattr(jax.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: seen.update(kw))
    monkeypatch.setattr(jax.config, "update", lambda *a: None)  # leave this process's CPU collectives alone
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "node0:1234")
    monkeypatch.setenv("JAX_NUM_PROCESSES", "4")
    monkeypatch.setenv("JAX_PROCESS_ID", "3")
    distributed.initialize()
    assert (seen["coordinator_address"], seen["num_processes"], seen["process_id"]) == ("node0:1234", 4, 3)
    distributed.initialize("explicit:1", 2, 0)  # explicit flags win over the environment
    assert (seen["coordinator_address"], seen["num_processes"], seen["process_id"]) == ("explicit:1", 2, 0)
