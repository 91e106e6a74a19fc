"""PettingZoo conformance of every registered Stackelberg game, made via ``pettingzoo.make``.

The default environments pass all seven of PettingZoo's own tests with every warning turned
into an error: no advisory warning is left that we could fix on our side. The options
(index observations, termination with probability ``1 - gamma``, the commitment variant) pass
the API and seed tests; index observations draw style advice that is inherent to the choice
(``Discrete`` observations are not arrays), silenced there by message.
"""

from __future__ import annotations

import functools
import types

import numpy as np
import pettingzoo
import pytest
from pettingzoo.test import (
    api_test,
    max_cycles_test,
    parallel_api_test,
    parallel_seed_test,
    render_test,
    seed_test,
    state_test,
)

import games

NUM_CYCLES = 60

#: ``api_test``'s advice about index observations (the point of the index form).
INDEX_ADVICE = [
    "Agents have different observation space sizes",
    "Observation is not a NumPy array",
    "Observation numpy array is all zeros",
    "Observation space for each agent probably should be",
    "Observations between agents are different classes",
    "Observations have different number of dimensions",
    "The class of observation spaces is different between two agents",
]


def _stackelberg_ids(registry: dict) -> list[str]:
    return sorted(env_id for env_id in registry if env_id.startswith("stackelberg/"))


AEC_IDS = _stackelberg_ids(pettingzoo.aec_registry)
PARALLEL_IDS = _stackelberg_ids(pettingzoo.parallel_registry)
#: The simulator-only games (the duopolies) observe one number, which ``api_test`` advises
#: against; tests/test_duopoly.py runs their conformance with that advice allowed.
STRICT_IDS = [i for i in AEC_IDS if games.game_kind(i) != "simulator"]
#: The games with a two-player ``GameModel`` (the options below are theirs); the toll network
#: and the economies (a planner and n followers) have no commitment variant and no leader-reward
#: tensor.
MODEL_IDS = sorted(games.GAMES)
#: The environments that take the observation/discount options and carry a model.
OPTION_IDS = sorted(i for i, info in games.REGISTRY.items() if info.kind in ("game", "economy"))


def test_every_game_is_registered_in_both_registries():
    # a bilevel problem or a text problem without an environment factory has none to register
    with_env = [i for i, info in games.REGISTRY.items()
                if info.kind not in ("problem", "text") or info.environment is not None]
    assert AEC_IDS == PARALLEL_IDS == sorted(with_env)


def test_register_all_is_idempotent(recwarn):
    games.register_all()
    games.register_all()
    assert not [w for w in recwarn if "Overriding environment" in str(w.message)]
    assert _stackelberg_ids(pettingzoo.aec_registry) == AEC_IDS


def _module(env_id: str, **options) -> types.SimpleNamespace:
    """A stand-in for a PettingZoo environment module (``env()`` and ``parallel_env()``)."""
    return types.SimpleNamespace(
        env=functools.partial(pettingzoo.make, "aec", env_id, **options),
        parallel_env=functools.partial(pettingzoo.make, "parallel", env_id, **options),
    )


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("env_id", STRICT_IDS)
def test_pettingzoo_conformance(env_id):
    mod = _module(env_id)
    api_test(mod.env(), num_cycles=NUM_CYCLES)
    parallel_api_test(mod.parallel_env(), num_cycles=NUM_CYCLES)
    seed_test(mod.env, num_cycles=NUM_CYCLES)
    parallel_seed_test(mod.parallel_env, num_cycles=NUM_CYCLES)
    max_cycles_test(mod)
    env = mod.env()
    # the ansi text opens with the model's name (a problem without a game model: the env's)
    model_name = env.model.name if hasattr(env, "model") else env.metadata["name"]
    render_test(mod.env, custom_tests={"ansi": lambda text: text.startswith(model_name)})
    state_test(mod.env(), mod.parallel_env())


OPTIONS = {
    "index": {"observation": "index"},
    "discount-termination": {"discount_as_termination": True},
}


@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("env_id", OPTION_IDS)
def test_pettingzoo_conformance_of_the_options(env_id, option, recwarn):
    mod = _module(env_id, **OPTIONS[option])
    api_test(mod.env(), num_cycles=NUM_CYCLES)
    parallel_api_test(mod.parallel_env(), num_cycles=NUM_CYCLES)
    seed_test(mod.env, num_cycles=NUM_CYCLES)
    parallel_seed_test(mod.parallel_env, num_cycles=NUM_CYCLES)
    state_test(mod.env(), mod.parallel_env())
    advice = INDEX_ADVICE if option == "index" else []
    unexpected = [w for w in recwarn if not any(a in str(w.message) for a in advice)]
    assert not unexpected, [str(w.message) for w in unexpected]


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("env_id", MODEL_IDS)
def test_pettingzoo_conformance_of_the_commitment_variant(env_id):
    make = functools.partial(pettingzoo.make, "aec", env_id, commitment=True)
    api_test(make(), num_cycles=NUM_CYCLES)
    seed_test(make, num_cycles=NUM_CYCLES)
    render_test(make)
    state_test(make(), pettingzoo.make("parallel", env_id))


@pytest.mark.parametrize("kind", ["aec", "parallel"])
@pytest.mark.parametrize("env_id", MODEL_IDS)
def test_pettingzoo_make_gives_registered_defaults_and_max_cycles(env_id, kind):
    env = pettingzoo.make(kind, env_id, max_cycles=3)
    assert env.max_cycles == 3
    expected = games.make_model(env_id)
    assert env.model.transitions.tobytes() == expected.transitions.tobytes()
    assert env.model.leader_rewards.tobytes() == expected.leader_rewards.tobytes()


def test_pettingzoo_make_passes_game_parameters():
    env = pettingzoo.make("aec", "stackelberg/random-markov-v0", n_states=3, seed=7)
    assert env.model.n_states == 3
    assert env.model.transitions.tobytes() == (
        games.random_markov_game(n_states=3, seed=7).transitions.tobytes()
    )


def test_metadata_names_the_game_and_its_discount():
    names = set()
    for env_id in OPTION_IDS:
        for kind in ("aec", "parallel"):
            env = pettingzoo.make(kind, env_id)
            assert env.metadata["name"] == str(env) == env_id
            assert env.metadata["gamma"] == env.metadata["discount"] == env.model.gamma
            names.add(env.metadata["name"])
    assert len(names) == len(OPTION_IDS)
    env = pettingzoo.make("parallel", "stackelberg/patrol-v0", discount_as_termination=True)
    assert (env.metadata["gamma"], env.metadata["discount"]) == (0.9, 1.0)
    _, infos = env.reset(seed=0)
    assert infos[games.LEADER]["discount"] == 1.0


def test_rgb_frames_show_the_round():
    """A frame is an image that changes when the state changes (the current state is drawn)."""
    env = pettingzoo.make("parallel", "stackelberg/patrol-v0", render_mode="rgb_array")
    _, infos = env.reset(seed=0)
    first, state = env.render(), infos[games.LEADER]["state"]
    while env.agents:
        _, _, _, _, infos = env.step({games.LEADER: 0, games.FOLLOWER: 1})
        if infos[games.LEADER]["state"] != state:
            break
    assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3
    assert not np.array_equal(first, env.render())
