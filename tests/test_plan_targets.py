"""``plan --target``: the real GPU and TPU compilers, deviceless, on this CPU host.

The compile tests need the ``gpu-plan`` / ``tpu-plan`` extras and skip cleanly without them.
"""

import configparser
import importlib.util

import pytest

from gatortron_jax.core.errors import ConfigError
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.planning import collectives, planner, roofline, targets

TINY = EncoderConfig(vocab_size=512, hidden_size=64, num_layers=1, num_heads=4, mlp_dim=256,
                     max_position_embeddings=64, dropout_rate=0.0, attention_dropout_rate=0.0, dtype="bfloat16")
# One fp32 embedding table of 4M x 1024 rows = 16 GiB of params: too big for a v5e chip (16 GiB)
# and, at 12M rows (48 GiB), for a 40 GB A100 -- cheap to compile (one layer, predict step).
HUGE_VOCAB = TINY.replace(hidden_size=1024, mlp_dim=1024, vocab_size=4 * 1024 * 1024)

HAS_GPU_PLAN = importlib.util.find_spec("jax_plugins.xla_cuda12") is not None
HAS_TPU_PLAN = importlib.util.find_spec("libtpu") is not None
needs_gpu = pytest.mark.skipif(not HAS_GPU_PLAN, reason=f"gpu-plan extra not installed: {targets.GPU_PLAN_INSTALL}")
needs_tpu = pytest.mark.skipif(not HAS_TPU_PLAN, reason=f"tpu-plan extra not installed: {targets.TPU_PLAN_INSTALL}")


def test_target_names_map_to_topologies_and_datasheet_numbers():
    # Cloud product sizes: v5p/v4 count TensorCores (2 per chip), v5e counts chips.
    assert targets.get_target("tpu-v5p-256").topology == "v5:4x4x8"
    assert targets.get_target("tpu-v5p-256").num_devices == 128
    assert targets.get_target("tpu-v5p-128", num_slices=2).num_devices == 128
    assert targets.get_target("tpu-v4-8").topology == "v4:2x2x1"
    assert targets.get_target("tpu-v5e-256").topology == "v5e:16x16"
    assert targets.get_target("tpu-v5e-8").topology == "v5e:2x4"
    h100 = targets.get_target("h100")
    assert h100.platform == "gpu" and h100.num_devices is None and h100.bf16_flops_per_s == 989e12
    for bad in ("tpu-v5p-100", "v100", "tpu-v6-8"):
        with pytest.raises(ConfigError):
            targets.get_target(bad)
    with pytest.raises(ConfigError, match="num_slices"):
        targets.get_target("h100", num_slices=2)


def test_gpu_specs_ship_as_package_data_and_agree_with_the_targets(repo_root):
    cfg = configparser.ConfigParser()
    cfg.read(repo_root / "setup.cfg")
    assert "gpu_specs/*.txtpb" in cfg["options.package_data"]["gatortron_jax.planning"]
    for name in ("h100", "a100-80g", "a100-40g"):
        t = targets.get_target(name)
        text = targets.gpu_target_config(t)
        assert f"device_memory_size: {t.hbm_bytes}" in text and t.device_kind in text
        assert "collective_memory_granularity:" not in text  # a field the pinned XLA rejects


def test_missing_extra_is_one_error_naming_the_pip_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "libtpu" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'libtpu==0\.0\.42\.\*'"):
        targets.target_devices(targets.get_target("tpu-v5e-4"))


