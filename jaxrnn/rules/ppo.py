"""Recurrent PPO for continuous actions (Huang, Singh & Rajan 2024; Schulman et al. 2017).

The agents of Huang et al. are vanilla tanh RNNs (64 units) trained by PPO on Pendulum-v1 (FO or
PO); their code is not public, so this follows the PPO of Singh's ``plumetracknets``
(``code/ppo``, a fork of ikostrikov's ``pytorch-a2c-ppo-acktr``).
The network is :class:`~jaxrnn.models.actor_critic.ActorCritic` (cell → tanh policy/value MLPs,
Gaussian policy with a learned state-independent ``log_std``).

One update (``num_envs × num_steps`` environment steps, 8 × 128 = 1,024 by default):

1. **Rollout.** ``num_envs`` environments continue their episodes from the rule state (env
   states, last observation, recurrent state, done flags), ``num_steps`` steps each. At each step
   ``a ~ N(μ, σ²)`` is sampled; the environment is stepped with ``clip(a, low, high)`` (the
   action space bounds) but the stored action and its log-probability are those of the
   *unclipped* sample ``a`` (as the template, whose environment clips). gymnax auto-resets an
   environment when its episode ends; the recurrent state is zeroed before the next observation.
   Only the cell, the policy head and the environment run inside the time loop: the Gaussian
   noise of all ``T × E`` actions, the environments' keys and the auto-resets gymnax would draw
   at every step (:mod:`jaxrnn.tasks.autoreset`, same numbers) are drawn in one call each before
   it (one big draw instead of ``T·E`` tiny ones), and the critic — ``V(s_t)`` from the stored
   outputs and the bootstrap ``V(s'_t)`` from the stored carries and final observations — and
   the log-probabilities are computed after it over all steps at once.
2. **GAE** (:func:`~jaxrnn.rules.ppo_objective.gae`) on rewards scaled by ``reward_scale``, per environment::

       δ_t = r_t + γ (1 − term_t) V(s'_t) − V(s_t)
       A_t = δ_t + γ λ (1 − done_t) A_{t+1},      R_t = A_t + V(s_t)

   ``V(s'_t)`` is the value of the true next state (for an episode cut by the time limit, of the
   final observation before the auto-reset). ``bootstrap_truncation=True`` (default) treats
   truncation as a cut (``term = terminated``), the correct estimator; ``False`` treats it as
   termination (``term = done``), as the template without ``--use-proper-time-limits``.
   Advantages are then normalised over the whole rollout, ``(A − mean)/(std + 1e-5)`` (template),
   unless ``normalize_advantages = 0``. With ``normalize_rewards = 1`` the (scaled) rewards are
   first divided by the running std of the discounted return and clipped to ±10, as
   ``VecNormalize`` (:mod:`jaxrnn.rules.ppo_normalize`); the statistics include this rollout.
3. **Epochs.** ``num_epochs`` passes; each permutes the environments and splits them into
   ``num_minibatches`` minibatches of whole sequences (the template's recurrent generator), re-runs
   the network over each sequence from the segment's stored initial recurrent state (resets at the
   stored done flags), and takes one Adam step (ε = 1e-5) on :func:`~jaxrnn.rules.ppo_objective.ppo_loss` after clipping the
   gradient's global norm to ``max_grad_norm``. The re-run is :meth:`ActorCritic.sequences`: for a
   ``VanillaRNN`` its input drive is one matmul outside the time loop and its gradient a
   hand-written backward pass (:mod:`jaxrnn.models.vanilla_sequence`), the same numbers as
   autodiff of the per-step loop to float32 rounding and ~2× faster per update (CPU).
   The step size is ``learning_rate·max(0, 1 − step/anneal_updates)`` (linear annealing to 0
   over ``anneal_updates`` updates, the template's ``--use-linear-lr-decay``; 0 = constant).
   With ``target_kl > 0``, a minibatch whose approximate KL to the rollout policy (measured
   before its step) exceeds ``1.5·target_kl`` ends the update: it and every later minibatch
   step are skipped (Stable-Baselines3's early stopping).

Observation normalisation (static ``normalize_observations``): the network sees
``(o − μ)/σ`` with running moments of the observations, frozen during an update and updated
with its rollout afterwards; ``network(state)`` folds them into the cell's ``W_in`` and ``b``
so the stored networks take raw observations (:mod:`jaxrnn.rules.ppo_normalize`).

Metrics of ``update``: ``loss`` (the total PPO loss, mean over the update's gradient steps),
``policy_loss``, ``value_loss``, ``entropy``, ``approx_kl``, ``clip_fraction``, ``grad_norm``
(before clipping; means over the minibatch steps taken), ``steps_fraction`` (of the
``num_epochs·num_minibatches`` steps, those taken before a KL stop), ``learning_rate`` (the
annealed step size), ``episode_return`` (mean unscaled return of the episodes that ended during
the rollout; NaN if none did) and ``num_episodes``. ``evaluate`` runs ``num_eval_episodes``
deterministic episodes of ``eval_steps`` steps
(:func:`~jaxrnn.rules.policy_evaluation.deterministic_returns`: ``return``, ``return_std``,
``final_reward``).

Not implemented from the template: weight decay 1e-4. Which of the options above make the
Huang et al. agents learn within the study's budget was decided by a population sweep run with
jaxrnn itself (``benchmarks/ppo_recipe_sweep.py``; its table is in ``benchmarks/results``); the
packaged ``huang-pendulum`` config holds the recipe.

Configuration tiers:
  static (factory arguments): cell, env, num_envs, num_steps, num_minibatches, num_epochs,
    hidden_head, head_layers, clip_value_loss, bootstrap_truncation, normalize_observations,
    num_eval_episodes, eval_steps.
  sweepable (:class:`PPOHParams`): learning_rate, gamma, gae_lambda, clip_eps, ent_coef,
    vf_coef, max_grad_norm, reward_scale, normalize_rewards, normalize_advantages,
    anneal_updates, target_kl, init_log_std, gain (recurrent gain at init), task (env params).
  state (:class:`PPOState`): network params, Adam moments, the environments' rollout state.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct
from gymnax.environments import spaces

from jaxrnn._checks import check_choice, check_range, fail
from jaxrnn.models.actor_critic import ActorCritic, gaussian_log_prob
from jaxrnn.rules.base import LearningRule
from jaxrnn.rules.hparams import hparam, make_hparams
from jaxrnn.rules.policy_evaluation import deterministic_returns
from jaxrnn.rules import ppo_normalize
from jaxrnn.rules.ppo_normalize import (REWARD_CLIP, RunningMoments, discounted_returns, fold_input_normalization,
                                        init_moments, normalize, update_moments)
from jaxrnn.rules.ppo_objective import Segment, gae, normalize_advantages, segment_loss
from jaxrnn.rules.registry import register_rule
from jaxrnn.rules.training import clip_by_global_norm, optimizer_step
from jaxrnn.tasks.autoreset import draw_resets, step_with_reset

__all__ = ["PPOHParams", "PPOState", "ppo"]

STATIC = ("num_envs", "num_steps", "num_minibatches", "num_epochs", "hidden_head", "head_layers", "clip_value_loss",
          "bootstrap_truncation", "normalize_observations", "num_eval_episodes", "eval_steps")
FLAGS = ("normalize_rewards", "normalize_advantages")


@struct.dataclass(kw_only=True)
class PPOHParams:
    """Sweepable hyper-parameters of :func:`ppo` (all pytree leaves; template defaults).

    Attributes:
      learning_rate: Adam step size (3e-4).
      gamma: discount γ (0.99).
      gae_lambda: GAE λ (0.95).
      clip_eps: PPO clip ε of the ratio and (if clipped) of the value (0.2).
      ent_coef: entropy bonus coefficient (0.005).
      vf_coef: value-loss coefficient (0.5).
      max_grad_norm: global-norm gradient clip (0.5).
      reward_scale: rewards are multiplied by this before GAE (0.01: Pendulum's rewards lie in
        [−16.3, 0], so scaled discounted returns are of order 1).
      normalize_rewards: 1 divides the scaled rewards by the running std of their discounted
        return and clips them to ±10 (VecNormalize); 0 (default) uses them as scaled.
      normalize_advantages: 1 (default) normalises the advantages over each rollout; 0 does not.
      anneal_updates: > 0 anneals the step size linearly to 0 over this many updates (0: constant).
      target_kl: > 0 stops an update's minibatch steps once the approximate KL exceeds
        ``1.5·target_kl`` (0: never).
      init_log_std: initial ``log σ`` of the Gaussian policy (0).
      gain: recurrent gain g of the initial cell weights.
      task: the environment's params.
    """

    learning_rate: jax.Array = hparam(3e-4)
    gamma: jax.Array = hparam(0.99)
    gae_lambda: jax.Array = hparam(0.95)
    clip_eps: jax.Array = hparam(0.2)
    ent_coef: jax.Array = hparam(0.005)
    vf_coef: jax.Array = hparam(0.5)
    max_grad_norm: jax.Array = hparam(0.5)
    reward_scale: jax.Array = hparam(0.01)
    normalize_rewards: jax.Array = hparam(False)  # float32 0/1 leaf; a bool in the config
    normalize_advantages: jax.Array = hparam(True)
    anneal_updates: jax.Array = hparam(0.0)
    target_kl: jax.Array = hparam(0.0)
    init_log_std: jax.Array = hparam(0.0)
    gain: jax.Array = hparam(1.0)
    task: Any


@struct.dataclass
class PPOState:
    """Params, optimiser and the rollout state that consecutive updates continue from.

    Attributes:
      params: ``{"cell", "actor", "critic"}`` network params (taking normalised observations
        when ``normalize_observations``; ``network(state)`` folds the normalisation in).
      opt_state: Adam moments.
      env_state: environment states ``[E, ...]``.
      obs: ``[E, M]`` next (raw) observation of each environment.
      carry: ``[E, N]`` recurrent state after the last step (before any reset).
      done: ``[E]`` bool, the last step ended an episode (reset the carry before ``obs``).
      episode_return: ``[E]`` unscaled return so far of each running episode.
      obs_moments: running moments of the observations (``[M]``).
      return_moments: running moments of the discounted scaled return (scalar).
      discounted_return: ``[E]`` the running discounted scaled return of each environment.
      step: updates taken (int32).
    """

    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array
    carry: Any
    done: jax.Array
    episode_return: jax.Array
    obs_moments: RunningMoments
    return_moments: RunningMoments
    discounted_return: jax.Array
    step: jax.Array


def ppo(
    cell,
    env,
    *,
    num_envs: int = 8,
    num_steps: int = 128,
    num_minibatches: int = 4,
    num_epochs: int = 10,
    hidden_head: int = 64,
    head_layers: int = 1,
    clip_value_loss: bool = True,
    bootstrap_truncation: bool = True,
    normalize_observations: bool = False,
    num_eval_episodes: int = 8,
    eval_steps: int = 200,
) -> LearningRule:
    """Build the recurrent PPO rule for ``cell`` on the continuous-action gymnax ``env``.

    Args:
      cell: a jaxrnn/flax cell (``VanillaRNN(64)`` in the study).
      env: a gymnax environment with a ``Box`` action space (e.g. ``jaxrnn.make("pendulum-fo")[0]``).
      num_envs: parallel environments E (8).
      num_steps: steps per environment per update T (128).
      num_minibatches: minibatches per epoch; must divide ``num_envs`` (4).
      num_epochs: passes over the rollout per update (10).
      hidden_head: units per hidden layer of the policy and value heads (64).
      head_layers: hidden layers per head (1; the template has 2).
      clip_value_loss: clip the value update as the template (True).
      bootstrap_truncation: bootstrap from the final observation of time-limited episodes.
      normalize_observations: feed running-normalised observations (needs a cell whose input
        enters as ``W_in o + b``: VanillaRNN, CTRNN, LowRankRNN with ``use_bias``).
      num_eval_episodes: deterministic episodes per ``evaluate`` (8).
      eval_steps: steps per evaluation episode (200 = Pendulum-v1's time limit).

    Returns:
      The :class:`~jaxrnn.rules.base.LearningRule` bundle (``network(state)`` returns
      ``{"cell", "actor", "critic"}`` params that take raw observations).
    """
    _check_static(num_envs, num_steps, num_minibatches, num_epochs, num_eval_episodes, eval_steps,
                  clip_value_loss, bootstrap_truncation, normalize_observations)
    if not isinstance(env.action_space(env.default_params), spaces.Box):
        fail("task.name", getattr(env, "name", env), "an environment with continuous (Box) actions for rule 'ppo'")
    obs_size = math.prod(env.observation_space(env.default_params).shape)
    num_actions = math.prod(env.action_space(env.default_params).shape)
    net = ActorCritic(cell, obs_size, num_actions, hidden_head, head_layers)
    if normalize_observations:
        _check_foldable(net)
    adam = optax.scale_by_adam(eps=1e-5)
    envs_per_minibatch = num_envs // num_minibatches

    def broadcast(tree, n):
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + x.shape), tree)

    def init(key, hp):
        key_net, key_env = jax.random.split(key)
        params = net.init(key_net, hp.gain)
        actor = dict(params["actor"]["params"])
        actor["log_std"] = jnp.full_like(actor["log_std"], hp.init_log_std)
        params = {**params, "actor": {**params["actor"], "params": actor}}
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key_env, num_envs), hp.task)
        return PPOState(
            params=params,
            opt_state=adam.init(params),
            env_state=env_state,
            obs=obs,
            carry=broadcast(net.initial_carry(), num_envs),
            done=jnp.ones((num_envs,), bool),
            episode_return=jnp.zeros((num_envs,), jnp.float32),
            obs_moments=init_moments((obs_size,)),
            return_moments=init_moments(),
            discounted_return=jnp.zeros((num_envs,), jnp.float32),
            step=jnp.zeros((), jnp.int32),
        )

    def network(state):
        if not normalize_observations:
            return state.params
        return {**state.params, "cell": fold_input_normalization(state.params["cell"], state.obs_moments)}

    def observe(moments, obs):
        """What the network is fed: raw, or normalised with the update's frozen moments."""
        return normalize(moments, obs) if normalize_observations else obs

    def act(key, reset, noise, params, moments, hp, env_state, obs, carry, done):
        """One stochastic step of one environment, given its action noise ``noise[A] ~ N(0, 1)``
        and the auto-reset ``env.step`` would draw (:mod:`jaxrnn.tasks.autoreset`); ``obs`` is
        raw and the network is fed ``observe(moments, obs)``."""
        carry, (mean, log_std, y) = net.policy_step(params, carry, observe(moments, obs), done)
        action = mean + jnp.exp(log_std) * noise
        space = env.action_space(hp.task)
        next_obs, env_state, reward, terminated, truncated, info = step_with_reset(
            env, key, reset, env_state, jnp.clip(action, space.low, space.high), hp.task)
        next_done = jnp.logical_or(terminated, truncated)
        transition = {
            "obs": obs, "resets": done, "actions": action, "means": mean, "log_std": log_std, "outputs": y,
            "carries": carry, "final_obs": info["final_observation"], "rewards": reward.astype(jnp.float32),
            "terminals": terminated if bootstrap_truncation else next_done, "dones": next_done,
        }
        return (env_state, next_obs, carry, next_done), transition

    def collect(key, state, hp):
        """``num_steps`` steps of every environment; transitions ``[E, T]`` (module docstring, 1.)."""
        key_noise, key_env = jax.random.split(key)
        noise = jax.random.normal(key_noise, (num_steps, num_envs, num_actions), jnp.float32)
        step_keys, resets = draw_resets(env, jax.random.split(key_env, (num_steps, num_envs)), hp.task)

        def body(carry, xs):
            env_state, obs, rnn, done, ret = carry
            (env_state, obs, rnn, next_done), tr = jax.vmap(act, in_axes=(0, 0, 0, None, None, None, 0, 0, 0, 0))(
                *xs, state.params, state.obs_moments, hp, env_state, obs, rnn, done)
            ret = ret + tr["rewards"]
            tr["ended_return"] = jnp.where(next_done, ret, 0.0)
            return (env_state, obs, rnn, next_done, jnp.where(next_done, 0.0, ret)), tr

        start = (state.env_state, state.obs, state.carry, state.done, state.episode_return)
        end, traj = jax.lax.scan(body, start, (step_keys, resets, noise))
        traj = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), traj)
        traj["raw_obs"] = traj["obs"]
        traj["obs"] = observe(state.obs_moments, traj["obs"])
        critic = jax.vmap(jax.vmap(net.critic.apply, in_axes=(None, 0)), in_axes=(None, 0))
        value_after = jax.vmap(jax.vmap(net.value_after, in_axes=(None, 0, 0)), in_axes=(None, 0, 0))
        traj["values"] = critic(state.params["critic"], traj.pop("outputs"))
        traj["next_values"] = value_after(state.params, traj.pop("carries"), observe(state.obs_moments, traj.pop("final_obs")))
        traj["log_probs"] = gaussian_log_prob(traj.pop("means"), traj.pop("log_std"), traj["actions"])
        return end, traj

    def training_rewards(state, hp, traj):
        """Rewards for GAE ``[E, T]`` and the updated return statistics (module docstring, 2.)."""
        scaled = hp.reward_scale * traj["rewards"]
        returns, discounted = discounted_returns(scaled.T, traj["dones"].T, state.discounted_return, hp.gamma)
        moments = update_moments(state.return_moments, returns)
        normalized = jnp.clip(scaled / ppo_normalize.scale(moments), -REWARD_CLIP, REWARD_CLIP)
        rewards = jnp.where(hp.normalize_rewards > 0, normalized, scaled)
        return rewards, moments, discounted

    def minibatch_step(carry, segment, hp, learning_rate):
        params, opt_state, stopped = carry
        (loss, aux), grads = jax.value_and_grad(
            lambda p: segment_loss(net, p, segment, hp, clip_value_loss), has_aux=True)(params)
        stop = stopped | ((hp.target_kl > 0) & (aux["approx_kl"] > 1.5 * hp.target_kl))
        grad_norm = optax.tree.norm(grads)
        grads = clip_by_global_norm(grads, hp.max_grad_norm)
        new_params, new_opt_state = optimizer_step(adam, grads, opt_state, params, learning_rate)
        keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(stop, o, n), new, old)  # noqa: E731
        stats = {"loss": loss, "grad_norm": grad_norm, **aux}
        return (keep(new_params, params), keep(new_opt_state, opt_state), stop), (stats, ~stop)

    def epoch(carry, key, segment, hp, learning_rate):
        perm = jax.random.permutation(key, num_envs)
        shuffled = jax.tree.map(
            lambda x: x[perm].reshape((num_minibatches, envs_per_minibatch) + x.shape[1:]), segment)
        return jax.lax.scan(lambda c, s: minibatch_step(c, s, hp, learning_rate), carry, shuffled)

    def update(key, state, hp):
        key_rollout, key_epochs = jax.random.split(key)
        (env_state, obs, carry, done, ret), traj = collect(key_rollout, state, hp)
        rewards, return_moments, discounted = training_rewards(state, hp, traj)
        advantages, returns = jax.vmap(gae, in_axes=(0, 0, 0, 0, 0, None, None))(
            rewards, traj["values"], traj["next_values"], traj["terminals"], traj["dones"], hp.gamma, hp.gae_lambda)
        advantages = jnp.where(hp.normalize_advantages > 0, normalize_advantages(advantages), advantages)
        segment = Segment(carry0=state.carry, obs=traj["obs"], resets=traj["resets"], actions=traj["actions"],
                          log_probs=traj["log_probs"], values=traj["values"], advantages=advantages, returns=returns)
        fraction_left = jnp.where(hp.anneal_updates > 0,
                                  jnp.maximum(0.0, 1.0 - state.step / jnp.maximum(hp.anneal_updates, 1.0)), 1.0)
        learning_rate = hp.learning_rate * fraction_left
        (params, opt_state, _), (stats, taken) = jax.lax.scan(
            lambda c, k: epoch(c, k, segment, hp, learning_rate), (state.params, state.opt_state, jnp.array(False)),
            jax.random.split(key_epochs, num_epochs))
        num_taken = jnp.sum(taken)
        # means over the steps taken (the first minibatch is always measured, so never 0/0)
        metrics = jax.tree.map(lambda m: jnp.sum(jnp.where(taken, m, 0.0)) / jnp.maximum(num_taken, 1), stats)
        metrics["approx_kl"] = jnp.where(num_taken > 0, metrics["approx_kl"], stats["approx_kl"][0, 0])
        num_episodes = jnp.sum(traj["dones"]).astype(jnp.float32)
        metrics["episode_return"] = jnp.where(
            num_episodes > 0, jnp.sum(traj["ended_return"]) / jnp.maximum(num_episodes, 1.0), jnp.nan)
        metrics["num_episodes"] = num_episodes
        metrics["steps_fraction"] = num_taken.astype(jnp.float32) / taken.size
        metrics["learning_rate"] = learning_rate
        new_state = PPOState(params=params, opt_state=opt_state, env_state=env_state, obs=obs, carry=carry,
                             done=done, episode_return=ret,
                             obs_moments=update_moments(state.obs_moments, traj["raw_obs"]),
                             return_moments=return_moments, discounted_return=discounted, step=state.step + 1)
        return new_state, metrics

    def evaluate(key, state, hp):
        return deterministic_returns(net, env, network(state), key, hp.task, num_eval_episodes, eval_steps)

    default_hparams = make_hparams(PPOHParams, task=env.default_params)
    return LearningRule(
        init=init,
        update=update,
        evaluate=evaluate,
        network=network,
        default_hparams=default_hparams,
        name="ppo",
    )


