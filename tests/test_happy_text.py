"""Happy text (`stackelberg/happy-text-v0`, docs/theory.md §8.2): the generated corpus, the
VADER annotator with the network off, the reward model's gradient, common-random-number
sampling, and a tiny RLHF run of each leader whose sentiment must rise."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.neural.happy import (
    BagOfWordsReward,
    pair_up,
    preference_gradient,
    preference_nll,
    sequence_kl,
)
from agents.neural.happy_run import HappyConfigError, load_config, main, parse, run
from games.happy_text import (
    Annotator,
    CorpusSettings,
    generate_corpus,
    label_pairs,
    vocabulary,
)
from games.happy_text_lm import LMSettings, cache_file, pretrained, sample
from stackelberg.preferences import PreferencePairs

pytestmark = pytest.mark.xdist_group("torch")

ROOT = Path(__file__).resolve().parent.parent
TINY_LM = {"embed": 16, "hidden": 32, "max_length": 10, "pretrain_steps": 150,
           "pretrain_batch": 32, "pretrain_lr": 0.02, "corpus_size": 300}


@pytest.fixture
def offline(monkeypatch):
    """No network: every connection is refused."""

    def refuse(*args, **kwargs):
        raise OSError("the network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_the_corpus_is_a_function_of_its_seed_and_in_the_vocabulary():
    vocab = vocabulary()
    a, b = generate_corpus(CorpusSettings(size=50, seed=3)), generate_corpus(
        CorpusSettings(size=50, seed=3))
    assert a == b and a != generate_corpus(CorpusSettings(size=50, seed=4))
    for sentence in a:
        assert vocab.decode(vocab.encode(sentence) + [0, 5]) == sentence


def test_vader_scores_offline_from_the_lexicon_in_its_wheel(offline):
    import vaderSentiment

    lexicon = Path(vaderSentiment.__file__).parent / "vader_lexicon.txt"
    assert lexicon.is_file()
    scores = Annotator().score(["the food was great", "the food was awful", "the food was red",
                                ""])
    assert scores[0] > 0.5 and scores[1] < -0.4 and scores[2] == 0.0 and scores[3] == 0.0


def test_bradley_terry_labels_follow_the_sigmoid_of_the_score_gap():
    scores = np.array([0.0, 0.3])
    n = 40000
    pairs = label_pairs(scores, np.zeros(n, dtype=int), np.ones(n, dtype=int), 5.0,
                        np.random.default_rng(0))
    p = 1.0 / (1.0 + np.exp(-1.5))
    assert abs(pairs.label.mean() - p) < 4 * np.sqrt(p * (1 - p) / n)


def test_the_preference_gradient_matches_autograd_and_finite_differences():
    rng = np.random.default_rng(1)
    n, V = 12, 7
    phi = torch.as_tensor(rng.integers(0, 3, size=(n, V)), dtype=torch.float64)
    x = torch.tensor(rng.normal(size=V), dtype=torch.float64, requires_grad=True)
    pairs = PreferencePairs(np.arange(n), np.roll(np.arange(n), -3),
                            (rng.random(n) < 0.5).astype(float))
    closed = preference_gradient(x.detach(), phi, pairs)
    preference_nll(x, phi, pairs).backward()
    assert torch.allclose(closed, x.grad, atol=1e-12)
    h = 1e-6
    for i in range(V):
        e = torch.zeros(V, dtype=torch.float64)
        e[i] = h
        fd = (preference_nll(x.detach() + e, phi, pairs)
              - preference_nll(x.detach() - e, phi, pairs)) / (2 * h)
        assert abs(float(fd) - float(closed[i])) < 1e-8


def test_the_reward_model_counts_the_chosen_tokens():
    model = BagOfWordsReward(5, dtype=torch.float64)
    with torch.no_grad():
        model.x.copy_(torch.arange(5, dtype=torch.float64))
    from games.happy_text_lm import Generations
    gen = Generations(torch.tensor([[2, 2, 3, 0, 0], [4, 1, 1, 1, 1]]),
                      torch.tensor([[1.0, 1, 1, 1, 0], [1, 1, 1, 1, 1]]))
    phi = model.features(gen)
    assert phi.tolist() == [[1, 0, 2, 1, 0], [0, 4, 0, 0, 1]]
    assert model(phi).tolist() == [7.0, 8.0]


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    settings = parse({"game": TINY_LM}).lm
    cache = tmp_path_factory.mktemp("lm")
    return settings, cache, pretrained(settings, cache)


def test_the_model_is_cached_under_its_settings(tiny_lm):
    settings, cache, model = tiny_lm
    assert cache_file(settings, cache).is_file()
    again = pretrained(settings, cache)  # read, not trained again
    for a, b in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)
    other = LMSettings(**{**settings.__dict__, "seed": 1})
    assert cache_file(other, cache) != cache_file(settings, cache)


def test_inverse_cdf_sampling_draws_the_models_distribution_and_shares_its_noise(tiny_lm):
    _, _, model = tiny_lm
    generator = torch.Generator()
    generator.manual_seed(0)
    n = 4000
    uniforms = torch.rand(n, 10, generator=generator)
    gen = sample(model, uniforms)
    with torch.no_grad():
        first = torch.softmax(model(torch.zeros(1, 1, dtype=torch.long))[0][0, 0], -1)
    counts = torch.bincount(gen.tokens[:, 0], minlength=first.numel()).double() / n
    assert torch.max(torch.abs(counts - first.double())) < 4 * np.sqrt(0.25 / n)
    assert torch.equal(sample(model, uniforms[:50]).tokens, gen.tokens[:50])
    # every generation stops at its first end token, and the mask covers it
    ends = (gen.tokens == 0).float().argmax(1)
    stopped = (gen.tokens == 0).any(1)
    assert torch.equal(gen.mask.sum(1)[stopped], (ends + 1).float()[stopped])
    assert float(sequence_kl(model, model, gen).abs().max()) < 1e-6


def test_pairing_puts_two_different_draws_in_every_pair():
    partner, shift = pair_up(8, np.random.default_rng(0))
    assert 1 <= shift <= 7 and np.all(partner != np.arange(8))
    assert np.array_equal(partner, np.roll(np.arange(8), -shift))


@pytest.mark.parametrize("leader", [{"algorithm": "rac-neural", "xi": 0.2},
                                    {"algorithm": "alternating", "lr": 0.2}])
def test_a_tiny_rlhf_run_makes_the_text_happier_with_a_bounded_kl(leader, tiny_lm, offline):
    _, cache, _ = tiny_lm
    config = parse({"game": TINY_LM,
                    "leader": {**leader, "batch": 32},
                    "follower": {"tau": 0.5, "batch": 32, "lr": 0.02},
                    "run": {"iterations": 40, "seed": 0, "eval_every": 20,
                            "eval_samples": 128}})
    result = run(config, cache)
    before, after = result.evaluations[0], result.evaluations[-1]
    assert after.sentiment > before.sentiment + 0.2, (before, after)
    assert after.sentiment - before.sentiment > 4 * np.hypot(before.sentiment_se,
                                                             after.sentiment_se)
    # the follower maximizes E[r_x] - tau KL: KL <= (max r_x - E_{pi_0} r_x) / tau
    weights = np.array(list(result.reward_weights.values()))
    bound = 2 * config.lm.max_length * np.abs(weights).max() / config.tau
    assert 0 < after.kl < bound
    assert after.samples > 0 and after.labels == 40 * 32
    # x = 0 ranks no pair: f is log 2 on every pair, whatever the labels
    assert before.preference_nll == pytest.approx(np.log(2), abs=1e-12)
    assert np.isfinite(after.preference_nll) and after.preference_nll > 0


def test_a_bad_config_names_the_file_section_and_key(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('[leader]\nalgorithm = "rac-neural"\nwmax = 3\n')
    with pytest.raises(HappyConfigError, match=r"bad\.toml: leader\.wmax: unknown key"):
        load_config(path)
    assert main([str(path)]) == 2
    assert "leader.wmax" in capsys.readouterr().err
    with pytest.raises(HappyConfigError, match="follower.tau"):
        parse({"follower": {"tau": -1.0}})
    with pytest.raises(HappyConfigError, match="game.corpus_sise"):
        parse({"game": {"corpus_sise": 10}})


def test_the_shipped_config_is_valid():
    config = load_config(ROOT / "configs" / "happy_text.toml")
    assert config.leader == "rac-neural" and config.tau > 0


def test_stackelberg_run_plays_a_happy_text_config(tiny_lm, tmp_path, cli, offline):
    settings, cache, _ = tiny_lm
    stored = tmp_path / "runs" / "happy_text"
    stored.mkdir(parents=True)
    shutil.copy(cache_file(settings, cache), stored)  # the runner's default cache, relative
    game = "\n".join(f"{k} = {v!r}" for k, v in TINY_LM.items())
    (tmp_path / "happy.toml").write_text(
        f'[game]\nid = "stackelberg/happy-text-v0"\n{game}\n[leader]\nalgorithm = '
        '"alternating"\nbatch = 8\n[follower]\nbatch = 8\n[run]\niterations = 2\n'
        'eval_every = 1\neval_samples = 16\n')
    result = cli("run", "happy.toml", "run.seed=3", "--out", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["seed"] == 3 and summary["labels"] == 16 and summary["leader"] == "alternating"
    assert len((tmp_path / "out" / "metrics.csv").read_text().splitlines()) == 1 + 3
    bad = cli("run", "happy.toml", "leader.wmax=3", cwd=tmp_path)
    assert bad.returncode == 2 and "happy.toml" in bad.stderr and "leader.wmax" in bad.stderr


def test_the_game_is_registered_with_its_parameters():
    import games

    info = games.REGISTRY["stackelberg/happy-text-v0"]
    assert info.parameters()["beta"] == 5.0 and "tau" not in info.parameters()
    game = games.make_problem("stackelberg/happy-text-v0", 0.5, hidden=16)
    assert game.tau == 0.5 and game.lm.hidden == 16


def test_a_tournament_naming_happy_text_is_refused_by_name(tmp_path, cli):
    (tmp_path / "spec.toml").write_text(
        'seeds = [0]\n[budget]\niterations = 5\n[[games]]\nlabel = "happy"\n'
        'id = "stackelberg/happy-text-v0"\n[[leaders]]\nalgorithm = "pbrl-value"\n'
        '[[followers]]\nlearner = "best-response"\n')
    result = cli("tournament", "spec.toml", "--out", "t", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "stackelberg/happy-text-v0" in result.stderr and "own runner" in result.stderr
