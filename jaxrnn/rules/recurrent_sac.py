"""Recurrent off-policy SAC (Ni, Eysenbach & Salakhutdinov 2021; Haarnoja et al. 2018).

The algorithm Huang, Singh & Rajan (2024) train their pendulum agents with ("policy gradients
(Ni, Eysenbach & Salakhutdinov, 2021)"): pomdp-baselines' recurrent model-free actor-critic —
sequence replay, a recurrent actor and a recurrent critic with separate encoders (their
default), SAC with automatic entropy tuning. The network is
:class:`~jaxrnn.models.sac_agent.SACAgent` (cell → one tanh layer → tanh-Gaussian policy; a second
cell → twin one-layer Q heads), the losses are :mod:`jaxrnn.rules.sac_objective`, the replay is
:mod:`jaxrnn.rules.sequence_replay` (flashbax, one buffer per member).

One iteration (``update``) is ``num_envs × num_steps`` environment steps (8 × 128 = 1,024, as
one iteration of :func:`~jaxrnn.rules.ppo.ppo`) and ``gradient_steps`` gradient steps, in
``num_rounds`` alternations of

1. **Collect** ``num_steps / num_rounds`` steps of every environment, continuing their episodes
   (env states, recurrent states and done flags live in the rule state). The action is
   ``a = tanh(μ + σ ε)`` of the actor (or ``U(−1, 1)`` while the agent has taken fewer than
   ``random_steps`` environment steps, pomdp-baselines' random initial pool), applied as the
   torque ``low + (a + 1)(high − low)/2``. gymnax auto-resets an environment at the end of an
   episode (resets drawn before the time loop, :mod:`jaxrnn.tasks.autoreset`); the recurrent
   state is zeroed before the new episode's first observation. Each step goes to the buffer
   with its true next observation (bootstrapping through time-limit cuts).
2. **Train**: ``gradient_steps / num_rounds`` steps, each on ``batch_size`` stored windows of
   ``sequence_length`` steps (from the zero state, reset at episode starts; the first
   ``burn_in`` steps of each window are left out of the losses): one Adam step (PyTorch's
   defaults, ε = 1e-8) on :func:`~jaxrnn.rules.sac_objective.sac_loss` — critic, actor and
   ``log α`` each with its own learning rate, the actor's and critic's gradients each clipped
   to global norm ``max_grad_norm`` (``inf``: no clip, as pomdp-baselines) — then the target
   critic moves by Polyak averaging, ``θ̄ ← τ θ + (1 − τ) θ̄``. Steps are skipped (computed,
   not applied) until the agent has taken ``learning_starts`` environment steps and every
   buffer row holds a window.

Metrics of ``update``: ``loss`` (the critic loss, mean over the iteration's gradient steps, applied
or not), ``actor_loss``, ``alpha_loss``, ``alpha`` and ``entropy`` (``−log π``) of the last step,
``q`` and ``target`` (means of ``Q_1`` and ``y``), ``actor_grad_norm``, ``critic_grad_norm``
(before clipping), ``gradient_steps`` (applied this iteration), ``episode_return`` (mean return of
the episodes that ended during the iteration; NaN if none) and ``num_episodes``. ``evaluate``
runs ``num_eval_episodes`` deterministic episodes (torque of ``a = tanh μ``) of ``eval_steps``
steps from the given key: ``return`` (mean), ``return_std``, ``final_reward``.

Differences from pomdp-baselines: the network (see :mod:`jaxrnn.models.sac_agent`: observation-only
encoder inputs, the paper's one-layer tanh heads, the package's cells); parallel environments and
rounds instead of one episode at a time; a window crossing an episode boundary keeps both parts
with a reset between them (pomdp-baselines masks the part after the boundary); the three losses
at the parameters before the step (``sac_objective``); TD3 is not implemented.

The action bounds come from ``env.action_space(env.default_params)`` and are static: sweeping
``task.max_torque`` changes the environment's clip, not the torque ``a = ±1`` maps to.

Configuration tiers:
  static (factory arguments): cell, env, num_envs, num_steps, num_rounds, gradient_steps,
    batch_size, sequence_length, burn_in, buffer_size, hidden_head, num_eval_episodes, eval_steps.
  sweepable (:class:`SACHParams`): actor_lr, critic_lr, alpha_lr, gamma, tau, init_temperature,
    target_entropy, reward_scale, max_grad_norm, random_steps, learning_starts, gain, task.
  state (:class:`SACState`): params, target critic, ``log α``, Adam moments, the replay buffer,
    the environments' rollout state and step counters.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from gymnax.environments import spaces

from jaxrnn._checks import check_range, fail
from jaxrnn.models.sac_agent import SACAgent, tanh_gaussian, to_env_units
from jaxrnn.rules.base import LearningRule
from jaxrnn.rules.hparams import hparam, make_hparams
from jaxrnn.rules.registry import register_rule
from jaxrnn.rules.sac_objective import sac_loss
from jaxrnn.rules.sequence_replay import Transition, can_sample, make_buffer, sample
from jaxrnn.rules.training import clip_by_global_norm, descend
from jaxrnn.tasks.autoreset import draw_resets, step_with_reset

__all__ = ["SACHParams", "SACState", "recurrent_sac"]

STATIC = ("num_envs", "num_steps", "num_rounds", "gradient_steps", "batch_size", "sequence_length", "burn_in",
          "buffer_size", "hidden_head", "num_eval_episodes", "eval_steps")


@struct.dataclass(kw_only=True)
class SACHParams:
    """Sweepable hyper-parameters of :func:`recurrent_sac` (pytree leaves).

    pomdp-baselines' defaults except ``critic_lr`` and ``reward_scale``: with one tanh layer the
    Q head's output grows by about one learning rate per Adam step, and Pendulum's returns run to
    −1,000s; at ``critic_lr = 3e-4``, ``reward_scale = 1`` the critic still read Q ≈ −95 after 7,000
    steps and FO agents were at −600 after 28 iterations, against −135 at these defaults
    (``benchmarks/sac_sweep/``).

    Attributes:
      actor_lr: Adam step size of the actor (cell + head) (3e-4).
      critic_lr: Adam step size of the critic (cell + twin heads) (1e-3).
      alpha_lr: Adam step size of ``log α`` (3e-4).
      gamma: discount γ (0.99).
      tau: Polyak rate of the target critic (0.005).
      init_temperature: the initial α (1.0, ``log α = 0``).
      target_entropy: H̄ of the temperature loss (−1 = −dim A).
      reward_scale: rewards are multiplied by this in the critic target (0.1).
      max_grad_norm: global-norm clip of the actor's and of the critic's gradient (``inf``: none).
      random_steps: int32, environment steps (of the agent, all environments) taken with
        uniformly random actions at the start (1,024).
      learning_starts: int32, environment steps before the first gradient step (1,024).
      gain: recurrent gain g of both initial cells.
      task: the environment's params.
    """

    actor_lr: jax.Array = hparam(3e-4)
    critic_lr: jax.Array = hparam(1e-3)
    alpha_lr: jax.Array = hparam(3e-4)
    gamma: jax.Array = hparam(0.99)
    tau: jax.Array = hparam(0.005)
    init_temperature: jax.Array = hparam(1.0)
    target_entropy: jax.Array = hparam(-1.0)
    reward_scale: jax.Array = hparam(0.1)
    max_grad_norm: jax.Array = hparam(float("inf"))
    random_steps: jax.Array = hparam(1024, dtype=jnp.int32)
    learning_starts: jax.Array = hparam(1024, dtype=jnp.int32)
    gain: jax.Array = hparam(1.0)
    task: Any


@struct.dataclass
class SACState:
    """Everything an agent carries from one iteration to the next.

    Attributes:
      params: ``{"cell", "actor", "critic"}`` (:class:`~jaxrnn.models.sac_agent.SACAgent`).
      target_critic: the target critic ``{"cell", "q1", "q2"}``.
      log_alpha: ``()`` log temperature.
      opt_state: Adam moments of ``(params, log_alpha)``.
      buffer: the flashbax trajectory-buffer state (``[num_envs, buffer_size // num_envs]`` steps).
      env_state: environment states ``[E, ...]``; obs: ``[E, M]`` next observations.
      carry: ``[E, N]`` actor recurrent states after the last step (before any reset).
      done: ``[E]`` bool, the last step ended an episode (reset the carry before ``obs``).
      episode_return: ``[E]`` return so far of each running episode.
      env_steps: int32 environment steps taken (all environments).
      step: int32 iterations taken.
    """

    params: Any
    target_critic: Any
    log_alpha: jax.Array
    opt_state: Any
    buffer: Any
    env_state: Any
    obs: jax.Array
    carry: Any
    done: jax.Array
    episode_return: jax.Array
    env_steps: jax.Array
    step: jax.Array


def polyak(target: Any, online: Any, tau: jax.Array) -> Any:
    """``θ̄ ← τ θ + (1 − τ) θ̄`` leaf by leaf."""
    return jax.tree.map(lambda t, o: tau * o + (1.0 - tau) * t, target, online)


def recurrent_sac(
    cell,
    env,
    *,
    num_envs: int = 8,
    num_steps: int = 128,
    num_rounds: int = 16,
    gradient_steps: int = 512,
    batch_size: int = 16,
    sequence_length: int = 32,
    burn_in: int = 0,
    buffer_size: int = 102_400,
    hidden_head: int = 64,
    num_eval_episodes: int = 20,
    eval_steps: int = 200,
) -> LearningRule:
    """Build recurrent SAC for ``cell`` on the continuous-action gymnax ``env``.

    Args:
      cell: a jaxrnn/flax cell (``VanillaRNN(64)`` in the study); actor and critic each get one.
      env: a gymnax environment with a ``Box`` action space (e.g. ``jaxrnn.make("pendulum-po")[0]``).
      num_envs: parallel environments E (8).
      num_steps: steps per environment per iteration T (128): ``E·T`` environment steps per update.
      num_rounds: collect/train alternations per iteration; divides ``num_steps`` and
        ``gradient_steps`` (16: 8 steps of every environment, then 32 gradient steps).
      gradient_steps: gradient steps per iteration (512: one per 2 environment steps).
      batch_size: stored windows per gradient step (16).
      sequence_length: steps per window (32).
      burn_in: first steps of each window left out of the losses (0).
      buffer_size: replay capacity in steps, a multiple of ``num_envs`` (102,400: all of a
        100-iteration run).
      hidden_head: units of the heads' hidden layer (64).
      num_eval_episodes: deterministic episodes per ``evaluate`` (20).
      eval_steps: steps per evaluation episode (200 = Pendulum-v1's time limit).

    Returns:
      The :class:`~jaxrnn.rules.base.LearningRule`; ``network(state)`` returns
      ``{"cell", "actor", "critic": {"cell", "q1", "q2"}}``.
    """
    _check_static(num_envs, num_steps, num_rounds, gradient_steps, batch_size, sequence_length, burn_in,
                  buffer_size, hidden_head, num_eval_episodes, eval_steps)
    space = env.action_space(env.default_params)
    if not isinstance(space, spaces.Box):
        fail("task.name", getattr(env, "name", env), "an environment with continuous (Box) actions for rule 'recurrent_sac'")
    obs_size = math.prod(env.observation_space(env.default_params).shape)
    num_actions = math.prod(space.shape)
    bounds = [tuple(float(v) for v in np.broadcast_to(np.asarray(b, np.float32), (num_actions,)))
              for b in (space.low, space.high)]
    agent = SACAgent(cell, obs_size, num_actions, hidden_head, *bounds)
    buffer = make_buffer(num_envs, buffer_size, batch_size, sequence_length)
    adam = optax.scale_by_adam()
    steps_per_round = num_steps // num_rounds
    grads_per_round = gradient_steps // num_rounds
    loss_mask = (jnp.arange(sequence_length) >= burn_in).astype(jnp.float32)

    def broadcast(tree, n):
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + x.shape), tree)

    def init(key, hp):
        key_net, key_env = jax.random.split(key)
        params = agent.init(key_net, hp.gain)
        log_alpha = jnp.log(jnp.asarray(hp.init_temperature, jnp.float32))
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key_env, num_envs), hp.task)
        example = Transition(obs=obs[0], actions=jnp.zeros((num_actions,), jnp.float32), rewards=jnp.float32(0.0),
                             terminals=jnp.array(False), next_obs=obs[0], resets=jnp.array(False))
        return SACState(
            params=params, target_critic=params["critic"], log_alpha=log_alpha,
            opt_state=adam.init((params, log_alpha)), buffer=buffer.init(example), env_state=env_state, obs=obs,
            carry=broadcast(agent.initial_carry(), num_envs), done=jnp.ones((num_envs,), bool),
            episode_return=jnp.zeros((num_envs,), jnp.float32), env_steps=jnp.zeros((), jnp.int32),
            step=jnp.zeros((), jnp.int32),
        )

    def act(key, reset, noise, uniform, explore, params, hp, env_state, obs, carry, done):
        """One step of one environment (the auto-reset drawn beforehand)."""
        carry, y = agent.encode(params["cell"], carry, obs, done)
        action, _ = tanh_gaussian(*agent.gaussian(params["actor"], y), noise)
        action = jnp.where(explore, uniform, action)
        next_obs, env_state, reward, terminated, truncated, info = step_with_reset(
            env, key, reset, env_state, to_env_units(action, agent.low, agent.high), hp.task)
        next_done = jnp.logical_or(terminated, truncated)
        stored = Transition(obs=obs, actions=action, rewards=reward.astype(jnp.float32), terminals=terminated,
                            next_obs=info["final_observation"], resets=done)
        return (env_state, next_obs, carry, next_done), stored

    def collect(key, state, hp):
        """``steps_per_round`` steps of every environment; stored transitions ``[E, t]``."""
        key_noise, key_uniform, key_env = jax.random.split(key, 3)
        noise = jax.random.normal(key_noise, (steps_per_round, num_envs, num_actions), jnp.float32)
        uniform = jax.random.uniform(key_uniform, (steps_per_round, num_envs, num_actions), jnp.float32, -1.0, 1.0)
        step_keys, resets = draw_resets(env, jax.random.split(key_env, (steps_per_round, num_envs)), hp.task)
        explore = state.env_steps + num_envs * jnp.arange(steps_per_round) < hp.random_steps

        def body(carry, xs):
            env_state, obs, rnn, done, ret = carry
            *per_env, explore_t = xs
            (env_state, obs, rnn, next_done), stored = jax.vmap(
                act, in_axes=(0, 0, 0, 0, None, None, None, 0, 0, 0, 0))(
                *per_env, explore_t, state.params, hp, env_state, obs, rnn, done)
            ret = ret + stored.rewards
            ended = jnp.where(next_done, ret, 0.0)
            return (env_state, obs, rnn, next_done, jnp.where(next_done, 0.0, ret)), (stored, ended, next_done)

        start = (state.env_state, state.obs, state.carry, state.done, state.episode_return)
        (env_state, obs, carry, done, ret), (stored, ended, dones) = jax.lax.scan(
            body, start, (step_keys, resets, noise, uniform, explore))
        state = state.replace(env_state=env_state, obs=obs, carry=carry, done=done, episode_return=ret,
                              env_steps=state.env_steps + num_envs * steps_per_round,
                              buffer=buffer.add(state.buffer, jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), stored)))
        return state, jnp.sum(ended), jnp.sum(dones).astype(jnp.float32)

    def gradient_step(learner, key, buffer_state, hp, apply):
        """One gradient step on a sampled batch; ``learner = (params, target_critic, log_alpha,
        opt_state)`` moves only where ``apply``."""
        params, target_critic, log_alpha, opt_state = learner
        key_sample, key_noise = jax.random.split(key)
        batch = sample(buffer, buffer_state, key_sample)
        noise = jax.random.normal(key_noise, (2, batch_size, sequence_length, num_actions), jnp.float32)
        (_, aux), (grads, grad_alpha) = jax.value_and_grad(
            lambda p, a: sac_loss(agent, p, a, target_critic, batch, noise, loss_mask, hp),
            argnums=(0, 1), has_aux=True)(params, log_alpha)
        actor_grads = {"cell": grads["cell"], "actor": grads["actor"]}
        aux["actor_grad_norm"] = optax.tree.norm(actor_grads)
        aux["critic_grad_norm"] = optax.tree.norm(grads["critic"])
        actor_grads = clip_by_global_norm(actor_grads, hp.max_grad_norm)
        grads = {**actor_grads, "critic": clip_by_global_norm(grads["critic"], hp.max_grad_norm)}
        (updates, update_alpha), new_opt_state = adam.update((grads, grad_alpha), opt_state)
        lr = {"cell": hp.actor_lr, "actor": hp.actor_lr, "critic": hp.critic_lr}
        new_params = {k: descend(params[k], updates[k], lr[k]) for k in params}
        new = (new_params, polyak(target_critic, new_params["critic"], hp.tau),
               descend(log_alpha, update_alpha, hp.alpha_lr), new_opt_state)
        return jax.tree.map(lambda n, o: jnp.where(apply, n, o), new, learner), aux

    def one_round(state, key, hp):
        key_collect, key_train = jax.random.split(key)
        state, ended_return, num_ended = collect(key_collect, state, hp)
        apply = can_sample(buffer, state.buffer) & (state.env_steps >= hp.learning_starts)
        learner = (state.params, state.target_critic, state.log_alpha, state.opt_state)
        learner, aux = jax.lax.scan(lambda c, k: gradient_step(c, k, state.buffer, hp, apply), learner,
                                    jax.random.split(key_train, grads_per_round))
        params, target_critic, log_alpha, opt_state = learner
        state = state.replace(params=params, target_critic=target_critic, log_alpha=log_alpha, opt_state=opt_state)
        return state, (aux, ended_return, num_ended, apply)

    def update(key, state, hp):
        state, (aux, ended_return, num_ended, applied) = jax.lax.scan(
            lambda s, k: one_round(s, k, hp), state, jax.random.split(key, num_rounds))
        num_episodes = jnp.sum(num_ended)
        metrics = {name: jnp.mean(aux[name]) for name in
                   ("critic_loss", "actor_loss", "alpha_loss", "q", "target", "actor_grad_norm", "critic_grad_norm")}
        metrics["loss"] = metrics.pop("critic_loss")
        metrics["alpha"] = aux["alpha"][-1, -1]
        metrics["entropy"] = aux["entropy"][-1, -1]
        metrics["gradient_steps"] = grads_per_round * jnp.sum(applied).astype(jnp.float32)
        metrics["episode_return"] = jnp.where(
            num_episodes > 0, jnp.sum(ended_return) / jnp.maximum(num_episodes, 1.0), jnp.nan)
        metrics["num_episodes"] = num_episodes
        return state.replace(step=state.step + 1), metrics

    def evaluate(key, state, hp):
        key_reset, key_steps = jax.random.split(key)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key_reset, num_eval_episodes), hp.task)
        step = jax.vmap(agent.policy_step, in_axes=(None, 0, 0, None))
        env_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

        def body(carry, key_t):
            env_state, obs, rnn, alive, ret, last = carry
            rnn, (torque, _, _) = step(state.params, rnn, obs, jnp.array(False))
            obs, env_state, reward, terminated, truncated, _ = env_step(
                jax.random.split(key_t, num_eval_episodes), env_state, torque, hp.task)
            ret = ret + jnp.where(alive, reward, 0.0)
            last = jnp.where(alive, reward, last)
            alive = alive & ~(terminated | truncated)
            return (env_state, obs, rnn, alive, ret, last), None

        zeros = jnp.zeros((num_eval_episodes,), jnp.float32)
        start = (env_state, obs, broadcast(agent.initial_carry(), num_eval_episodes),
                 jnp.ones((num_eval_episodes,), bool), zeros, zeros)
        (_, _, _, _, ret, last), _ = jax.lax.scan(body, start, jax.random.split(key_steps, eval_steps))
        return {"return": jnp.mean(ret), "return_std": jnp.std(ret), "final_reward": jnp.mean(last)}

    default_hparams = make_hparams(SACHParams, task=env.default_params)
    rule = LearningRule(init=init, update=update, evaluate=evaluate, network=lambda state: state.params,
                        default_hparams=default_hparams, name="recurrent_sac")
    return rule


def _check_static(num_envs, num_steps, num_rounds, gradient_steps, batch_size, sequence_length, burn_in,
                  buffer_size, hidden_head, num_eval_episodes, eval_steps) -> None:
    for name, value in (("num_envs", num_envs), ("num_steps", num_steps), ("num_rounds", num_rounds),
                        ("gradient_steps", gradient_steps), ("batch_size", batch_size),
                        ("sequence_length", sequence_length), ("buffer_size", buffer_size),
                        ("hidden_head", hidden_head), ("num_eval_episodes", num_eval_episodes),
                        ("eval_steps", eval_steps)):
        check_range(f"rule.{name}", value, 1, integer=True)
    check_range("rule.burn_in", burn_in, 0, sequence_length - 1, integer=True)
    for name, value in (("num_steps", num_steps), ("gradient_steps", gradient_steps)):
        if value % num_rounds:
            fail("rule.num_rounds", num_rounds, f"a divisor of rule.{name} = {value}")
    if buffer_size % num_envs:
        fail("rule.buffer_size", buffer_size, f"a multiple of rule.num_envs = {num_envs}")
    if buffer_size // num_envs < sequence_length:
        fail("rule.buffer_size", buffer_size,
             f"at least rule.num_envs × rule.sequence_length = {num_envs * sequence_length}")


def _check_recurrent_sac(values) -> None:
    _check_static(**{k: values[k] for k in STATIC})
    for name in ("actor_lr", "critic_lr", "alpha_lr", "init_temperature", "reward_scale"):
        check_range(f"rule.{name}", values[name], 0.0, low_open=True)
    check_range("rule.gamma", values["gamma"], 0.0, 1.0)
    check_range("rule.tau", values["tau"], 0.0, 1.0, low_open=True)
    check_range("rule.target_entropy", values["target_entropy"])
    if values["max_grad_norm"] != float("inf"):
        check_range("rule.max_grad_norm", values["max_grad_norm"], 0.0, low_open=True)
    check_range("rule.random_steps", values["random_steps"], 0, integer=True)
    check_range("rule.learning_starts", values["learning_starts"], 0, integer=True)


def conformance_example():
    """A tiny instance ``(rule, hparams)`` for :func:`jaxrnn.rules.conformance.check_rule`."""
    from jaxrnn.models.cells import VanillaRNN
    from jaxrnn.tasks.registry import make

    env, params = make("pendulum-po")
    rule = recurrent_sac(VanillaRNN(4), env, num_envs=2, num_steps=8, num_rounds=2, gradient_steps=2,
                         batch_size=2, sequence_length=4, buffer_size=64, hidden_head=4, num_eval_episodes=1,
                         eval_steps=8)
    return rule, rule.default_hparams.replace(task=params, random_steps=jnp.asarray(4), learning_starts=jnp.asarray(4))


register_rule(
    "recurrent_sac",
    recurrent_sac,
    static=set(STATIC),
    hparams_cls=SACHParams,
    check=_check_recurrent_sac,
    example=conformance_example,
)
