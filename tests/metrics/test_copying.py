import pytest
import torch

from lightgen.metrics.copying import (
    copying_control,
    nearest_train_distances,
    rendered_copying_control,
)


def _images(n, seed):
    return torch.rand(n, 1, 6, 6, generator=torch.Generator().manual_seed(seed))


def test_nearest_train_distance_is_the_smallest_pixel_l2_distance():
    train = torch.zeros(3, 1, 2, 2)
    train[1] += 1.0  # all-ones image
    train[2, 0, 0, 0] = 0.5
    q = torch.zeros(2, 1, 2, 2)
    q[1] += 0.9
    d = nearest_train_distances(q, train)
    assert torch.allclose(d, torch.tensor([0.0, 0.2], dtype=torch.float64))


def test_training_copies_score_zero_and_a_ratio_far_below_one():
    train, held = _images(200, 0), _images(50, 1)
    r = copying_control(train[:50], held, train)
    assert r["nearest_train_l2_median_generated"] == 0.0
    assert r["nearest_train_l2_ratio"] == 0.0 and r["generated_nearer_than_held_out_p5"] == 1.0


def test_fresh_draws_of_the_data_distribution_score_a_ratio_near_one():
    train = _images(400, 0)
    r = copying_control(_images(300, 2), _images(300, 3), train)
    assert abs(r["nearest_train_l2_ratio"] - 1) < 0.02


def test_images_of_another_size_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="same size"):
        nearest_train_distances(_images(2, 0), torch.rand(3, 1, 5, 5))


def test_blurred_images_lie_nearer_the_training_set_and_reconstructions_are_the_matching_control():
    # a smooth image is nearer its nearest training image than a sharp new one, so the
    # blur-matched control (reconstructions of held-out images) sits below the held-out one
    train, held = _images(400, 0), _images(100, 1)
    blurred = torch.nn.functional.avg_pool2d(held, 3, 1, 1, count_include_pad=False)
    r = copying_control(blurred, held, train, reconstructed_held_out=blurred)
    assert r["nearest_train_l2_median_generated"] < r["nearest_train_l2_median_held_out"]
    assert r["nearest_train_l2_ratio_to_reconstructed"] == 1.0


def test_rendered_control_fails_copies_and_passes_new_draws_in_a_blurred_output_space():
    # a "model" that renders by blurring: training renderings, held-out renderings and
    # samples all share the blur, so only copying can move the ratio
    def render(x):
        return torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False)

    train = _images(400, 0)
    rendered_train = render(train)
    new = rendered_copying_control(render(_images(300, 2)), render(_images(300, 3)), rendered_train)
    assert abs(new["nearest_rendered_train_l2_ratio"] - 1) < 0.03
    assert new["generated_nearer_than_rendered_held_out_p5"] < 0.15
    near_copies = render(train[:300]) + 0.002 * torch.randn(300, 1, 6, 6)
    r = rendered_copying_control(near_copies, render(_images(300, 3)), rendered_train)
    assert r["nearest_rendered_train_l2_ratio"] < 0.2
    assert r["generated_nearer_than_rendered_held_out_p5"] == 1.0
    # the pixel control against sharp training images would call the new blurred draws copies
    pixel = copying_control(render(_images(300, 2)), _images(300, 3), train)
    assert pixel["nearest_train_l2_ratio"] < 0.9