_ASYNC_HLO = """HloModule m

%add (x: f32[], y: f32[]) -> f32[] {
  %x = f32[] parameter(0)
  %y = f32[] parameter(1)
  ROOT %a = f32[] add(%x, %y)
}

%all-reduce-scatter.1 (input_0: f32[8,16]) -> f32[2,16] {
  %input_0 = f32[8,16]{1,0:T(8,128)} parameter(0)
  %all-reduce.3 = f32[8,16]{1,0:T(8,128)} all-reduce(%input_0), channel_id=3, replica_groups=mesh['axis_0'=2,'axis_1'=4], device_ids=([4,2]T(1,0)) {'axis_1'}, use_global_device_ids=true, to_apply=%add
  ROOT %ds = f32[2,16]{1,0} dynamic-slice(%all-reduce.3, %i, %j), dynamic_slice_sizes={2,16}
}

ENTRY %main (a: f32[4,16], b: bf16[4,16], c: f32[8,16]) -> f32[16,16] {
  %a = f32[4,16]{1,0} parameter(0)
  %b = bf16[4,16]{1,0} parameter(1)
  %c = f32[8,16]{1,0} parameter(2)
  %ags = ((f32[4,16]{1,0}, bf16[4,16]{1,0}), (f32[16,16]{1,0}, bf16[16,16]{1,0})) all-gather-start(%a, %b), channel_id=1, replica_groups=[2,4]<=[8], dimensions={0}
  %agd = (f32[16,16]{1,0}, bf16[16,16]{1,0}) all-gather-done(%ags)
  %ars = (f32[4,16]{1,0}, bf16[4,16]{1,0}) all-reduce-start(%a, %b), channel_id=2, replica_groups=[4,2]<=[2,4]T(1,0), to_apply=%add
  %ard = (f32[4,16]{1,0}, bf16[4,16]{1,0}) all-reduce-done(%ars)
  %rs = f32[2,16]{1,0} fusion(%c), kind=kCustom, calls=%all-reduce-scatter.1
  ROOT %r = f32[16,16]{1,0} get-tuple-element(%agd), index=0
}
"""


def test_collective_parser_normalises_async_pairs_combined_ops_and_tpu_reduce_scatter():
    c = collectives.collective_bytes(_ASYNC_HLO, 8, host_of=[0, 0, 0, 0, 1, 1, 1, 1])
    ag, ar, rs = c["all-gather"], c["all-reduce"], c["reduce-scatter"]
    # One combined all-gather of two tensors (start counted once, done ignored); results only.
    assert (ag["count"], ag["tensors"]) == (1, 2)
    assert ag["result_bytes"] == 16 * 16 * 4 + 16 * 16 * 2
    assert ag["wire_bytes"] == pytest.approx(ag["result_bytes"] * 3 / 4)
    assert ag["slow_wire_bytes"] == 0  # groups {0..3}, {4..7}: each inside one host
    # all-reduce-start's type is its result (no operand half); groups [4,2]<=[2,4]T(1,0) are
    # {0,4},{1,5},...: every pair spans the two hosts.
    assert ar["result_bytes"] == 4 * 16 * 4 + 4 * 16 * 2 and ar["count"] == 1
    assert ar["slow_wire_bytes"] == ar["wire_bytes"] == pytest.approx(2 * ar["operand_bytes"] / 2)
    # TPU's reduce-scatter: an all-reduce inside %all-reduce-scatter.*, over mesh axis_1 (4 devices).
    assert rs["count"] == 1 and c["all-reduce"]["count"] == 1
    assert rs["result_bytes"] == 8 * 16 * 4 / 4 and rs["wire_bytes"] == pytest.approx(8 * 16 * 4 * 3 / 4)
    groups = collectives.replica_groups("replica_groups=mesh['axis_0'=2,'axis_1'=4], device_ids=([4,2]T(1,0)) "
                                        "{'axis_1'}", 8)
    assert groups.tolist() == [[0, 2, 4, 6], [1, 3, 5, 7]]


def test_roofline_is_compute_or_communication_bound_with_stated_numbers():
    t = targets.get_target("h100")
    flops = {"model": 8 * 989e12 * 0.4, "with_remat": 8 * 989e12 * 0.5}
    coll = {"all-gather": {"wire_bytes": 45e9, "slow_wire_bytes": 0.0}}
    est = roofline.estimate(t, flops, 8, coll, tokens_per_step=1e6, hfu=0.5)
    assert est["compute_s"] == pytest.approx(1.0) and est["communication_s"] == pytest.approx(0.1)
    assert est["bound"] == "compute" and est["tokens_per_s"] == pytest.approx(1e6)
    assert est["mfu"] == pytest.approx(0.4)
    slow = roofline.estimate(t, flops, 8, {"all-reduce": {"wire_bytes": 100e9, "slow_wire_bytes": 100e9}}, 1e6)
    assert slow["bound"] == "communication" and slow["step_s"] == pytest.approx(2.0)


def _request(step="train", batch=8, mesh="fsdp=2"):
    return planner.PlanRequest(mesh=planner.parse_mesh(mesh), batch=batch, seq_len=32, max_predictions=4, step=step)


