"""The numerics schema: `params.yaml: numerics`, how TensorFlow computes (threads, oneDNN and its ISA).

The bytes a training run produces depend on the kernels TensorFlow picks, and those depend on the
machine unless they are pinned: TensorFlow's thread counts default to the core count, its oneDNN
kernels are on by default only on CPUs with AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX, and oneDNN
picks the widest instruction set the CPU has. `stages.training.numerics` applies these values
before TensorFlow starts, in every stage that runs a model (reports/benchmarks/portability.md says
which settings give the same bytes on which CPUs).

No TensorFlow here: the entry point reads this section before anything imports it.
"""

from __future__ import annotations

from typing import Literal

import pydantic

from stages.params.base import Strict

# oneDNN's ISA levels (its ONEDNN_MAX_CPU_ISA values), lowest first, each with the Linux CPU flags a
# CPU needs for it; `native` sets no cap, so oneDNN uses the widest level the CPU has.
ISA_FLAGS: dict[str, tuple[str, ...]] = {
    "SSE41": ("sse4_1",),
    "AVX": ("avx",),
    "AVX2": ("avx2", "fma"),
    "AVX2_VNNI": ("avx2", "fma", "avx_vnni"),
    "AVX2_VNNI_2": ("avx2", "fma", "avx_vnni", "avx_vnni_int8", "avx_ne_convert"),
    "AVX512_CORE": ("avx512f", "avx512bw", "avx512vl", "avx512dq"),
    "AVX512_CORE_VNNI": ("avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"),
    "AVX512_CORE_BF16": ("avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16"),
    "AVX512_CORE_FP16": ("avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16", "avx512_fp16"),
    "AVX512_CORE_AMX": ("avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16"),
    "AVX512_CORE_AMX_FP16": ("avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_fp16"),
}
ISA_LEVELS = tuple(ISA_FLAGS)
NATIVE = "native"
Isa = Literal[
    "SSE41",
    "AVX",
    "AVX2",
    "AVX2_VNNI",
    "AVX2_VNNI_2",
    "AVX512_CORE",
    "AVX512_CORE_VNNI",
    "AVX512_CORE_BF16",
    "AVX512_CORE_FP16",
    "AVX512_CORE_AMX",
    "AVX512_CORE_AMX_FP16",
    "native",
]
# The lowest level at which oneDNN has bf16 convolutions (emulated below AVX512_CORE_BF16); capped
# lower, a mixed_bfloat16 model aborts TensorFlow (mkl_conv_ops: "could not create a primitive
# descriptor for the convolution forward propagation primitive"), measured with the AVX2 cap.
BF16_LOWEST_ISA = "AVX512_CORE"
BF16_NATIVE_ISA = "AVX512_CORE_BF16"


class Numerics(Strict):
    # TensorFlow's thread pools. TensorFlow's default is the core count, so an unpinned run on an
    # 8-core laptop computes in another order than one on 2 cores.
    intra_op_threads: int = pydantic.Field(ge=1)
    inter_op_threads: int = pydantic.Field(ge=1)
    # TensorFlow's oneDNN kernels (TF_ENABLE_ONEDNN_OPTS), on or off on every CPU alike.
    onednn: bool
    # oneDNN's instruction-set cap (ONEDNN_MAX_CPU_ISA), or `native` for none.
    onednn_isa: Isa

    def isa_at_least(self, level: str) -> bool:
        """Whether the pinned cap allows `level` (`native` allows every level)."""
        return self.onednn_isa == NATIVE or ISA_LEVELS.index(self.onednn_isa) >= ISA_LEVELS.index(level)

    def describe(self) -> str:
        kernels = f"oneDNN on, ISA {self.onednn_isa}" if self.onednn else "oneDNN off (Eigen kernels)"
        return f"{kernels}, {self.intra_op_threads} intra-op and {self.inter_op_threads} inter-op threads"


class NumericsSection(Strict):
    numerics: Numerics


def bf16_problem(numerics: Numerics) -> str | None:
    """Why a mixed_bfloat16 model cannot train under `numerics`, or None if it can."""
    if numerics.onednn and not numerics.isa_at_least(BF16_LOWEST_ISA):
        return (
            f"mixed_bfloat16 cannot run with numerics.onednn true and numerics.onednn_isa {numerics.onednn_isa}: oneDNN has no bf16 "
            f"convolution below {BF16_LOWEST_ISA}; declare precision float32, or set numerics.onednn_isa to {BF16_NATIVE_ISA} or native "
            "on a CPU with bf16 instructions (results then differ from the committed ones)"
        )
    return None
