import os

# Keep the test processes light on the 2-core CI machine.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

# Tests compile hundreds of small programs and run each briefly, so compilation is most of the
# suite's time: ask XLA's CPU back-end for cheap code generation (LLVM without its expensive
# passes). Measured on tests/test_bptt_fast_paths.py: 82 -> 60 s of CPU; a test that trains for
# long (test_bptt_learns_rdm_to_criterion) runs about as long as before. These flags choose
# optimisation passes, not floating-point semantics (fast-math stays off), so every comparison
# with a reference keeps its tolerance. Subprocesses inherit them; a test that sets its own
# XLA_FLAGS replaces them.
_CHEAP_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _CHEAP_COMPILE).strip()
