"""Happy text (`stackelberg/happy-text-v0`, docs/theory.md §8.2): the generated corpus, the
VADER annotator with the network off, the reward model's gradient, common-random-number
sampling, and tiny RLHF matches of each leader through the coordinator (the path of every game)
whose sentiment must rise; the run directory, its figure, bad configs and a tournament."""

from __future__ import annotations

import json
import math
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

import games
from analysis.convergence import convergence_panels
from analysis.runs import load_run
from games.happy_text import (
    GAME_ID,
    Annotator,
    CorpusSettings,
    generate_corpus,
    label_pairs,
    pair_up,
    vocabulary,
)
from games.happy_text_problem import HappyTextProblem
from stackelberg.app.cli import main
from stackelberg.app.config import ConfigError, build_experiment, load_config, parse_config
from stackelberg.coordinator import run_match
from stackelberg.preferences import PreferencePairs

pytestmark = pytest.mark.xdist_group("torch")

# torch costs seconds of CPU to import (agents.neural.happy and games.happy_text_lm import it):
# this module's tests import it here, on the torch group's worker, never at collection
torch = BagOfWordsReward = preference_gradient = preference_nll = None
LMSettings = cache_file = pretrained = sample = sequence_kl = None


@pytest.fixture(autouse=True, scope="module")
def _import_torch():
    global torch, BagOfWordsReward, preference_gradient, preference_nll
    global LMSettings, cache_file, pretrained, sample, sequence_kl
    import torch

    from agents.neural.happy import BagOfWordsReward, preference_gradient, preference_nll
    from games.happy_text_lm import LMSettings, cache_file, pretrained, sample, sequence_kl

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


#: Where a test's current directory keeps the model (``HappyTextProblem``'s default cache).
CACHE = Path("runs") / "happy_text"


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """The tiny model's settings, a directory whose ``runs/happy_text`` holds it, the model."""
    settings = games.make_problem(GAME_ID, 0.5, **TINY_LM).lm
    root = tmp_path_factory.mktemp("lm")
    return settings, root, pretrained(settings, root / CACHE)


def test_the_model_is_cached_under_its_settings(tiny_lm):
    settings, root, model = tiny_lm
    cache = root / CACHE
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


def _match(leader: dict, iterations: int = 40):
    """A tiny match of ``leader`` through the coordinator, as `stackelberg run` plays it."""
    config = parse_config({"game": {"id": GAME_ID, **TINY_LM, "eval_samples": 128},
                           "leader": {**leader, "batch": 32},
                           "follower": {"learner": "kl-policy-gradient", "tau": 0.5,
                                        "batch": 32, "lr": 0.02},
                           "run": {"iterations": iterations, "seed": 0,
                                   "metrics_every": 20, "progress": False}})
    experiment = build_experiment(config)
    return experiment, run_match(experiment.problem, experiment.leader, experiment.followers,
                                 config.run, experiment.streams)


@pytest.mark.parametrize("leader", [{"algorithm": "rac-neural", "xi": 0.2},
                                    {"algorithm": "alternating", "lr": 0.2}])
def test_a_tiny_rlhf_match_makes_the_text_happier_with_a_bounded_kl(leader, tiny_lm, offline,
                                                                   monkeypatch):
    monkeypatch.chdir(tiny_lm[1])
    experiment, result = _match(leader)
    summary, last = result.summary, result.metrics[-1]
    assert summary["metrics"].startswith("sampled")
    before, after = summary["sentiment_before"], last["sentiment"]
    assert after > before + 0.2, (before, after)
    assert after - before > 4 * math.hypot(summary["sentiment_before_se"], last["sentiment_se"])
    # the follower maximizes E[r_x] - tau KL: KL <= (max r_x - E_{pi_0} r_x) / tau
    problem = experiment.problem
    bound = 2 * problem.max_length * np.abs(result.x).max() / problem.tau
    assert 0 < last["kl"] < bound
    assert last["samples"] > 0 and last["labels"] == 40 * 32
    # x = 0 ranks no pair: f is log 2 on every pair, whatever the labels
    assert summary["upper_objective_before"] == pytest.approx(np.log(2), abs=1e-12)
    assert np.isfinite(last["upper_objective"]) and last["upper_objective"] > 0
    assert last["leader_value"] == -last["upper_objective"]
    assert [row["iteration"] for row in result.metrics] == [1, 20, 40]


