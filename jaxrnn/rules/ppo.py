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
   Advantages are then normalised over the whole rollout, ``(A − mean)/(std + 1e-5)`` (template).
3. **Epochs.** ``num_epochs`` passes; each permutes the environments and splits them into
   ``num_minibatches`` minibatches of whole sequences (the template's recurrent generator), re-runs
   the network over each sequence from the segment's stored initial recurrent state (resets at the
   stored done flags), and takes one Adam step (ε = 1e-5) on :func:`~jaxrnn.rules.ppo_objective.ppo_loss` after clipping the
   gradient's global norm to ``max_grad_norm``. The re-run is :meth:`ActorCritic.sequences`: for a
   ``VanillaRNN`` its input drive is one matmul outside the time loop and its gradient a
   hand-written backward pass (:mod:`jaxrnn.models.vanilla_sequence`), the same numbers as
   autodiff of the per-step loop to float32 rounding and ~2× faster per update (CPU).

Metrics of ``update``: ``loss`` (the total PPO loss, mean over the update's gradient steps),
``policy_loss``, ``value_loss``, ``entropy``, ``approx_kl``, ``clip_fraction``, ``grad_norm``
(before clipping), ``episode_return`` (mean unscaled return of the episodes that ended during
the rollout; NaN if none did) and ``num_episodes``. ``evaluate`` runs ``num_eval_episodes``
deterministic episodes (action = clipped mean) of ``eval_steps`` steps from the given key and
returns ``return`` (mean episode return), ``return_std`` and ``final_reward`` (mean reward of the
last step). Rewards after an episode's end within ``eval_steps`` are not counted.

Not implemented from the template: linear learning-rate decay, weight decay 1e-4, and
``VecNormalize`` observation/return normalisation (a fixed ``reward_scale`` stands in for the
latter, so the network sees raw observations — convenient for fixed-point analysis).

Configuration tiers:
  static (factory arguments): cell, env, num_envs, num_steps, num_minibatches, num_epochs,
    hidden_head, head_layers, clip_value_loss, bootstrap_truncation, num_eval_episodes, eval_steps.
  sweepable (:class:`PPOHParams`): learning_rate, gamma, gae_lambda, clip_eps, ent_coef,
    vf_coef, max_grad_norm, reward_scale, gain (recurrent gain at init), task (env params).
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
from jaxrnn.rules.bptt import clip_by_global_norm
from jaxrnn.rules.ppo_objective import Segment, gae, normalize_advantages, ppo_loss, segment_loss  # re-exported
from jaxrnn.rules.registry import register_rule
from jaxrnn.tasks.autoreset import draw_resets, step_with_reset

__all__ = ["PPOHParams", "PPOState", "Segment", "gae", "normalize_advantages", "ppo", "ppo_loss", "segment_loss"]

STATIC_DEFAULTS = {
    "num_envs": 8, "num_steps": 128, "num_minibatches": 4, "num_epochs": 10, "hidden_head": 64,
    "head_layers": 1, "clip_value_loss": True, "bootstrap_truncation": True, "num_eval_episodes": 8,
    "eval_steps": 200,
}
HPARAM_DEFAULTS = {
    "learning_rate": 3e-4, "gamma": 0.99, "gae_lambda": 0.95, "clip_eps": 0.2, "ent_coef": 0.005,
    "vf_coef": 0.5, "max_grad_norm": 0.5, "reward_scale": 0.01,
}

@struct.dataclass
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
      gain: recurrent gain g of the initial cell weights.
      task: the environment's params.
    """

    learning_rate: jax.Array
    gamma: jax.Array
    gae_lambda: jax.Array
    clip_eps: jax.Array
    ent_coef: jax.Array
    vf_coef: jax.Array
    max_grad_norm: jax.Array
    reward_scale: jax.Array
    gain: jax.Array
    task: Any


@struct.dataclass
class PPOState:
    """Params, optimiser and the rollout state that consecutive updates continue from.

    Attributes:
      params: ``{"cell", "actor", "critic"}`` network params.
      opt_state: Adam moments.
      env_state: environment states ``[E, ...]``.
      obs: ``[E, M]`` next observation of each environment.
      carry: ``[E, N]`` recurrent state after the last step (before any reset).
      done: ``[E]`` bool, the last step ended an episode (reset the carry before ``obs``).
      episode_return: ``[E]`` unscaled return so far of each running episode.
      step: updates taken (int32).
    """

    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array
    carry: Any
    done: jax.Array
    episode_return: jax.Array
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
      num_eval_episodes: deterministic episodes per ``evaluate`` (8).
      eval_steps: steps per evaluation episode (200 = Pendulum-v1's time limit).

    Returns:
      The :class:`~jaxrnn.rules.base.LearningRule` bundle (``network(state)`` returns
      ``{"cell", "actor", "critic"}`` params).
    """
    _check_static(num_envs, num_steps, num_minibatches, num_epochs, num_eval_episodes, eval_steps,
                  clip_value_loss, bootstrap_truncation)
    if not isinstance(env.action_space(env.default_params), spaces.Box):
        fail("task.name", getattr(env, "name", env), "an environment with continuous (Box) actions for rule 'ppo'")
    obs_size = math.prod(env.observation_space(env.default_params).shape)
    num_actions = math.prod(env.action_space(env.default_params).shape)
    net = ActorCritic(cell, obs_size, num_actions, hidden_head, head_layers)
    adam = optax.scale_by_adam(eps=1e-5)
    envs_per_minibatch = num_envs // num_minibatches

    def broadcast(tree, n):
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + x.shape), tree)

    def init(key, hp):
        key_net, key_env = jax.random.split(key)
        params = net.init(key_net, hp.gain)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key_env, num_envs), hp.task)
        return PPOState(
            params=params,
            opt_state=adam.init(params),
            env_state=env_state,
            obs=obs,
            carry=broadcast(net.initial_carry(), num_envs),
            done=jnp.ones((num_envs,), bool),
            episode_return=jnp.zeros((num_envs,), jnp.float32),
            step=jnp.zeros((), jnp.int32),
        )

    def act(key, reset, noise, params, hp, env_state, obs, carry, done):
        """One stochastic step of one environment, given its action noise ``noise[A] ~ N(0, 1)``
        and the auto-reset ``env.step`` would draw (:mod:`jaxrnn.tasks.autoreset`)."""
        carry, (mean, log_std, y) = net.policy_step(params, carry, obs, done)
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
            (env_state, obs, rnn, next_done), tr = jax.vmap(act, in_axes=(0, 0, 0, None, None, 0, 0, 0, 0))(
                *xs, state.params, hp, env_state, obs, rnn, done)
            ret = ret + tr["rewards"]
            tr["ended_return"] = jnp.where(next_done, ret, 0.0)
            return (env_state, obs, rnn, next_done, jnp.where(next_done, 0.0, ret)), tr

        start = (state.env_state, state.obs, state.carry, state.done, state.episode_return)
        end, traj = jax.lax.scan(body, start, (step_keys, resets, noise))
        traj = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), traj)
        critic = jax.vmap(jax.vmap(net.critic.apply, in_axes=(None, 0)), in_axes=(None, 0))
        value_after = jax.vmap(jax.vmap(net.value_after, in_axes=(None, 0, 0)), in_axes=(None, 0, 0))
        traj["values"] = critic(state.params["critic"], traj.pop("outputs"))
        traj["next_values"] = value_after(state.params, traj.pop("carries"), traj.pop("final_obs"))
        traj["log_probs"] = gaussian_log_prob(traj.pop("means"), traj.pop("log_std"), traj["actions"])
        return end, traj

    def minibatch_step(carry, segment, hp):
        params, opt_state = carry
        (loss, aux), grads = jax.value_and_grad(
            lambda p: segment_loss(net, p, segment, hp, clip_value_loss), has_aux=True)(params)
        grad_norm = optax.tree.norm(grads)
        grads = clip_by_global_norm(grads, hp.max_grad_norm)
        updates, opt_state = adam.update(grads, opt_state, params)
        params = jax.tree.map(lambda p, u: p - hp.learning_rate * u, params, updates)
        return (params, opt_state), {"loss": loss, "grad_norm": grad_norm, **aux}

    def epoch(carry, key, segment, hp):
        perm = jax.random.permutation(key, num_envs)
        shuffled = jax.tree.map(
            lambda x: x[perm].reshape((num_minibatches, envs_per_minibatch) + x.shape[1:]), segment)
        return jax.lax.scan(lambda c, s: minibatch_step(c, s, hp), carry, shuffled)

    def update(key, state, hp):
        key_rollout, key_epochs = jax.random.split(key)
        (env_state, obs, carry, done, ret), traj = collect(key_rollout, state, hp)
        advantages, returns = jax.vmap(gae, in_axes=(0, 0, 0, 0, 0, None, None))(
            hp.reward_scale * traj["rewards"], traj["values"], traj["next_values"], traj["terminals"],
            traj["dones"], hp.gamma, hp.gae_lambda)
        segment = Segment(carry0=state.carry, obs=traj["obs"], resets=traj["resets"], actions=traj["actions"],
                          log_probs=traj["log_probs"], values=traj["values"],
                          advantages=normalize_advantages(advantages), returns=returns)
        (params, opt_state), stats = jax.lax.scan(
            lambda c, k: epoch(c, k, segment, hp), (state.params, state.opt_state),
            jax.random.split(key_epochs, num_epochs))
        num_episodes = jnp.sum(traj["dones"]).astype(jnp.float32)
        metrics = jax.tree.map(jnp.mean, stats)
        metrics["episode_return"] = jnp.where(
            num_episodes > 0, jnp.sum(traj["ended_return"]) / jnp.maximum(num_episodes, 1.0), jnp.nan)
        metrics["num_episodes"] = num_episodes
        new_state = PPOState(params=params, opt_state=opt_state, env_state=env_state, obs=obs, carry=carry,
                             done=done, episode_return=ret, step=state.step + 1)
        return new_state, metrics

    def evaluate(key, state, hp):
        key_reset, key_steps = jax.random.split(key)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(key_reset, num_eval_episodes), hp.task)
        space = env.action_space(hp.task)
        step = jax.vmap(net.step, in_axes=(None, 0, 0, None))
        env_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

        def body(carry, key_t):
            env_state, obs, rnn, alive, ret, last = carry
            rnn, (mean, _, _, _) = step(state.params, rnn, obs, jnp.array(False))
            obs, env_state, reward, terminated, truncated, _ = env_step(
                jax.random.split(key_t, num_eval_episodes), env_state, jnp.clip(mean, space.low, space.high), hp.task)
            ret = ret + jnp.where(alive, reward, 0.0)
            last = jnp.where(alive, reward, last)
            alive = alive & ~(terminated | truncated)
            return (env_state, obs, rnn, alive, ret, last), None

        zeros = jnp.zeros((num_eval_episodes,), jnp.float32)
        start = (env_state, obs, broadcast(net.initial_carry(), num_eval_episodes),
                 jnp.ones((num_eval_episodes,), bool), zeros, zeros)
        (_, _, _, _, ret, last), _ = jax.lax.scan(body, start, jax.random.split(key_steps, eval_steps))
        return {"return": jnp.mean(ret), "return_std": jnp.std(ret), "final_reward": jnp.mean(last)}

    default_hparams = PPOHParams(**{k: jnp.float32(v) for k, v in HPARAM_DEFAULTS.items()},
                                 gain=jnp.float32(1.0), task=env.default_params)
    return LearningRule(
        init=init,
        update=update,
        evaluate=evaluate,
        network=lambda state: state.params,
        default_hparams=default_hparams,
        name="ppo",
    )