@needs_gpu
def test_h100_deviceless_train_step_is_the_gpu_compilers_not_the_cpu_proxys():
    gpu = planner.plan(TINY, _request(), target=targets.get_target("h100"), keep_hlo=True)
    cpu = planner.plan(TINY, _request(), keep_hlo=True)
    assert gpu["device_kind"] == "NVIDIA H100 80GB HBM3" and gpu["platform"] == "gpu"
    hlo = gpu["hlo_text"]
    # GPU-only constructs: async collective pairs and cuBLAS/Triton GEMMs; none in the CPU program.
    assert "all-gather-start(" in hlo or "reduce-scatter-start(" in hlo
    assert '"kind":"__triton' in hlo or "__cublas$gemm" in hlo  # Triton fusions / cuBLAS GEMMs
    assert "-start(" not in cpu["hlo_text"] and "__cublas" not in cpu["hlo_text"]
    mg, mc = gpu["memory_per_device"], cpu["memory_per_device"]
    assert all(mg[k] > 0 for k in ("arguments", "outputs", "temporaries", "total"))
    assert mg["temporaries"] != mc["temporaries"]
    assert mg["arguments"] == pytest.approx(mc["arguments"], rel=0.05)  # same sharded state + batch
    assert gpu["fits"] is True and gpu["hbm_bytes"] == targets.get_target("h100").hbm_bytes
    wire = sum(c["wire_bytes"] for c in gpu["collectives_per_device"].values())
    assert wire > 0.5 * mg["params"]  # fsdp=2 gathers (half of) every weight at least once
    assert gpu["roofline"]["tokens_per_s"] > 0 and gpu["xla_cost_analysis_flops_per_device"] is None


@needs_tpu
def test_tpu_deviceless_train_step_uses_tpu_layouts_and_its_own_memory():
    tpu = planner.plan(TINY, _request(mesh="data=2,fsdp=2"), target=targets.get_target("tpu-v5e-4"), keep_hlo=True)
    assert tpu["device_kind"] == "TPU v5 lite" and tpu["num_devices"] == 4
    assert ":T(8,128)" in tpu["hlo_text"]  # TPU tiled layouts
    mem = tpu["memory_per_device"]
    assert all(mem[k] > 0 for k in ("arguments", "temporaries", "total")) and tpu["fits"] is True
    assert tpu["xla_cost_analysis_flops_per_device"] > 0
    with pytest.raises(ConfigError, match="has 4 chips"):
        planner.plan(TINY, _request(mesh="data=8"), target=targets.get_target("tpu-v5e-4"))


@needs_tpu
def test_tpu_not_fitting_is_the_compilers_own_verdict():
    r = planner.plan(HUGE_VOCAB, _request("predict", batch=1, mesh="data=1"), target=targets.get_target("tpu-v5e-1"))
    assert r["fits"] is False and "RESOURCE_EXHAUSTED" in r["compiler_message"]
    text = planner.format_report(r)
    assert "DOES NOT FIT" in text and "compiler refused" in text


@needs_gpu
def test_gpu_not_fitting_compares_the_compilers_memory_with_hbm():
    cfg = HUGE_VOCAB.replace(vocab_size=12 * 1024 * 1024)
    r = planner.plan(cfg, _request("predict", batch=1, mesh="data=1"), target=targets.get_target("a100-40g"))
    mem = r["memory_per_device"]
    assert r["fits"] is False and mem["total"] > r["hbm_bytes"] == targets.get_target("a100-40g").hbm_bytes
    assert mem["arguments"] >= 12 * 1024 * 1024 * 1024 * 4
    assert "DOES NOT FIT" in planner.format_report(r)


