"""What every variable, coordinate and dimension of a results store means.

The store (:mod:`jaxrnn.population.store`) is read by people and programs that never import
jaxrnn, so every data variable and coordinate carries CF-style attributes:

- ``long_name``: a short human label (plot axis text);
- ``units``: ``"1"`` for dimensionless numbers (CF convention), ``"update"`` for counts of
  training updates, ``"s"`` for seconds, ...; ``"as in the config"`` for a swept config field
  whose unit this table does not know;
- ``description``: what the numbers are, including the dimension names of params snapshots;
- ``nan_meaning`` (variables that can hold NaN): how to read a NaN there.

Params snapshots get named dimensions instead of generated ones (:func:`param_dims`):
``neuron`` (the receiving unit), ``neuron_pre`` (the sending unit of ``W_rec``), ``input``,
``output``, ``rank``, ``head_unit`` / ``head_unit_pre`` (actor-critic MLP units), ``action``,
``value_output``. An unknown parameter keeps per-variable axis names ``<variable>.axis<i>``.
Analysis variables (:mod:`jaxrnn.analysis.pipeline`) are described by :func:`describe_analysis`.
Nothing here imports JAX.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

UNKNOWN_UNITS = "as in the config"

# Per-update metrics (``<name>[member, update]``), as rules report them.
UPDATE_METRICS: dict[str, tuple[str, str, str]] = {
    "loss": ("training loss", "1",
             "loss of each training update as the rule defines it (BPTT, full-FORCE, Hebbian: mean squared error "
             "of the masked trial outputs; GA: the best individual's loss; closed_loop / open_loop: the episode "
             "cost; PPO: the total clipped PPO objective); see the rule's module in jaxrnn.rules"),
    "grad_norm": ("gradient norm", "1", "global L2 norm of the update's gradient, before clipping"),
    "mean_loss": ("mean loss of the GA population", "1", "loss averaged over every individual the GA evaluated"),
    "state_cost": ("closed-loop state cost", "1", "state part of the closed-loop cost of the update's episodes"),
    "approx_kl": ("approximate KL divergence", "nat", "mean approximate KL(old policy || new policy) of the PPO epochs"),
    "clip_fraction": ("clip fraction", "1", "fraction of PPO samples whose probability ratio was clipped"),
    "entropy": ("policy entropy", "nat", "mean entropy of the Gaussian policy"),
    "episode_return": ("episode return", "reward",
                       "mean unscaled return of the episodes that ended during the update's rollout"),
    "num_episodes": ("episodes ended", "1", "number of episodes that ended during the update's rollout"),
    "policy_loss": ("policy loss", "1", "clipped surrogate policy loss of PPO"),
    "value_loss": ("value loss", "1", "value-function loss of PPO"),
}
# Validation metrics (``val_<name>[member, evaluation]``).
EVAL_METRICS: dict[str, tuple[str, str, str]] = {
    "accuracy": ("validation accuracy", "1",
                 "fraction of the shared validation trials (PRNGKey(run.validation_seed)) answered correctly"),
    "loss": ("validation loss", "1", "the rule's loss on the shared validation trials"),
    "test_cost": ("closed-loop test cost", "1", "closed-loop cost from the rule's test initial states"),
    "neg_test_cost": ("negative test cost", "1", "-test_cost, a score where larger is better (stopping metric)"),
    "return": ("evaluation return", "reward", "mean return of the evaluation episodes"),
    "return_std": ("evaluation return std", "reward", "standard deviation of the evaluation episodes' returns"),
    "final_reward": ("final reward", "reward", "mean reward of the last step of the evaluation episodes"),
}
METRIC_NAN = ("NaN after the member stopped training (converged: see converged_update; diverged: see diverged), "
              "past its own run.num_updates in a union of sub-grids, or where the rule reports NaN "
              "(e.g. episode_return when no episode ended)")

VARIABLES: dict[str, tuple[str, str, str, str]] = {  # name -> long_name, units, description, nan_meaning
    "converged_update": ("update at which the member converged", "update",
                         "updates done when the stopping criterion was first met (min of the last run.stop_window "
                         "validations of run.stop_metric >= run.stop_threshold); -1 if never", ""),
    "diverged": ("diverged", "1",
                 "True if the member's state or loss became non-finite: that update was discarded and the member "
                 "frozen and flagged", ""),
    "converged_time": ("time to convergence", "s",
                       "seconds from the start of the member's group to the end of the chunk in which it converged",
                       "NaN: the member never converged"),
}

COORDS: dict[str, tuple[str, str, str]] = {
    "member": ("member", "1", "position of the member in the grid (sweep axes in config order, seeds innermost)"),
    "seed": ("seed", "1", "the member's seed: init_key, train_key = split(PRNGKey(seed))"),
    "group": ("compiled group", "1", "index of the compiled program (members sharing every static field) that "
                                     "trained the member"),
    "task.name": ("task", "1", "registered task name (jaxrnn.make)"),
    "rule.name": ("learning rule", "1", "registered learning-rule name (jaxrnn.rules)"),
    "update": ("update", "update", "number of training updates done (1-based: the loss of update u)"),
    "evaluation": ("update of the validation", "update", "updates done when the member was validated"),
    "evaluation_update": ("update of the validation", "update", "the same numbers as the evaluation coordinate"),
    "snapshot": ("update of the snapshot", "update", "updates done when the params were snapshotted (0: initial)"),
    "snapshot_update": ("update of the snapshot", "update",
                        "updates done when the params were snapshotted (0: initial); 2-D [member, snapshot] when "
                        "sub-grids snapshot at different updates, -1 where a member has fewer snapshots"),
    "subgrid": ("sub-grid", "1", "0: the top-level tables; k: the k-th [[subgrid]] of the config"),
    "run.num_updates": ("training budget", "update", "the member's run.num_updates"),
}
# Units of config fields when they are swept (coords named by their dotted path).
FIELD_UNITS: dict[str, str] = {
    "num_steps": "time step", "trial_length": "time step", "stimulus_end": "time step",
    "max_steps_in_episode": "time step", "dt": "s", "ramp_duration": "s", "frequencies": "Hz",
    "g": "m s-2", "m": "kg", "l": "m", "max_speed": "rad s-1", "max_torque": "N m",
}
DIMENSIONLESS_FIELDS = re.compile(
    r"(noise_std|coherence_max|val_coherence_max|learning_rate|gain|alpha|init_state_scale|mutation_std|"
    r"max_grad_norm|reg_u|ff_alpha|perturb_prob|perturb_size|trace_rate|baseline_rate|max_dw|gamma|"
    r"gae_lambda|clip_eps|ent_coef|vf_coef|reward_scale|beta|clamp|obs_noise_std|input_scale|readout_scale|"
    r"hidden|rank|batch|population_size|num_parents|num_elites|num_validation_trials|num_contexts|"
    r"teacher_member|warmup_trials|eval_window|num_envs|num_minibatches|num_epochs|hidden_head|head_layers)$")

# Params snapshots: leaf path (after "params.") -> names of the axes after [member, snapshot].
PARAM_AXES: list[tuple[str, tuple[str, ...], str]] = [
    (r"cell\.W_rec", ("neuron", "neuron_pre"), "recurrent weights: [i, j] is the weight from neuron j to neuron i"),
    (r"cell\.W_in", ("neuron", "input"), "input weights: [i, k] is the weight from input k to neuron i"),
    (r"cell\.b", ("neuron",), "bias of each neuron"),
    (r"cell\.[UV]", ("neuron", "rank"), "low-rank factor: W_rec = sum_k U[:, k] V[:, k]^T (scaled, see LowRankRNN)"),
    (r"readout\.W_out", ("output", "neuron"), "read-out weights: [o, i] is the weight from neuron i to output o"),
    (r"readout\.b_out", ("output",), "read-out bias"),
    (r"(actor|critic)\.trunk\.W_hidden", ("head_unit", "neuron"), "first layer of the head MLP: [h, i] from neuron i"),
    (r"(actor|critic)\.trunk\.W_hidden\d+", ("head_unit", "head_unit_pre"), "deeper layer of the head MLP"),
    (r"(actor|critic)\.trunk\.b_hidden\d*", ("head_unit",), "bias of a head MLP layer"),
    (r"actor\.W_mean", ("action", "head_unit"), "policy-mean layer: [a, h] from head unit h to action a"),
    (r"actor\.(b_mean|log_std)", ("action",), "policy-mean bias / state-independent log standard deviation"),
    (r"critic\.W_value", ("value_output", "head_unit"), "value layer"),
    (r"critic\.b_value", ("value_output",), "value bias"),
]
PARAM_NAN = ("NaN where the member's network has no such entry: padding to the largest network of the store "
             "(members whose group has a smaller or no such array), or a snapshot the member does not have "
             "(snapshot_update = -1)")


def param_dims(name: str, ndim: int) -> tuple[str, ...]:
    """Dimension names of the trailing ``ndim`` axes of params variable ``name`` (``params.cell.W_rec``)."""
    leaf = name.removeprefix("params.")
    for pattern, axes, _ in PARAM_AXES:
        if re.fullmatch(pattern, leaf) and len(axes) == ndim:
            return axes
    return tuple(f"{name}.axis{i}" for i in range(ndim))


def _param_attrs(name: str, dims: tuple[str, ...]) -> dict[str, str]:
    leaf = name.removeprefix("params.")
    what = next((text for pattern, _, text in PARAM_AXES if re.fullmatch(pattern, leaf)), "network parameter")
    return {"long_name": f"{leaf} snapshots", "units": "1",
            "description": f"{what}; dims {list(dims)}, one value per member and snapshot (the network params at "
                           "the snapshot coordinate's update)",
            "nan_meaning": PARAM_NAN}


def field_attrs(field: str) -> dict[str, str]:
    """Attributes of a per-member coordinate named by a config field's dotted path."""
    table, key = field.split(".", 1)
    units = FIELD_UNITS.get(key, "1" if DIMENSIONLESS_FIELDS.fullmatch(key) else UNKNOWN_UNITS)
    attrs = {"long_name": f"{table} {key}", "units": units,
             "description": f"the member's value of the config field {field} (a sweep axis, or set differently "
                            "in different sub-grids)"}
    return attrs


