"""The targets of benchmarks/digit_oracle.py (its references are only as honest as these)."""

import pytest
import torch

from lightgen.data.registry import load_dataset
from lightgen.tasks.style import printed_targets


def test_glyph_targets_are_the_label_glyphs(load_script):
    labels = torch.tensor([3, 0, 9, 3])
    got, got_labels = load_script("digit_oracle").make_targets("glyph", labels, seed=0)
    torch.testing.assert_close(got, printed_targets(labels))
    assert torch.equal(got_labels, labels)


def test_class_matched_targets_are_printed_training_images_of_the_same_label(load_script):
    labels = torch.arange(10).repeat(3)
    got, got_labels = load_script("digit_oracle").make_targets("class-matched", labels, seed=0)
    assert torch.equal(got_labels, labels)
    prints = load_dataset("printed-digits", split="train", size=28, seed=0)
    flat = prints.images.flatten(1)
    for target, label in zip(got, labels, strict=True):
        hit = (flat == target.flatten()).all(1).nonzero().squeeze(1)
        assert hit.numel() >= 1, "a target is not a printed-digits training image"
        assert (prints.labels[hit] == label).all()
    # random within the class: the three targets of one label are not all the same image
    assert not torch.equal(got[0], got[10]) or not torch.equal(got[10], got[20])


def test_nearest_targets_are_the_best_correlated_prints_and_same_class_keeps_the_label(load_script):
    mod = load_script("digit_oracle")
    prints = load_dataset("printed-digits", split="train", size=28, seed=0)
    # a print itself, brightened and offset: correlation ignores both, so it finds itself
    images = prints.images[[5, 17, 123]] * 0.5 + 0.1
    got, got_labels = mod.make_targets("nearest", torch.zeros(3, dtype=torch.long), 0, images)
    torch.testing.assert_close(got, prints.images[[5, 17, 123]])
    assert torch.equal(got_labels, prints.labels[[5, 17, 123]])
    # told another label, same-class matching must pick a print of that label instead
    other = (prints.labels[[5, 17, 123]] + 1) % 10
    got, got_labels = mod.make_targets("nearest-same-class", other, 0, images)
    assert torch.equal(got_labels, other)
    assert not any(torch.equal(g, prints.images[i]) for g, i in zip(got, [5, 17, 123], strict=True))


def test_mmd_is_near_zero_for_one_distribution_and_large_for_two(load_script):
    mmd2 = load_script("digit_oracle").mmd2
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(200, 1, 4, 4, generator=g), torch.rand(200, 1, 4, 4, generator=g)
    shifted = (torch.rand(200, 1, 4, 4, generator=g) + 0.5).clamp(max=1)
    same, apart = float(mmd2(a, b)), float(mmd2(a, shifted))
    assert abs(same) < 0.02  # unbiased: zero in expectation for samples of one distribution
    assert apart > 10 * max(abs(same), 1e-3)
    torch.testing.assert_close(mmd2(a, shifted), mmd2(shifted, a))


def test_a_run_continued_with_other_targets_is_refused(load_script, tmp_path):
    check = load_script("digit_oracle")._check_same_targets
    glyph = {"targets": "glyph", "pairs_from": None}
    check(tmp_path / "run", glyph)  # a new run records its targets
    check(tmp_path / "run", glyph)  # the same again: fine
    with pytest.raises(SystemExit, match="class-matched"):
        check(tmp_path / "run", {"targets": "class-matched", "pairs_from": None})


def test_critic_names_a_bad_shape(load_script):
    critic = load_script("digit_oracle").ClassCritic()
    assert critic(torch.rand(3, 1, 28, 28), torch.tensor([0, 5, 9])).shape == (3,)
    with pytest.raises(ValueError, match=r"\(2, 3, 28, 28\)"):
        critic(torch.rand(2, 3, 28, 28), torch.tensor([0, 1]))


