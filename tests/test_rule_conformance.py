"""Every registered learning rule passes :func:`jaxrnn.rules.conformance.check_rule`.

Parametrised over the registry, so a rule registered later (with its ``example``) is checked
too; toy rules that break one contract each show that the checks catch it and name it.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

import jaxrnn.rules  # noqa: F401  (registers the rules)
from jaxrnn.rules import registry
from jaxrnn.rules.base import LearningRule
from jaxrnn.rules.conformance import ConformanceError, check_rule


@pytest.mark.parametrize("name", registry.registered_rules())
def test_registered_rule_conforms(name):
    entry = registry.get_rule(name)
    assert entry.example is not None, f"rule {name!r} registers no example (register_rule(..., example=...))"
    rule, hp = entry.example()
    check_rule(rule, hp)


# --- toy rules: plain SGD on a least-squares problem, then one broken contract each ----------------


@struct.dataclass
class ToyHParams:
    learning_rate: jax.Array = 0.1


@struct.dataclass
class StaticToyHParams:
    learning_rate: float = struct.field(pytree_node=False, default=0.1)


def _toy(update_fn=None, hparams=ToyHParams()):
    target = jnp.arange(3.0)

    def init(key, hp):
        return {"w": jax.random.normal(key, (3,))}

    def update(key, state, hp):
        loss, grad = jax.value_and_grad(lambda w: jnp.sum((w - target) ** 2))(state["w"])
        return {"w": state["w"] - hp.learning_rate * grad}, {"loss": loss}

    def evaluate(key, state, hp):
        return {"loss": jnp.sum((state["w"] - target) ** 2)}

    rule = LearningRule(init=init, update=update_fn or update, evaluate=evaluate, network=lambda s: s,
                        default_hparams=hparams, name="toy")
    return rule, hparams


def test_toy_sgd_rule_conforms():
    rule, hp = _toy()
    check_rule(rule, hp)
    # and its update is plain SGD: w - lr * 2 (w - target)
    state = rule.init(jax.random.PRNGKey(0), hp)
    new, _ = rule.update(jax.random.PRNGKey(1), state, hp)
    np.testing.assert_allclose(new["w"], state["w"] - 0.1 * 2 * (state["w"] - jnp.arange(3.0)), rtol=1e-6)


def test_a_rule_that_changes_the_state_shape_breaks_the_contract():
    def update(key, state, hp):
        return {"w": jnp.concatenate([state["w"], state["w"]])}, {"loss": jnp.sum(state["w"])}

    rule, hp = _toy(update)
    with pytest.raises(ConformanceError, match="'toy' breaks the 'contract' contract: update changed state"):
        check_rule(rule, hp)


def test_a_rule_whose_loss_is_not_a_scalar_breaks_the_contract():
    def update(key, state, hp):
        return state, {"loss": state["w"]}

    rule, hp = _toy(update)
    with pytest.raises(ConformanceError, match="'contract' contract: update's metrics need a scalar 'loss'"):
        check_rule(rule, hp)


def test_a_static_hyper_parameter_breaks_no_recompile():
    rule, hp = _toy(hparams=StaticToyHParams())
    with pytest.raises(ConformanceError, match="'no recompile' contract: .*learning_rate"):
        check_rule(rule, hp)


def test_a_nondeterministic_rule_breaks_determinism():
    def update(key, state, hp):
        noise = jax.pure_callback(lambda: np.random.default_rng().normal(size=3).astype(np.float32),
                                  jax.ShapeDtypeStruct((3,), jnp.float32))
        return {"w": state["w"] + noise}, {"loss": jnp.sum(state["w"])}

    rule, hp = _toy(update)
    with pytest.raises(ConformanceError, match="'deterministic' contract"):
        check_rule(rule, hp)


def _batched_callback(fn, w):
    """``fn`` on the host; under ``vmap`` it receives the whole population ``[members, 3]``."""
    return jax.pure_callback(lambda x: np.asarray(fn(np.asarray(x)), np.float32),
                             jax.ShapeDtypeStruct(w.shape, jnp.float32), w, vmap_method="expand_dims")


def test_a_rule_that_mixes_members_breaks_population():
    # the classic slip: a "batch statistic" taken over the population axis instead of the batch
    def centre(x):
        return x - x.mean(axis=0, keepdims=True) if x.ndim == 2 else x - x.mean()

    def update(key, state, hp):
        return {"w": _batched_callback(centre, state["w"])}, {"loss": jnp.sum(state["w"] ** 2)}

    rule, hp = _toy(update)
    with pytest.raises(ConformanceError, match="'population' contract: member 0 of a vmapped population changed"):
        check_rule(rule, hp)


def test_a_rule_that_spreads_nan_across_members_breaks_isolation():
    # finite members never see each other (0 * sum); a non-finite one poisons them all
    def touch(x):
        return x + 0.0 * x.sum(axis=0, keepdims=True) if x.ndim == 2 else x + 0.0 * x.sum()

    def update(key, state, hp):
        return {"w": _batched_callback(touch, state["w"])}, {"loss": jnp.sum(state["w"] ** 2)}

    rule, hp = _toy(update)
    with pytest.raises(ConformanceError, match="'isolation' contract: member 0 changed"):
        check_rule(rule, hp)