def _check_foldable(net: ActorCritic) -> None:
    """Observation normalisation is folded into ``W_in`` and ``b``: the cell must have both."""
    shapes = jax.eval_shape(lambda: net.init(jax.random.PRNGKey(0)))["cell"].get("params", {})
    if "W_in" not in shapes or "b" not in shapes:
        fail("rule.normalize_observations", True,
             f"False for cell {type(net.cell).__name__} without an input matrix W_in and a bias b",
             "the normalisation is folded into W_in and b so that stored networks take raw observations")


def _check_static(num_envs, num_steps, num_minibatches, num_epochs, num_eval_episodes, eval_steps,
                  clip_value_loss, bootstrap_truncation, normalize_observations) -> None:
    for name, value in (("num_envs", num_envs), ("num_steps", num_steps), ("num_minibatches", num_minibatches),
                        ("num_epochs", num_epochs), ("num_eval_episodes", num_eval_episodes),
                        ("eval_steps", eval_steps)):
        check_range(f"rule.{name}", value, 1, integer=True)
    if num_envs % num_minibatches:
        fail("rule.num_minibatches", num_minibatches,
             f"a divisor of rule.num_envs = {num_envs} (minibatches are whole environments)")
    for name, value in (("clip_value_loss", clip_value_loss), ("bootstrap_truncation", bootstrap_truncation),
                        ("normalize_observations", normalize_observations)):
        check_choice(f"rule.{name}", value, (True, False))


