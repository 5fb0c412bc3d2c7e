"""Registers, spills, shared memory and H100 occupancy of the fused CTRNN kernels, without a GPU.

The fused BPTT kernels (:mod:`jaxrnn.models.ctrnn_fused`) are lowered by Pallas to Triton IR for
CUDA on this machine (no GPU needed), compiled to PTX for ``sm_90`` by the ``triton`` package
and assembled by its bundled ``ptxas -v``. What ``ptxas`` reports bounds how many kernel
programs an H100 SM holds at once (65,536 registers, 227 KiB of shared memory, 64 warps per SM),
which is what hides the per-step latency of the time loop; a spill means local-memory traffic
inside the loop. Use it to choose ``FusedKernel(block_trials, num_warps, num_stages)``
candidates before a GPU is at hand; the GPU timing itself is ``gpu.py --jobs bptt_fused``.

Workload: the study's BPTT setting (N = 50 → 64 padded, T = 750, batch 500, M = 4 inputs, one
output, shifted tanh), the forward kernel that keeps the rates and the backward kernel that forms
the ``W_rec`` gradient only (what ``rule.kernel = "pallas"`` runs).

    pip install triton                        # CPU machine is fine: only its compiler is used
    python benchmarks/fused_kernel_ptxas.py   # → benchmarks/results/fused_kernel-ptxas.json

Caveat: XLA compiles the kernels on the GPU with its own bundled Triton, whose choices may differ
from the ``triton`` package's; the figures are a guide, not the compiled kernel's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETTINGS = [(16, 1), (32, 2), (32, 4), (64, 4), (64, 8), (128, 4), (128, 8)]  # (block_trials, num_warps)
H100 = {"sms": 132, "registers_per_sm": 65536, "shared_bytes_per_sm": 227 * 1024, "warps_per_sm": 64,
        "blocks_per_sm": 32}


def triton_ir(block_trials: int, num_warps: int, num_stages: int) -> dict[str, str]:
    """The Triton IR (text) of the forward and backward kernels, lowered for CUDA."""
    import jax
    import jax.numpy as jnp
    from jax._src.pallas.triton import pallas_call_registration as registration  # private: the IR hook

    from jaxrnn.models.ctrnn_fused import FusedKernel, _fused_backward, _fused_forward, padded_hidden

    kernel = FusedKernel(block_trials=block_trials, num_warps=num_warps, num_stages=num_stages, interpret=False)
    spec = (0.1, "shifted_tanh", kernel)
    n, batch, steps, inputs, outputs = 50, 500, 750, 4, 1
    b_pad = -(-batch // block_trials) * block_trials
    f32, shape = jnp.float32, jax.ShapeDtypeStruct
    captured = []
    lower = registration.lowering.lower_jaxpr_to_triton_module

    def capture(*args, **kwargs):
        result = lower(*args, **kwargs)
        captured.append(result.module.operation.get_asm(enable_debug_info=False))
        return result

    registration.lowering.lower_jaxpr_to_triton_module = capture
    try:
        forward = jax.jit(lambda *a: _fused_forward(spec, *a, True))
        forward.trace(shape((n, n), f32), shape((n, inputs), f32), shape((n,), f32), shape((outputs, n), f32),
                      shape((n, batch), f32), shape((batch, steps, inputs), f32)).lower(lowering_platforms=("cuda",))
        backward = jax.jit(lambda *a: _fused_backward(spec, *a, inputs, True, False))
        backward.trace(shape((n, n), f32), shape((outputs, n), f32), shape((steps, b_pad, padded_hidden(n)), f32),
                       None, shape((steps, outputs, batch), f32)).lower(lowering_platforms=("cuda",))
    finally:
        registration.lowering.lower_jaxpr_to_triton_module = lower
    return dict(zip(("forward", "backward"), captured, strict=True))


def compile_and_assemble(ir: str, num_warps: int, num_stages: int, workdir: Path) -> dict:
    """``triton.compile`` the IR for sm_90, then ``ptxas -v``: registers, spills, shared memory."""
    import triton
    from triton.backends.compiler import GPUTarget

    source = workdir / "kernel.ttir"
    source.write_text(ir)
    compiled = triton.compile(str(source), target=GPUTarget("cuda", 90, 32),
                              options={"num_warps": num_warps, "num_stages": num_stages})
    ptx = workdir / "kernel.ptx"
    ptx.write_text(compiled.asm["ptx"])
    bin_dir = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
    report = ""
    for name in ("ptxas", "ptxas-blackwell"):  # the newer one reads newer PTX versions
        done = subprocess.run([str(bin_dir / name), "-arch=sm_90a", "-v", str(ptx), "-o", str(workdir / "k.cubin")],
                              capture_output=True, text=True)
        report = done.stdout + done.stderr
        if done.returncode == 0:
            break
    else:
        raise RuntimeError(report[-2000:])
    registers = int(re.search(r"Used (\d+) registers", report).group(1))
    spill_stores = int(re.search(r"(\d+) bytes spill stores", report).group(1))
    spill_loads = int(re.search(r"(\d+) bytes spill loads", report).group(1))
    shared = int(compiled.metadata.shared)
    return {"registers_per_thread": registers, "spill_store_bytes": spill_stores, "spill_load_bytes": spill_loads,
            "shared_bytes": shared, "programs_per_sm_h100": programs_per_sm(registers, shared, num_warps),
            "ptx_lines": len(compiled.asm["ptx"].splitlines())}


def programs_per_sm(registers: int, shared: int, num_warps: int) -> int:
    """Resident programs per H100 SM: the tightest of registers (allocated per warp in units of
    256), shared memory, warps and blocks."""
    per_warp = -(-registers * 32 // 256) * 256
    by_registers = H100["registers_per_sm"] // (per_warp * num_warps)
    by_shared = H100["shared_bytes_per_sm"] // max(shared, 1)
    return int(min(by_registers, by_shared, H100["warps_per_sm"] // num_warps, H100["blocks_per_sm"]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-stages", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "fused_kernel-ptxas.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    import jax
    import triton

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for block_trials, num_warps in SETTINGS:
            irs = triton_ir(block_trials, num_warps, args.num_stages)
            for which, ir in irs.items():
                row = {"kernel": which, "block_trials": block_trials, "num_warps": num_warps,
                       "num_stages": args.num_stages,
                       **compile_and_assemble(ir, num_warps, args.num_stages, Path(tmp))}
                row["warps_per_sm_h100"] = row["programs_per_sm_h100"] * num_warps
                rows.append(row)
                print(json.dumps(row))
    result = {"benchmark": "fused_kernel-ptxas", "command": "python benchmarks/fused_kernel_ptxas.py",
              "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "machine": {"device_kind": f"no GPU: compiled for sm_90 (H100) by triton {triton.__version__}",
                          "cpus": os.cpu_count(), "jax": jax.__version__, "triton": triton.__version__,
                          "python": platform.python_version(), "platform": platform.platform()},
              "workload": "CTRNN N = 50 (padded to 64), T = 750, batch 500, M = 4, O = 1, shifted tanh; "
                          "forward keeps the rates, backward forms the W_rec gradient only",
              "h100_limits": H100,
              "notes": "compiled by the triton package for sm_90 and assembled by its ptxas, not by XLA's "
                       "bundled Triton on a GPU; no timing",
              "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
