"""RePaint inpainting (Lugmayr et al. 2022) over the linear step rule of DDPM and DDIM.

The base sampler visits n timesteps t_n > ... > t_1; call "level k" the state
x at t_k (level n: pure noise, level 0: the clean image). RePaint walks the
levels down with the base sampler's reverse steps, and after each step to
level k − 1 replaces the known pixels by the original image noised to that
level with q(x_{t_{k−1}} | x_0), so the unknown pixels are generated around
them. To let the two parts agree, the walk jumps back up: at every
`jump_length`-th level it re-noises the whole image `jump_length` levels with
q(x_{t_{k+j}} | x_{t_k}) and walks down again, `jump_n_sample − 1` times.
The whole walk, jumps included, is one table of transitions that one compiled
loop runs.
"""

import keras
import numpy as np
from keras import ops

from keras_ddpm.samplers.sampler import Sampler, noise_seed_generator, normal
from keras_ddpm.utils import check_int


def repaint_levels(num_steps, jump_length, jump_n_sample):
    """The levels RePaint visits, from `num_steps` (noise) down to 0 (clean).

    Args:
        num_steps: int >= 1, the base sampler's steps n.
        jump_length: int >= 1, levels re-noised per jump.
        jump_n_sample: int >= 1, how often each stretch between jump points
            is walked (1: no jumps, plain replacement).

    Returns:
        A list of ints, starting at `num_steps` and ending at 0; consecutive
        entries differ by −1 (a reverse step) or by +`jump_length` (a jump).

    Example:

    ```python
    from keras_ddpm.models.inpainting import repaint_levels

    repaint_levels(4, jump_length=2, jump_n_sample=2)  # [4, 3, 2, 4, 3, 2, 1, 0, 2, 1, 0]
    ```
    """
    jumps = {
        level: jump_n_sample - 1
        for level in range(0, num_steps - jump_length + 1, jump_length)
    }
    level, path = num_steps, [num_steps]
    while level > 0:
        level -= 1
        path.append(level)
        if jumps.get(level, 0) > 0:
            jumps[level] -= 1
            level += jump_length
            path.append(level)
    return path


def is_linear_sampler(sampler):
    """Whether `sampler` steps by the linear rule of `Sampler` (DDPM, DDIM), as RePaint needs."""
    cls = type(sampler)
    return cls.step is Sampler.step and cls.tables is Sampler.tables


def check_linear_sampler(sampler):
    """RePaint composes the linear rule's steps: refuse a sampler with its own step."""
    cls = type(sampler)
    if not is_linear_sampler(sampler):
        raise ValueError(
            "`inpaint` needs a sampler of the linear step rule (ddpm, or ddim with "
            f"any eta), got {cls.__name__}."
        )
    return sampler


