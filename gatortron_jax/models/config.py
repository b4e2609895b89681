"""Encoder hyper-parameters.

One frozen dataclass describes every GatorTron / BERT shape. Gin binds it at the edge
(`gin/models/*.gin` set ``EncoderConfig.*``); the modules below take it as a plain value so
model code never reads global configuration.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp

from gatortron_jax.core.errors import ConfigError

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}

REMAT_POLICIES = ("none", "full", "dots", "dots_no_batch", "qkv_proj")


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """Shape and numerics of a Megatron-BERT (pre-LN) or classic BERT (post-LN) encoder.

    ``vocab_size`` is the number of embedding rows, which may exceed the tokenizer's
    vocabulary: Megatron pads it to a multiple of 128 x tensor-parallel size (GatorTron-base
    has 50176 rows for ~50101 entries). Padded rows are never predicted by the loss.
    """

    vocab_size: int = 50176
    hidden_size: int = 1024
    num_layers: int = 24
    num_heads: int = 16
    head_dim: int | None = None  # defaults to hidden_size // num_heads
    mlp_dim: int = 4096
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    dropout_rate: float = 0.1
    attention_dropout_rate: float = 0.1
    initializer_range: float = 0.02
    post_ln: bool = False  # False: Megatron/GatorTron pre-LN + final LN; True: classic BERT
    use_pooler: bool = True
    dtype: str = "float32"  # compute dtype of activations and matmuls
    param_dtype: str = "float32"  # master weights
    scan_layers: bool = True  # nn.scan over blocks: compile time independent of depth
    scan_unroll: int = 1  # layers per scan iteration; >1 trades compile time for fewer loop copies
    # One of REMAT_POLICIES. "dots" keeps matmul outputs and recomputes the elementwise ops
    # (GELU, softmax, LN) in the backward pass: less activation memory than "none", and on CPU
    # also faster, because writing those residuals costs more than recomputing them
    # (1.09-1.22x at H256 seq 128 in bench_train --ablations; benchmarks/RESULTS.md).
    remat_policy: str = "dots"
    attention_impl: str | None = None  # None (auto: einsum on CPU, else jax's choice), "einsum", "xla", "cudnn"
    # The platform the program is compiled for, when it is not this process's backend: a
    # deviceless compile for a GPU or TPU from a CPU host (plan --target) sets "gpu" or "tpu" so
    # backend-dependent choices (attention path, output-bias form) follow the target.
    # None: jax.default_backend() at trace time.
    target_platform: str | None = None
    # Inference only: "dynamic_int8" runs the blocks' dense matmuls (q/k/v, attention output, MLP)
    # as int8 x int8 -> int32 with run-time scales (models/quantization.py; 1.44x on those matmuls
    # on XLA:CPU). Params stay fp32; None is the exact fp32/bf16 path. The encoder refuses to
    # train with it set. Set by predict/deid/evaluate --int8 on the loaded config, never stored.
    matmul_quantization: str | None = None
    # fp32 inference on CPU: "auto" compiles deterministic programs with Eigen dots and computes
    # attention scores in cache-sized row blocks (core/compiler_options.py: 1.2x the MiniLM
    # forward of XLA's defaults on the x86 CPUs measured); "xla_default" keeps XLA:CPU's own
    # choices (YNNPACK dots, whole-batch scores), for comparison or a CPU where they win.
    cpu_inference_kernels: str = "auto"

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPES or self.param_dtype not in _DTYPES:
            raise ConfigError(
                f"EncoderConfig: dtype/param_dtype must be one of {sorted(_DTYPES)}, "
                f"got {self.dtype!r}/{self.param_dtype!r}"
            )
        if self.remat_policy not in REMAT_POLICIES:
            raise ConfigError(
                f"EncoderConfig.remat_policy={self.remat_policy!r}; choose one of {REMAT_POLICIES}"
            )
        if self.head_dim is None and self.hidden_size % self.num_heads:
            raise ConfigError(
                f"EncoderConfig: hidden_size={self.hidden_size} is not divisible by "
                f"num_heads={self.num_heads}; set head_dim explicitly"
            )
        if self.scan_unroll < 1:
            raise ConfigError(f"EncoderConfig.scan_unroll={self.scan_unroll}; must be >= 1")
        if self.target_platform not in (None, "cpu", "gpu", "cuda", "rocm", "tpu"):
            raise ConfigError(f"EncoderConfig.target_platform={self.target_platform!r}: one of cpu, gpu, tpu")
        if self.attention_impl not in (None, "einsum", "xla", "cudnn"):
            raise ConfigError(f"EncoderConfig.attention_impl={self.attention_impl!r}")
        if self.cpu_inference_kernels not in ("auto", "xla_default"):
            raise ConfigError(f"EncoderConfig.cpu_inference_kernels={self.cpu_inference_kernels!r}: 'auto' or "
                              "'xla_default'")
        if self.matmul_quantization not in (None, "dynamic_int8"):
            raise ConfigError(f"EncoderConfig.matmul_quantization={self.matmul_quantization!r}: None or "
                              "'dynamic_int8'")

    @property
    def kv_dim(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads

    @property
    def platform(self) -> str:
        """``target_platform`` or, unset, this process's backend ("cpu", "gpu" or "tpu")."""
        import jax  # local: config stays importable without initialising a backend

        p = self.target_platform or jax.default_backend()
        return "gpu" if p in ("cuda", "rocm") else p

    @property
    def compute_dtype(self) -> Any:
        return _DTYPES[self.dtype]

    @property
    def weight_dtype(self) -> Any:
        return _DTYPES[self.param_dtype]

    def replace(self, **changes: Any) -> "EncoderConfig":
        return dataclasses.replace(self, **changes)

    def for_inference(self, dtype: str | None = None, quantize: str | None = None) -> "EncoderConfig":
        """This config with one inference run's overrides (``--dtype``, ``--int8``): compute
        ``dtype`` (None: as stored) and ``matmul_quantization``. Params are restored as stored."""
        return self.replace(dtype=dtype or self.dtype, matmul_quantization=quantize)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "EncoderConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"EncoderConfig: unknown fields {unknown}")
        return cls(**values)