def _check_ppo(values) -> None:
    _check_static(**{k: values[k] for k in STATIC if k not in ("hidden_head", "head_layers")})
    check_range("rule.hidden_head", values["hidden_head"], 1, integer=True)
    check_range("rule.head_layers", values["head_layers"], 0, integer=True)
    check_range("rule.learning_rate", values["learning_rate"], 0.0, low_open=True)
    check_range("rule.gamma", values["gamma"], 0.0, 1.0)
    check_range("rule.gae_lambda", values["gae_lambda"], 0.0, 1.0)
    for name in ("clip_eps", "max_grad_norm", "reward_scale"):
        check_range(f"rule.{name}", values[name], 0.0, low_open=True)
    for name in ("ent_coef", "vf_coef", "anneal_updates", "target_kl"):
        check_range(f"rule.{name}", values[name], 0.0)
    check_range("rule.init_log_std", values["init_log_std"], -5.0, 2.0)
    for name in FLAGS:
        check_choice(f"rule.{name}", values[name], (True, False))


def conformance_example():
    """A tiny instance ``(rule, hparams)`` for :func:`jaxrnn.rules.conformance.check_rule`."""
    from jaxrnn.models.cells import VanillaRNN
    from jaxrnn.tasks.registry import make

    env, params = make("pendulum-po")
    rule = ppo(VanillaRNN(4), env, num_envs=2, num_steps=8, num_minibatches=1, num_epochs=1, hidden_head=4,
               num_eval_episodes=1, eval_steps=8)
    return rule, rule.default_hparams.replace(task=params)


register_rule(
    "ppo",
    ppo,
    static=set(STATIC),
    hparams_cls=PPOHParams,
    check=_check_ppo,
    example=conformance_example,
)