def repaint_tables(sampler, schedule, steps, jump_length, jump_n_sample):
    """Float32 per-transition tables of the RePaint walk for `sampler`'s steps.

    Rows, one per transition from level k to the next level k':

    - `"t"`: the timestep t_k (the network's input);
    - `"reverse"`: 1 for a reverse step (k' = k − 1), 0 for a jump;
    - `"signal"`, `"noise"`: sqrt(ᾱ) and sqrt(1 − ᾱ) at t_k (for clipping);
    - `"a"`, `"b"`, `"c"`, `"d"`: the base sampler's step from t_k to t_k';
    - `"up_a"`, `"up_d"`: a jump's q(x_k' | x_k) = N(up_a·x_k, up_d²·I);
    - `"known_a"`, `"known_d"`: the known pixels at level k', x_0 noised
      with q(x_k' | x_0) (1 and 0 at level 0).
    """
    timesteps, alpha_bar = sampler.visited(schedule, steps)
    num = len(timesteps)
    jump_length = check_int("jump_length", jump_length, low=1)
    jump_n_sample = check_int("jump_n_sample", jump_n_sample, low=1)
    if jump_n_sample > 1 and jump_length > num:
        raise ValueError(
            f"`jump_length` ({jump_length}) must be at most the steps ({num}) "
            "for jumps to happen."
        )
    # Level k ↔ visited index num − k; level 0 is the clean image (ᾱ = 1).
    level_t = np.concatenate([[0.0], np.asarray(timesteps, np.float64)[::-1]])
    level_ab = np.concatenate([[1.0], np.asarray(alpha_bar, np.float64)[::-1]])
    a, b, c, d = (
        np.broadcast_to(np.asarray(v, np.float64), (num,))
        for v in sampler.coefficients(
            np.asarray(alpha_bar, np.float64), np.append(alpha_bar[1:], 1.0)
        )
    )
    # Coefficients of the base step leaving level k, indexed by level.
    step_coefficients = [np.concatenate([[0.0], v[::-1]]) for v in (a, b, c, d)]
    path = repaint_levels(num, jump_length, jump_n_sample)
    rows = {
        name: []
        for name in (
            "t",
            "reverse",
            "signal",
            "noise",
            "a",
            "b",
            "c",
            "d",
            "up_a",
            "up_d",
            "known_a",
            "known_d",
        )
    }
    for here, there in zip(path[:-1], path[1:]):
        reverse = there < here
        ratio = level_ab[there] / level_ab[here]
        values = {
            "t": level_t[here],
            "reverse": float(reverse),
            "signal": np.sqrt(level_ab[here]),
            "noise": np.sqrt(1.0 - level_ab[here]),
            "a": step_coefficients[0][here] if reverse else 0.0,
            "b": step_coefficients[1][here] if reverse else 0.0,
            "c": step_coefficients[2][here] if reverse else 0.0,
            "d": step_coefficients[3][here] if reverse else 0.0,
            "up_a": 0.0 if reverse else np.sqrt(ratio),
            "up_d": 0.0 if reverse else np.sqrt(1.0 - ratio),
            "known_a": np.sqrt(level_ab[there]),
            "known_d": np.sqrt(1.0 - level_ab[there]),
        }
        for name, value in values.items():
            rows[name].append(value)
    return {name: np.asarray(v, np.float32) for name, v in rows.items()}


def repaint_loop(
    sampler, denoise, x, known, mask, tables, seed_state, return_trajectory=False
):
    """Run the RePaint walk of `tables` from `x`; one `fori_loop`.

    Args:
        sampler: the base sampler (its `clip` is used).
        denoise: callable `(x_t, t) -> (x0_hat, eps_hat)`.
        x: float32 tensor `(B, H, W, C)` at the first level.
        known: the original images in [-1, 1], shaped like `x`.
        mask: 1 where a pixel is kept from `known`, 0 where it is filled in;
            broadcastable to `x` (soft values blend the two).
        tables: `repaint_tables(...)` as tensors.
        seed_state: the loop's noise seed state (`noise_seed_state`).
        return_trajectory: bool, also return x after every transition.

    Returns:
        The final images, or `(images, trajectory)`.
    """
    generator = noise_seed_generator()
    num = int(tables["t"].shape[0])
    rank = len(x.shape)

    def advance(i, x, seed):
        row = {k: ops.take(v, i) for k, v in tables.items()}
        current = [seed]

        def noise():
            with keras.StatelessScope(
                state_mapping=[(generator.state, current[0])]
            ) as scope:
                z = normal(ops.shape(x), generator)
            current[0] = scope.get_current_value(generator.state)
            return z

        def reverse():
            x0, eps = sampler.predict(denoise, x, row["t"], row["signal"], row["noise"])
            return row["a"] * x + row["b"] * x0 + row["c"] * eps

        # A jump needs no network call: skip it in that branch.
        moved = ops.cond(row["reverse"] > 0, reverse, lambda: row["up_a"] * x)
        z = noise()
        moved = moved + (row["d"] + row["up_d"]) * z
        known_here = row["known_a"] * known + row["known_d"] * noise()
        replaced = mask * known_here + (1.0 - mask) * moved
        x = ops.where(row["reverse"] > 0, replaced, moved)
        return ops.cast(x, "float32"), current[0]

    carry = (ops.cast(x, "float32"), seed_state)
    if not return_trajectory:
        return ops.fori_loop(0, num, lambda i, c: advance(i, *c), carry)[0]
    trajectory = ops.zeros((num + 1,) + tuple(ops.shape(x)), dtype="float32")
    trajectory = ops.slice_update(trajectory, (0,) * (rank + 1), carry[0][None])

    def body(i, carry):
        x, seed, trajectory = carry
        x, seed = advance(i, x, seed)
        trajectory = ops.slice_update(trajectory, (i + 1,) + (0,) * rank, x[None])
        return x, seed, trajectory

    x, _, trajectory = ops.fori_loop(0, num, body, carry + (trajectory,))
    return x, trajectory