def test_a_matching_aware_critic_learns_to_check_the_class(load_script):
    # class 0: the left half lit, class 1: the right half; the wrong-class pairs are the
    # only fakes, so only the class projection can tell them apart
    torch.manual_seed(0)
    critic = load_script("digit_oracle").ClassCritic(n_classes=2, width=8)
    opt = torch.optim.Adam(critic.parameters(), lr=2e-3, betas=(0.5, 0.999))
    images = torch.zeros(2, 1, 28, 28)
    images[0, :, :, :14] = 1
    images[1, :, :, 14:] = 1
    right = torch.tensor([0, 1])
    for _ in range(150):
        loss = (
            torch.relu(1 - critic(images, right)).mean()
            + torch.relu(1 + critic(images, 1 - right)).mean()
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert (critic(images, right) > critic(images, 1 - right) + 1).all()


class _LabelCritic(torch.nn.Module):
    """A critic that scores ``w * label``: 0 for every image while ``w`` is 0."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, images, labels):
        return self.w * labels.float()


@pytest.mark.parametrize("wrong_class, expected", [(False, 2.0), (True, 3.0)])
def test_critic_step_is_the_hinge_loss_and_a_matching_aware_one_adds_the_wrong_class_term(
    load_script, wrong_class, expected
):
    # a critic that outputs 0 everywhere: each hinge term is relu(1 +- 0) = 1, so the loss is
    # real + fake (= 2), plus the wrong-class term (= 3) when matching-aware
    step = load_script("digit_oracle")._critic_step
    critic = _LabelCritic()
    opt = torch.optim.SGD(critic.parameters(), lr=0.1)
    images, labels = torch.rand(4, 1, 28, 28), torch.tensor([1, 2, 3, 4])
    fake = torch.rand(4, 1, 28, 28, requires_grad=True)
    gen = torch.Generator().manual_seed(0)
    loss = step(critic, opt, images, labels, fake, labels, wrong_class, gen)
    assert float(loss.detach()) == pytest.approx(expected)
    assert fake.grad is None  # the fakes are detached: the chip is not trained by this step
    # d loss / d w at w = 0 is -mean(real labels) + mean(fake labels) + mean(wrong labels);
    # real and fake carry the same labels here, so only the wrong-class term moves w
    wrong = (labels + torch.randint(1, 10, (4,), generator=torch.Generator().manual_seed(0))) % 10
    moved = -0.1 * wrong.float().mean() if wrong_class else 0.0
    assert float(critic.w.detach()) == pytest.approx(float(moved))


@pytest.mark.parametrize(
    "argv, named",
    [
        (["targets", "--hand-critic"], "--hand-critic"),
        (["targets", "--image-cycle-weight", "1"], "--image-cycle-weight"),
        (["mmd", "--from", "nowhere", "--critic-wrong-class"], "--critic-wrong-class"),
        (["mmd", "--from", "nowhere", "--cycle-weight", "1"], "--cycle-weight"),
        (["mmd", "--from", "nowhere", "--also-mmd"], "--also-mmd"),
        (["align", "--from", "nowhere", "--freeze-print-generator"], "--freeze-print-generator"),
        (["adv", "--from", "nowhere", "--mmd-labels"], "--mmd-labels"),
    ],
)
def test_an_option_of_another_method_is_named_not_ignored(load_script, capsys, argv, named):
    mod = load_script("digit_oracle")
    with pytest.raises(SystemExit) as e:
        mod.main([*argv, "--out", "unused"])
    assert e.value.code == 2 and named in capsys.readouterr().err


def test_each_sub_command_runs_its_method_and_the_unpaired_ones_share_the_term(load_script):
    mod = load_script("digit_oracle")
    parse = mod.build_parser().parse_args
    assert parse(["targets", "--out", "o"]).run is mod.run_targets
    assert parse(["align", "--from", "r", "--out", "o"]).run is mod.align
    mmd = parse(["mmd", "--from", "r", "--out", "o", "--mmd-labels"])
    adv = parse(["adv", "--from", "r", "--out", "o", "--hand-critic"])
    assert mmd.run is adv.run is mod.unpaired_finetune
    assert mmd.source == adv.source == "r" and mmd.mmd_labels and not adv.mmd_labels
    assert not mmd.hand_critic and mmd.cycle_weight == 0 and adv.hand_critic
    from lightgen.train.trainer import ExtraLoss

    assert issubclass(mod.UnpairedTerm, ExtraLoss)