def variable_attrs(name: str, dims: tuple[str, ...]) -> dict[str, str]:
    """Attributes of data variable ``name`` of a training store."""
    if name.startswith("params."):
        return _param_attrs(name, dims[2:])
    if name in VARIABLES:
        long_name, units, description, nan = VARIABLES[name]
        return {"long_name": long_name, "units": units, "description": description,
                **({"nan_meaning": nan} if nan else {})}
    if dims == ("member", "evaluation") and name.startswith("val_"):
        metric = name.removeprefix("val_")
        long_name, units, description = EVAL_METRICS.get(
            metric, (f"validation {metric.replace('_', ' ')}", UNKNOWN_UNITS,
                     f"validation metric {metric!r} reported by the rule's evaluate"))
    else:
        long_name, units, description = UPDATE_METRICS.get(
            name, (name.replace("_", " "), UNKNOWN_UNITS, f"per-update metric {name!r} reported by the rule's update"))
    return {"long_name": long_name, "units": units, "description": description, "nan_meaning": METRIC_NAN}


def coord_attrs(name: str) -> dict[str, str]:
    """Attributes of coordinate ``name`` of a training store."""
    if name in COORDS:
        long_name, units, description = COORDS[name]
        return {"long_name": long_name, "units": units, "description": description}
    if "." in name:
        return field_attrs(name)
    return {"long_name": name.replace("_", " "), "units": UNKNOWN_UNITS, "description": name}


