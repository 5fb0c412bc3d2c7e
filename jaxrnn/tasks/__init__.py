"""What a network interacts with: supervised trial generators and closed-loop environments.

``jaxrnn.make(name, **overrides)`` builds any registered task; ``jaxrnn.registered()``
lists the names.
"""

from jaxrnn.tasks.base import Trials, masked_squared_error
from jaxrnn.tasks.decision import CDI, NCDI, RDM, DecisionParams, DecisionTask
from jaxrnn.tasks.registry import make, param_fields, register, registered, static_fields

register("rdm", RDM)
register("cdi", NCDI, num_contexts=2)
for _n in range(2, 7):
    register(f"ncdi-{_n}", NCDI, num_contexts=_n)

__all__ = [
    "CDI",
    "NCDI",
    "RDM",
    "DecisionParams",
    "DecisionTask",
    "Integrator",
    "IntegratorParams",
    "IntegratorState",
    "Pendulum",
    "PendulumParams",
    "PendulumState",
    "Tracking2D",
    "TrackingParams",
    "TrackingState",
    "Trials",
    "make",
    "masked_squared_error",
    "param_fields",
    "register",
    "registered",
    "static_fields",
]

from jaxrnn.tasks.integrator import Integrator, IntegratorParams, IntegratorState  # noqa: E402
from jaxrnn.tasks.pendulum import Pendulum, PendulumParams, PendulumState  # noqa: E402
from jaxrnn.tasks.tracking import Tracking2D, TrackingParams, TrackingState  # noqa: E402

register("pendulum-fo", Pendulum, observe_velocity=True)
register("pendulum-po", Pendulum, observe_velocity=False)
register("double-integrator", Integrator, order=2)
register("tracking-2d", Tracking2D)
