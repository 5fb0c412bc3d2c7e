import os

# Keep the test processes light on the 2-core CI machine.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