def _check_static(num_envs, num_steps, num_minibatches, num_epochs, num_eval_episodes, eval_steps,
                  clip_value_loss, bootstrap_truncation) -> None:
    for name, value in (("num_envs", num_envs), ("num_steps", num_steps), ("num_minibatches", num_minibatches),
                        ("num_epochs", num_epochs), ("num_eval_episodes", num_eval_episodes),
                        ("eval_steps", eval_steps)):
        check_range(f"rule.{name}", value, 1, integer=True)
    if num_envs % num_minibatches:
        fail("rule.num_minibatches", num_minibatches,
             f"a divisor of rule.num_envs = {num_envs} (minibatches are whole environments)")
    check_choice("rule.clip_value_loss", clip_value_loss, (True, False))
    check_choice("rule.bootstrap_truncation", bootstrap_truncation, (True, False))


def _check_ppo(values) -> None:
    _check_static(**{k: values[k] for k in STATIC_DEFAULTS if k not in ("hidden_head", "head_layers")})
    check_range("rule.hidden_head", values["hidden_head"], 1, integer=True)
    check_range("rule.head_layers", values["head_layers"], 0, integer=True)
    check_range("rule.learning_rate", values["learning_rate"], 0.0, low_open=True)
    check_range("rule.gamma", values["gamma"], 0.0, 1.0)
    check_range("rule.gae_lambda", values["gae_lambda"], 0.0, 1.0)
    for name in ("clip_eps", "max_grad_norm", "reward_scale"):
        check_range(f"rule.{name}", values[name], 0.0, low_open=True)
    for name in ("ent_coef", "vf_coef"):
        check_range(f"rule.{name}", values[name], 0.0)


register_rule(
    "ppo",
    ppo,
    static=set(STATIC_DEFAULTS),
    hparams_cls=PPOHParams,
    defaults={**STATIC_DEFAULTS, **HPARAM_DEFAULTS},
    check=_check_ppo,
)
