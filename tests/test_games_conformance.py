"""PettingZoo conformance of every registered Stackelberg game, made via ``pettingzoo.make``."""

from __future__ import annotations

import pettingzoo
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test

import games

NUM_CYCLES = 60

# ``api_test`` gives style advice that contradicts the documented conventions: agents are named
# "leader"/"follower", observations are Discrete state indices (numpy int64 scalars) and the
# follower's AEC observation is a MultiDiscrete (state, leader action) pair, unlike the leader's.
# Those advisory warnings are silenced here by message; any other warning still shows.
STYLE_ADVICE = [
    "Agents have different observation space sizes",
    "Observation is not a NumPy array",
    "Observation numpy array is all zeros",
    "Observation space for each agent probably should be",
    "Observations between agents are different classes",
    "Observations have different number of dimensions",
    "The class of observation spaces is different between two agents",
    "We recommend agents to be named in the format",
]
pytestmark = [pytest.mark.filterwarnings(f"ignore:{message}") for message in STYLE_ADVICE]


def _stackelberg_ids(registry: dict) -> list[str]:
    return sorted(env_id for env_id in registry if env_id.startswith("stackelberg/"))


AEC_IDS = _stackelberg_ids(pettingzoo.aec_registry)
PARALLEL_IDS = _stackelberg_ids(pettingzoo.parallel_registry)


def test_every_game_is_registered_in_both_registries():
    assert AEC_IDS == PARALLEL_IDS == sorted(games.GAMES)


def test_register_all_is_idempotent(recwarn):
    games.register_all()
    games.register_all()
    assert not [w for w in recwarn if "Overriding environment" in str(w.message)]
    assert _stackelberg_ids(pettingzoo.aec_registry) == AEC_IDS


@pytest.mark.parametrize("env_id", AEC_IDS)
def test_aec_api(env_id):
    api_test(pettingzoo.make("aec", env_id), num_cycles=NUM_CYCLES)


@pytest.mark.parametrize("env_id", AEC_IDS)
def test_aec_seed(env_id):
    seed_test(lambda: pettingzoo.make("aec", env_id), num_cycles=NUM_CYCLES)


@pytest.mark.parametrize("env_id", PARALLEL_IDS)
def test_parallel_api(env_id):
    parallel_api_test(pettingzoo.make("parallel", env_id), num_cycles=NUM_CYCLES)


@pytest.mark.parametrize("env_id", PARALLEL_IDS)
def test_parallel_seed(env_id):
    parallel_seed_test(lambda: pettingzoo.make("parallel", env_id), num_cycles=NUM_CYCLES)


@pytest.mark.parametrize("kind", ["aec", "parallel"])
@pytest.mark.parametrize("env_id", PARALLEL_IDS)
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