def test_a_bad_config_names_the_file_section_and_key(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(f'[game]\nid = "{GAME_ID}"\n[leader]\nalgorithm = "rac-neural"\n'
                    'wmax = 3\n')
    with pytest.raises(ConfigError, match=r"bad\.toml: leader\.wmax: unknown key"):
        load_config(path)
    assert main(["run", str(path)]) == 2
    assert "leader.wmax" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="follower.tau"):
        parse_config({"game": {"id": GAME_ID}, "follower": {"tau": -1.0}})
    with pytest.raises(ConfigError, match=r"leader: 'pbrl-value' cannot play a language"):
        parse_config({"game": {"id": GAME_ID}, "leader": {"algorithm": "pbrl-value"}})
    with pytest.raises(ConfigError, match=r"leader \(alternating\): .*batch"):
        parse_config({"game": {"id": GAME_ID}, "leader": {"algorithm": "alternating",
                                                           "batch": "64"}})
    with pytest.raises(ConfigError, match="run.eval_every: unknown key"):
        parse_config({"game": {"id": GAME_ID}, "run": {"eval_every": 10}})
    path.write_text(f'[game]\nid = "{GAME_ID}"\ncorpus_sise = 10\n')
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "bad.toml" in err and "'corpus_sise'" in err and "game" in err
    # a value out of range is named by its [game] key, not by the settings field behind it
    for line, key in [("pretrain_steps = 0", "pretrain_steps must be a positive integer"),
                      ("corpus_positive = 0.9", "corpus_positive + corpus_negative must be <= 1"),
                      ("pretrain_lr = -0.1", "pretrain_lr must be a number > 0")]:
        path.write_text(f'[game]\nid = "{GAME_ID}"\n{line}\n')
        assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
        assert key in capsys.readouterr().err, line
    assert not (tmp_path / "out").exists()


def test_the_shipped_config_is_valid():
    config = load_config(ROOT / "configs" / "happy_text.toml")
    assert config.kind == "text" and config.leader == "rac-neural" and config.tau > 0
    assert config.resolved()["game"]["eval_samples"] == 256
    # a text game's defaults: the sequence learners, RLHF's KL weight (not an entropy weight)
    bare = parse_config({"game": {"id": GAME_ID}})
    assert (bare.leader, bare.follower, bare.tau) == ("rac-neural", "kl-policy-gradient", 0.5)


def _tiny_config(directory: Path, settings: LMSettings, model_dir: Path) -> None:
    """``happy.toml`` of a two-iteration match in ``directory``, its model in the default
    cache there."""
    stored = directory / CACHE
    stored.mkdir(parents=True)
    shutil.copy(cache_file(settings, model_dir / CACHE), stored)
    game = "\n".join(f"{k} = {v!r}" for k, v in TINY_LM.items())
    (directory / "happy.toml").write_text(
        f'[game]\nid = "{GAME_ID}"\n{game}\neval_samples = 16\n[leader]\nalgorithm = '
        '"alternating"\nbatch = 8\n[follower]\nlearner = "kl-policy-gradient"\ntau = 0.5\n'
        'batch = 8\n[run]\niterations = 2\n')


def test_stackelberg_run_writes_a_run_directory_that_plot_draws(tiny_lm, tmp_path, cli,
                                                                 offline):
    settings, root, _ = tiny_lm
    _tiny_config(tmp_path, settings, root)
    result = cli("run", "happy.toml", "run.seed=3", "--out", "out", "--no-figure", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sentiment" in result.stdout
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 3 and summary["labels"] == 16 and summary["leader"] == "alternating"
    assert summary["metrics"].startswith("sampled") and "sentiment_se" in summary
    assert json.loads((out / "config.json").read_text())["run"]["seed"] == 3
    assert len((out / "metrics.csv").read_text().splitlines()) == 1 + 2
    text = (out / "samples.txt").read_text()
    assert text.startswith("before:\n") and "\nafter:\n" in text
    assert not (out / "convergence.png").exists()
    # the figure of the run: its sampled values and sentiment, each with +- 2 s.e.
    plotted = cli("plot", "out", cwd=tmp_path)
    assert plotted.returncode == 0, plotted.stderr
    assert (out / "convergence.png").stat().st_size > 0
    run = load_run(out)
    panels = {panel.title.split(" (")[0]: panel for panel in convergence_panels([run])}
    sentiment = panels["sentiment"].series[0]
    assert np.array_equal(sentiment.y, run.metrics["sentiment"])
    assert np.array_equal(sentiment.se, run.metrics["sentiment_se"])
    assert "kl" in panels and "Sampled values" in panels


def test_the_game_is_registered_with_its_parameters():
    info = games.REGISTRY[GAME_ID]
    assert info.kind == "text"
    assert info.parameters()["beta"] == 5.0 and "tau" not in info.parameters()
    problem = games.make_problem(GAME_ID, 0.5, hidden=16)
    assert isinstance(problem, HappyTextProblem) and problem.model is None
    assert problem.tau == 0.5 and problem.lm.hidden == 16


def test_a_tournament_plays_happy_text_with_both_leaders(tiny_lm, tmp_path, cli, offline):
    settings, root, _ = tiny_lm
    _tiny_config(tmp_path, settings, root)
    game = ", ".join(f"{k} = {v!r}" for k, v in TINY_LM.items())
    (tmp_path / "spec.toml").write_text(
        'seeds = [0]\n[budget]\niterations = 2\n[[games]]\nlabel = "happy"\n'
        f'id = "{GAME_ID}"\n{game.replace(", ", chr(10))}\neval_samples = 16\n'
        '[[leaders]]\nalgorithm = "alternating"\nbatch = 8\n'
        '[[leaders]]\nalgorithm = "rac-neural"\nbatch = 8\n'
        '[[followers]]\nlearner = "kl-policy-gradient"\nbatch = 8\n')
    result = cli("tournament", "spec.toml", "--out", "t", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 matches; ran 2 (0 failed)" in result.stdout
