"""Genetic algorithm with truncation selection and elitism (McMahan et al. 2021, GA networks).

The study's GA (authors' ``genetic.py``; Such et al. 2017's "deep neuroevolution" GA without
crossover). One ``update`` is one generation of a GA population of ``P = population_size``
networks, all held in the rule state (leaves ``[P, ...]``):

1. draw a fresh batch of ``batch`` trials and one initial state
   ``x_0 = init_state_scale·N(0, 1)`` — both shared by every individual (the authors run the
   population as one block-diagonal "super-RNN" with one ``x_0``; here that is ``jax.vmap``);
2. loss of individual ``i``: ``L_i = mean_b [(y_0 − 0)² + (y_{T−1} − s)²]`` (``task.loss``);
3. sort ascending (stable; NaN last); the first ``num_parents`` are the parents ``π_1..π_K``;
4. children ``c < num_elites`` are parents ``π_{c+1}`` unchanged (the code: ``num_elites = 1``,
   child 0 is the best parent); every other child draws a parent ``π_j``, ``j ~ U{1..K}``, and
   ``W ← W_{π_j} + mutation_std·N(0, 1)`` independently for each matrix named in ``trainable``
   (default ``W_in``, ``W_rec``, ``W_out``: "all three evolve"). The bias ``b`` is *not* mutated:
   the authors' ``CreateDescendants``/``AssignWeights`` write only J_in, J_rec and J_out, so
   ``b`` stays at its initial 0.

The reported network (``network(state)``, evaluated by ``evaluate``) is individual 0, which after
an update is the best individual of the generation just evaluated (the authors copy the best
member into the reported network every generation); before the first update it is the first
random individual. ``metrics["loss"]`` is the best loss of the generation, ``"mean_loss"`` the
population mean. Individuals are initialised as §3.1 (``init_params`` with gain ``g``, readout
``0.1·N(0, 1)``), independently.

Paper vs code (McMahan et al.'s code, ``genetic.py``): the paper's text keeps "the original 5 RNNs (without perturbation)";
the code keeps only the best one. ``num_elites=1`` (default) is the code, ``num_elites=5`` the
paper's variant. The code used ``population_size=20`` for CDI/N-CDI and 50 for RDM (the
text: 50). The config field listing the evolved matrices is called ``trainable`` (as BPTT's), so a
list there is read as one value, not as a sweep axis.

Why not evosax (``pip install --dry-run evosax`` would add evosax 0.3.2 beside jax 0.10.2): its
``SimpleGA`` has no unmutated elite (every child is mutated, so the best loss can rise), fixes
``elite_ratio = 0.5`` (25 parents of 50, not 5), optionally crosses over, mutates one flat vector
(bias included) and takes σ from a schedule closure rather than a pytree leaf (sweeping σ would
recompile). The algorithm here is short, so it is written out rather than bent out of evosax.

Configuration tiers:
  static (factory arguments): cell, task, readout, population_size, num_parents, num_elites,
    batch, trainable, num_validation_trials.
  sweepable (:class:`GAHParams`): mutation_std, gain, init_state_scale, task params.
  state (:class:`GAState`): the GA population ``[P, ...]`` and the generation count.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrnn._checks import check_range, fail
from jaxrnn.models.cells import init_params
from jaxrnn.models.heads import LinearReadout
from jaxrnn.models.trials import batch_outputs
from jaxrnn.rules.base import LearningRule
from jaxrnn.rules.hparams import hparam, make_hparams
from jaxrnn.rules.registry import register_rule
from jaxrnn.rules.training import trainable_mask

EVOLVED = ("W_in", "W_rec", "W_out")


@struct.dataclass(kw_only=True)
class GAHParams:
    """Sweepable hyper-parameters of :func:`ga` (all pytree leaves).

    Attributes:
      mutation_std: σ of the Gaussian mutation added to every evolved weight (0.005).
      gain: recurrent gain g of the initial ``W_rec`` of every individual.
      init_state_scale: std of the initial hidden state shared by all trials (0.3).
      task: the task's params.
    """

    mutation_std: jax.Array = hparam(0.005)
    gain: jax.Array = hparam(1.0)
    init_state_scale: jax.Array = hparam(0.3)
    task: Any


@struct.dataclass
class GAState:
    """The GA population (network params with a leading ``[population_size]`` axis; individual
    0 is the reported network) and the number of generations run."""

    population: Any
    step: jax.Array


def population_losses(cell, readout, task, population: Any, x0: jax.Array, trials) -> jax.Array:
    """``[P]`` loss of every individual on the same ``trials`` (``[B, T, ·]``) from the same ``x0``."""

    def loss(params):
        x0s = jnp.broadcast_to(x0, (len(trials.inputs),) + x0.shape)  # trial axis innermost: no [B, T, N] states
        outputs = batch_outputs(cell, readout, params, x0s, trials.inputs)
        return task.loss(outputs, trials)

    return jax.vmap(loss)(population)


def select_parents(losses: jax.Array, num_parents: int) -> jax.Array:
    """Indices of the ``num_parents`` lowest losses, best first (stable; NaN sorts last)."""
    return jnp.argsort(losses, stable=True)[:num_parents]


def next_generation(
    key: jax.Array,
    population: Any,
    parents: jax.Array,
    mutation_std: jax.Array,
    evolve: Any,
    num_elites: int,
) -> Any:
    """The children of ``parents`` (``[K]`` indices into ``population``, best first).

    With ``key_choice, key_noise = split(key)``: child ``c < num_elites`` is ``parents[c]``
    unchanged (bit for bit); every other child copies parent ``parents[j]``,
    ``j = randint(key_choice, (P,), 0, K)[c]``, and adds ``mutation_std · noise[c]`` to the leaves
    whose ``evolve`` flag is True, where ``noise = normal(key_noise, (P, D))`` holds those leaves
    raveled one after another in ``jax.tree`` order (one draw: one random kernel to compile).
    Leaves not evolved are copied.
    """
    leaves, treedef = jax.tree.flatten(population)
    flags = treedef.flatten_up_to(evolve)
    size = leaves[0].shape[0]
    key_choice, key_noise = jax.random.split(key)
    child = jnp.arange(size)
    slot = jax.random.randint(key_choice, (size,), 0, parents.shape[0])
    is_elite = child < num_elites
    source = parents[jnp.where(is_elite, jnp.minimum(child, parents.shape[0] - 1), slot)]
    widths = [leaf[0].size if flag else 0 for leaf, flag in zip(leaves, flags)]
    noise = jax.random.normal(key_noise, (size, sum(widths)), leaves[0].dtype)
    children, start = [], 0
    for leaf, flag, width in zip(leaves, flags, widths):
        copy = leaf[source]
        if flag:
            step = mutation_std * noise[:, start:start + width].reshape(copy.shape)
            elite = is_elite.reshape((size,) + (1,) * (copy.ndim - 1))
            copy = jnp.where(elite, copy, copy + step)
            start += width
        children.append(copy)
    return treedef.unflatten(children)


def ga(
    cell,
    task,
    *,
    readout=None,
    population_size: int = 50,
    num_parents: int = 5,
    num_elites: int = 1,
    batch: int = 500,
    trainable: tuple[str, ...] = EVOLVED,
    num_validation_trials: int = 2000,
) -> LearningRule:
    """Build the GA rule for ``cell`` on supervised ``task``.

    Args:
      cell: a jaxrnn cell (the study: ``CTRNN(50)``, ``1 + tanh`` rates, state readout).
      task: a supervised task with ``sample``, ``validation_trials``, ``loss``, ``accuracy``.
      readout: output head; default ``LinearReadout(task.output_size, scale=0.1)``.
      population_size: GA individuals per member (50; the authors' code: 20 for CDI/N-CDI).
      num_parents: the truncation: the best ``num_parents`` breed (5).
      num_elites: best parents copied unchanged into the next generation (1 = the authors'
        code; ``num_parents`` = the paper's text).
      batch: trials per generation, shared by all individuals (500).
      trainable: names of the matrices that mutate (default ``W_in``, ``W_rec``, ``W_out``).
      num_validation_trials: size of the validation set used by ``evaluate``.

    Returns:
      The :class:`~jaxrnn.rules.base.LearningRule` bundle.
    """
    check_range("rule.population_size", population_size, 1, integer=True)
    check_range("rule.num_parents", num_parents, 1, population_size, integer=True)
    check_range("rule.num_elites", num_elites, 0, num_parents, integer=True)
    check_range("rule.batch", batch, 1, integer=True)
    check_range("rule.num_validation_trials", num_validation_trials, 1, integer=True)
    readout = readout if readout is not None else LinearReadout(task.output_size, scale=0.1)
    hidden = cell.hidden
    trainable = tuple(trainable)

    def init_individual(key, gain):
        key_cell, key_readout = jax.random.split(key)
        return {
            "cell": init_params(cell, key_cell, task.input_size, gain),
            "readout": readout.init(key_readout, jnp.zeros((hidden,), jnp.float32)),
        }

    names = _leaf_names(jax.eval_shape(lambda k: init_individual(k, 1.0), jax.random.PRNGKey(0)))
    for name in trainable:
        if name not in names:
            fail("rule.trainable", list(trainable), "names of network parameters: " + ", ".join(names))

    def init(key, hp):
        keys = jax.random.split(key, population_size)
        population = jax.vmap(init_individual, in_axes=(0, None))(keys, hp.gain)
        return GAState(population=population, step=jnp.zeros((), jnp.int32))

    def initial_state(key, hp):
        return hp.init_state_scale * jax.random.normal(key, (hidden,), jnp.float32)

    def update(key, state, hp):
        key_trials, key_x0, key_children = jax.random.split(key, 3)
        trials = task.sample(key_trials, hp.task, batch)
        losses = population_losses(cell, readout, task, state.population, initial_state(key_x0, hp), trials)
        parents = select_parents(losses, num_parents)
        evolve = trainable_mask(state.population, trainable)
        population = next_generation(key_children, state.population, parents, hp.mutation_std, evolve, num_elites)
        metrics = {"loss": losses[parents[0]], "mean_loss": jnp.mean(losses)}
        return GAState(population=population, step=state.step + 1), metrics

    def network(state):
        return jax.tree.map(lambda leaf: leaf[0], state.population)

    def evaluate(key, state, hp):
        key_trials, key_x0 = jax.random.split(key)
        trials = task.validation_trials(key_trials, hp.task, num_validation_trials)
        x0 = initial_state(key_x0, hp)
        params = network(state)
        x0s = jnp.broadcast_to(x0, (len(trials.inputs),) + x0.shape)  # trial axis innermost: no [B, T, N] states
        outputs = batch_outputs(cell, readout, params, x0s, trials.inputs)
        return {"accuracy": jnp.mean(task.accuracy(outputs, trials)), "loss": task.loss(outputs, trials)}

    return LearningRule(init=init, update=update, evaluate=evaluate, network=network,
                        default_hparams=make_hparams(GAHParams, task=task.default_params), name="ga")


def _leaf_names(tree: Any) -> list[str]:
    paths = jax.tree_util.tree_flatten_with_path(tree)[0]
    return sorted({getattr(p[-1], "key", str(p[-1])) for p, _ in paths})


def _check_ga(values) -> None:
    check_range("rule.mutation_std", values["mutation_std"], 0.0)
    check_range("rule.init_state_scale", values["init_state_scale"], 0.0)
    check_range("rule.population_size", values["population_size"], 1, integer=True)
    check_range("rule.num_parents", values["num_parents"], 1, values["population_size"], integer=True)
    check_range("rule.num_elites", values["num_elites"], 0, values["num_parents"], integer=True)
    check_range("rule.batch", values["batch"], 1, integer=True)
    check_range("rule.num_validation_trials", values["num_validation_trials"], 1, integer=True)
    trainable = values["trainable"]
    if isinstance(trainable, str) or not all(isinstance(t, str) for t in trainable):
        fail("rule.trainable", trainable, "a list of parameter names, e.g. [\"W_in\", \"W_rec\", \"W_out\"]")


def conformance_example():
    """A tiny instance ``(rule, hparams)`` for :func:`jaxrnn.rules.conformance.check_rule`."""
    from jaxrnn.models.cells import CTRNN
    from jaxrnn.tasks.registry import make

    task, params = make("rdm", num_steps=8)
    rule = ga(CTRNN(6, alpha=0.1, activation="shifted_tanh", output="state"), task, readout=LinearReadout(1),
              population_size=4, num_parents=2, batch=4, num_validation_trials=8)
    return rule, rule.default_hparams.replace(task=params)


register_rule(
    "ga",
    ga,
    static={"population_size", "num_parents", "num_elites", "batch", "trainable", "num_validation_trials"},
    hparams_cls=GAHParams,
    check=_check_ga,
    example=conformance_example,
)