def test_search_prunes_larger_batches_after_the_first_miss_and_ranks_by_tokens_per_s():
    # plan_fn stands in for the compiler with a memory that grows with the batch (what
    # search relies on), so the pruning and ranking are checked without compiles.
    from gatortron_jax.planning import search

    target = targets.get_target("tpu-v5e-8")
    seen = []

    def plan_fn(cfg, request, target):
        per_dev = request.batch // (request.mesh["data"] * request.mesh["fsdp"])
        seen.append((request.mesh["tensor"], cfg.remat_policy, per_dev))
        total = per_dev * (2 if cfg.remat_policy == "dots" else 1) * 2**30
        fits = total <= target.hbm_bytes
        tps = per_dev * 1000.0 / (1.3 if cfg.remat_policy == "full" else 1.0) / request.mesh["tensor"]
        return {"memory_per_device": {"total": total}, "fits": fits, "hbm_bytes": target.hbm_bytes,
                "roofline": {"tokens_per_s": tps, "mfu": 0.4}}

    found = search.search(plan_fn, TINY, target, 8, 32, batches=(4, 8, 16, 32), remats=("dots", "full"))
    assert (1, "dots", 16) in seen and (1, "dots", 32) not in seen  # 16 (32 GiB) missed: 32 never compiled
    best = found[0]
    assert best.fits and best.remat == "full" and best.per_device_batch == 16 and best.mesh["tensor"] == 1
    assert not found[-1].fits
    assert "best: --mesh data=1,fsdp=8,tensor=1 --remat full --batch 128" in search.format_search(found, target, 32)

    # a compute-bound estimate is flat in the batch: the tie goes to the largest batch that fits
    def flat(cfg, request, target):
        out = plan_fn(cfg, request, target)
        return {**out, "roofline": {"tokens_per_s": 1000.0 / request.mesh["tensor"], "mfu": 0.4}}

    found = search.search(flat, TINY, target, 8, 32, batches=(4, 8, 16, 32), remats=("dots",))
    assert (found[0].remat, found[0].per_device_batch, found[0].mesh["tensor"]) == ("dots", 8, 1)


def test_cli_names_the_install_command_when_the_extra_is_missing(monkeypatch, capsys):
    from gatortron_jax.cli import main as cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "libtpu" else real(name, *a))
    rc = cli.main(["plan", "--gin_file=gin/models/tiny.gin", "--target", "tpu-v5e-4", "--mesh", "data=4",
                   "--batch=8", "--seq=32", "--no_cpu_proxy"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["error: --target tpu-v5e-4 needs the TPU compiler: pip install 'libtpu==0.0.42.*'"]
    rc = cli.main(["plan", "--gin_file=gin/models/tiny.gin", "--target", "tpu-v6-8"])
    assert rc == 2 and "expected one of h100" in capsys.readouterr().err


_TPU_LOOP_HLO = """HloModule m

%cond (p: (s32[], f32[4,8])) -> pred[] {
  %c = s32[]{:T(128)} constant(7)
  %p = (s32[], f32[4,8]) parameter(0)
  %i = s32[]{:T(128)} get-tuple-element(%p), index=0
  ROOT %lt = pred[]{:T(512)} compare(%i, %c), direction=LT
}

%body (q: (s32[], f32[4,8])) -> (s32[], f32[4,8]) {
  %q = (s32[], f32[4,8]) parameter(0)
  %w = f32[4,8]{1,0:T(8,128)} get-tuple-element(%q), index=1
  %ag = f32[16,8]{1,0:T(8,128)} all-gather(%w), channel_id=1, replica_groups=[2,4]<=[8], dimensions={0}
  ROOT %t = (s32[], f32[4,8]) tuple(%i, %w)
}

ENTRY %main (a: (s32[], f32[4,8])) -> (s32[], f32[4,8]) {
  %a = (s32[], f32[4,8]) parameter(0)
  ROOT %w = (s32[], f32[4,8]) while(%a), condition=%cond, body=%body
}
"""


def test_tpu_loops_without_known_trip_count_use_the_condition_bound():
    c = collectives.collective_bytes(_TPU_LOOP_HLO, 8)
    assert c["all-gather"]["count"] == 7 and c["all-gather"]["result_bytes"] == 7 * 16 * 8 * 4


def test_finetune_and_predict_steps_plan_on_the_cpu_proxy():
    ft = planner.plan(TINY, _request("finetune", mesh="data=2"))
    pr = planner.plan(TINY, _request("predict", mesh="data=2"))
    assert ft["step"] == "finetune" and pr["step"] == "predict"
    mf, mp = ft["memory_per_device"], pr["memory_per_device"]
    assert mf["opt_state"] == pytest.approx(2 * mf["params"], rel=0.01)  # Adam's two moments
    assert mp["opt_state"] == 0 and mp["params"] == mf["params"] and mp["total"] < mf["total"]
    assert ft["flops_per_step"]["model"] == pytest.approx(3 * pr["flops_per_step"]["model"])  # fwd + bwd
    assert "tagger head (forward only" in planner.format_report(pr)
