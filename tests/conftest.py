"""Test session set-up: 8 simulated CPU devices (must happen before JAX is imported), and the
session fixtures tests share (paths, and tiny models built once instead of once per test)."""

import os

_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
    os.environ["XLA_FLAGS"] = (_flags + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One XLA compilation cache for the session, shared with the CLI subprocesses the tests start:
# the same tiny models are compiled by many tests (each builds its own jitted functions), and a
# cached program is the one XLA would compile, so no number moves. Removed at exit.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    import atexit
    import shutil
    import tempfile

    _cache = tempfile.mkdtemp(prefix="gatortron_jax_test_xla_cache_")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
    atexit.register(shutil.rmtree, _cache, True)

import pathlib  # noqa: E402

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# Property tests never fail on time: no per-example deadline and no "generation too slow"
# health check, both of which a busy machine crosses. A test's own @settings inherit these.
settings.register_profile("no_timing", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("no_timing")

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_pretrained(repo_root, tmp_path_factory) -> pathlib.Path:
    """A random 'pretrained' tiny MLM model dir (``tiny_models.TINY``), built once per session.

    Read-only for tests: ``--init_checkpoint`` only reads it (write elsewhere, e.g. ``tmp_path``).
    """
    from tiny_models import save_random_mlm_model

    init = tmp_path_factory.mktemp("tiny_pretrained") / "tiny"
    save_random_mlm_model(init, repo_root)
    return init


@pytest.fixture(scope="session")
def tiny_deid_tagger(repo_root, tiny_pretrained, tmp_path_factory):
    """``get(all_subwords) -> (model dir, gold test documents)``: a tiny tagger fine-tuned
    (fp32) from ``tiny_pretrained`` on the synthetic de-id sample, built once per session for each
    labelling. Read-only for tests."""
    from tiny_models import finetune_deid_tagger

    from gatortron_jax.finetuning import ner_tasks

    built: dict[bool, tuple] = {}

    def get(all_subwords: bool) -> tuple[pathlib.Path, list]:
        if all_subwords not in built:
            cwd = os.getcwd()
            os.chdir(repo_root)  # the task's default data dir is relative to the checkout
            try:
                out = tmp_path_factory.mktemp("deid_tagger") / "ner"
                model = finetune_deid_tagger(repo_root, tiny_pretrained, out, all_subwords)
                task = ner_tasks.get_ner_task("i2b2_2014_deid", None, {"train": "train", "dev": "dev", "test": "test"})
                built[all_subwords] = (model, task.documents("test"))
            finally:
                os.chdir(cwd)
        return built[all_subwords]

    return get