def describe(dataset):
    """Set the attributes of every data variable and coordinate of a training store (in place)."""
    for name, variable in dataset.data_vars.items():
        variable.attrs.update(variable_attrs(str(name), tuple(map(str, variable.dims))))
    for name, coord in dataset.coords.items():
        coord.attrs.update(coord_attrs(str(name)))
    return dataset


MDS_NAN = ("NaN: the member was left out of its task's embedding (NaN distances: non-finite activity or "
           "signature), or the task has too few members to embed in 2-D")
SILHOUETTE_NAN = "NaN: fewer than two rules among the task's embedded members, or too few members"
# Analysis variables (jaxrnn.analysis.pipeline): long_name, units, how to read NaN (or a sentinel).
ANALYSIS: dict[str, tuple[str, str, str]] = {
    "fp_x": ("fixed point", "1", "NaN: no fixed point in this slot (fewer than max_fps found for the probe), a probe "
                                 "the member's task does not have (probe_context = -1), or a neuron beyond its size"),
    "fp_valid": ("fixed point found", "1", "False marks an empty slot (no NaN)"),
    "fp_stable": ("stable fixed point", "1", "False also for empty slots: read with fp_valid (no NaN)"),
    "fp_q": ("fixed-point residual q", "1", "NaN: empty slot (see fp_valid)"),
    "fp_num_unstable": ("unstable directions", "1", "-1: empty slot (no NaN)"),
    "fp_max_abs_eig": ("largest |eigenvalue| at the fixed point", "1", "NaN: empty slot (see fp_valid)"),
    "fp_count": ("distinct fixed points", "1", "0 for padded probes (no NaN)"),
    "probe_value": ("probe input", "1", "NaN: a probe slot the member's task does not have (probe_context = -1)"),
    "probe_context": ("probe context", "1", "-1: a padded probe slot (no NaN)"),
    "index_profile": ("fixed-point index profile", "1",
                      "NaN: a padded probe slot, or a probe without fixed points to profile"),
    "topology_signature": ("topology signature", "1", "no NaN: entries not computed are 0 with "
                                                       "topology_signature_valid False"),
    "topology_signature_valid": ("topology signature entry valid", "1", "False: that feature could not be computed"),
    "svcca_distance": ("SVCCA distance", "1", "NaN between members of different tasks (different conditions), "
                                              "and on the row and column of a member whose activity is not finite"),
    "topology_distance": ("topology distance", "1", "NaN between members of different tasks, and on the row and "
                                                    "column of a member whose signature is NaN"),
    "index_profile_distance": ("index-profile distance", "1", "NaN between members of different tasks, and on the "
                                                              "row and column of a member whose profile is NaN"),
    "svcca_mds": ("MDS of SVCCA distances", "1", MDS_NAN),
    "topology_mds": ("MDS of topology distances", "1", MDS_NAN),
    "index_profile_mds": ("MDS of index-profile distances", "1", MDS_NAN),
    "svcca_silhouette": ("silhouette of rules (SVCCA)", "1", SILHOUETTE_NAN),
    "topology_silhouette": ("silhouette of rules (topology)", "1", SILHOUETTE_NAN),
    "index_profile_silhouette": ("silhouette of rules (index profile)", "1", SILHOUETTE_NAN),
    "integration_response": ("integration response", "1",
                             "evidence at the end of the pulse; NaN only if the member's read-out is not finite"),
    "integration_retention": ("integration retention", "1",
                              "kept fraction of the evidence after the delay; NaN: zero response (or non-finite)"),
    "integration_decay_time": ("integration decay time", "time step",
                               "inf: no decay (retention >= 1); 0: retention <= 0; NaN: retention NaN"),
    "integration_class": ("integration class", "1", "1 stable, 0 transient, -1 unresponsive (no NaN)"),
    "analysis_snapshot": ("analysed snapshot", "1", "index of the member's snapshot that was analysed (no NaN)"),
}
ANALYSIS_COORDS: dict[str, tuple[str, str, str]] = {
    "member_b": ("member (second of a pair)", "1", "the member index of the other network of a pairwise distance"),
    "analysis_task": ("task of the embedding", "1", "task whose members the silhouette is computed over"),
    "fp_index": ("fixed-point index class", "1", "stable / saddle (one unstable direction) / higher"),
}


def describe_analysis(dataset, rows: Mapping[str, tuple[str, str, str]] | None = None):
    """Set ``long_name``, ``units`` and ``nan_meaning`` on analysis variables and coords (in place)."""
    table = {**ANALYSIS, **(rows or {})}
    for name, variable in dataset.data_vars.items():
        long_name, units, nan = table.get(str(name), (str(name).replace("_", " "), "1", "see the analysis docs"))
        variable.attrs.update({"long_name": long_name, "units": units, "nan_meaning": nan,
                               "description": f"{long_name} (jaxrnn.analysis.pipeline.analyze)"})
    for name, coord in dataset.coords.items():
        if str(name) in ANALYSIS_COORDS:
            long_name, units, description = ANALYSIS_COORDS[str(name)]
            coord.attrs.update({"long_name": long_name, "units": units, "description": description})
        elif not coord.attrs:
            coord.attrs.update(coord_attrs(str(name)))
    return dataset
