"""Image-folder loader: alpha compositing, resizing, labels, and bad files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lightgen.data.errors import DataFileError, MissingDataError
from lightgen.data.folder import load_image, load_image_folder


def _png(path, rgba, size=(8, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGBA", size, rgba).save(path)
    return path


def test_fully_transparent_pixels_become_the_background(tmp_path):
    p = _png(tmp_path / "a.png", (255, 0, 0, 0))
    np.testing.assert_allclose(load_image(p), 1.0)  # default white
    np.testing.assert_allclose(load_image(p, background=(0, 0, 0)), 0.0)


def test_half_alpha_follows_the_over_operator(tmp_path):
    # over: out = a * src + (1 - a) * background, per channel
    a = 128 / 255
    img = load_image(_png(tmp_path / "a.png", (255, 0, 0, 128)))
    np.testing.assert_allclose(img[:, 0, 0], [1.0, 1 - a, 1 - a], atol=1 / 255)


def test_opaque_colour_is_scaled_to_unit_range(tmp_path):
    img = load_image(_png(tmp_path / "a.png", (51, 102, 255, 255)))
    assert img.shape == (3, 8, 8) and img.dtype == np.float32
    np.testing.assert_allclose(img[:, 3, 3], [0.2, 0.4, 1.0], atol=1e-6)


def test_grey_uses_bt601_luma(tmp_path):
    img = load_image(_png(tmp_path / "a.png", (255, 0, 0, 255)), grey=True)
    assert img.shape == (1, 8, 8)
    np.testing.assert_allclose(img, 0.299, atol=1 / 255)


def test_resizing_keeps_a_uniform_image_uniform(tmp_path):
    img = load_image(_png(tmp_path / "a.png", (10, 200, 90, 255), size=(40, 40)), size=16)
    assert img.shape == (3, 16, 16)
    np.testing.assert_allclose(img[:, 0, 0], [10 / 255, 200 / 255, 90 / 255], atol=1 / 255)
    assert np.ptp(img, axis=(1, 2)).max() <= 1 / 255


def test_downsizing_is_antialiased_not_decimated(tmp_path):
    # 1-px black/white stripes: decimation returns pure 0 or 1, area averaging ~0.5.
    stripes = np.zeros((32, 32, 4), np.uint8)
    stripes[..., 3] = 255
    stripes[:, ::2, :3] = 255
    path = tmp_path / "s.png"
    Image.fromarray(stripes, "RGBA").save(path)
    img = load_image(path, size=8)
    np.testing.assert_allclose(img[:, 2:6, 2:6], 0.5, atol=0.05)


def test_non_square_images_are_padded_with_background_not_stretched(tmp_path):
    p = _png(tmp_path / "wide.png", (0, 0, 0, 255), size=(8, 4))  # W=8, H=4
    img = load_image(p)
    assert img.shape == (3, 8, 8)
    np.testing.assert_allclose(img[:, :2], 1.0)  # top 2 rows: white padding
    np.testing.assert_allclose(img[:, 2:6], 0.0)  # the black image
    np.testing.assert_allclose(img[:, 6:], 1.0)


def test_labels_follow_sorted_class_folders_and_other_files_are_ignored(tmp_path):
    _png(tmp_path / "zebra" / "1.png", (0, 0, 0, 255))
    _png(tmp_path / "ant" / "2.png", (255, 255, 255, 255))
    _png(tmp_path / "ant" / "1.png", (255, 255, 255, 255))
    (tmp_path / "ant" / "README.txt").write_text("not an image")
    (tmp_path / "notes.md").write_text("top-level file, not a class")
    out = load_image_folder(tmp_path, size=4)
    assert out.class_names == ("ant", "zebra")
    assert out.labels.tolist() == [0, 0, 1]
    assert [p.name for p in out.paths] == ["1.png", "2.png", "1.png"]
    assert out.images.shape == (3, 3, 4, 4)
    assert float(out.images[2].max()) == 0.0 and float(out.images[0].min()) == 1.0


def test_undecodable_image_raises_naming_the_file(tmp_path):
    _png(tmp_path / "a" / "good.png", (0, 0, 0, 255))
    (tmp_path / "a" / "broken.png").write_bytes(b"definitely not a png")
    with pytest.raises(DataFileError, match=r"broken\.png.*on_error='skip'"):
        load_image_folder(tmp_path)


def test_skip_mode_warns_and_keeps_the_good_images(tmp_path):
    _png(tmp_path / "a" / "good.png", (0, 0, 0, 255))
    (tmp_path / "a" / "broken.png").write_bytes(b"definitely not a png")
    with pytest.warns(UserWarning, match=r"broken\.png"):
        out = load_image_folder(tmp_path, on_error="skip")
    assert len(out.images) == 1 and out.paths[0].name == "good.png"


def test_mixed_native_sizes_without_size_raise_naming_size(tmp_path):
    _png(tmp_path / "a" / "1.png", (0, 0, 0, 255), size=(8, 8))
    _png(tmp_path / "a" / "2.png", (0, 0, 0, 255), size=(16, 16))
    with pytest.raises(DataFileError, match=r"2\.png.*size="):
        load_image_folder(tmp_path)
    assert load_image_folder(tmp_path, size=8).images.shape == (2, 3, 8, 8)


def test_missing_root_and_empty_root_raise(tmp_path):
    with pytest.raises(MissingDataError, match="does not exist"):
        load_image_folder(tmp_path / "nowhere")
    with pytest.raises(MissingDataError, match="no class sub-folders"):
        load_image_folder(tmp_path)
    (tmp_path / "a").mkdir()
    with pytest.raises(MissingDataError, match="no image files"):
        load_image_folder(tmp_path)


def test_bad_arguments_name_the_parameter(tmp_path):
    _png(tmp_path / "a" / "1.png", (0, 0, 0, 255))
    with pytest.raises(ValueError, match="background"):
        load_image_folder(tmp_path, background=(0, 0, 300))
    with pytest.raises(ValueError, match="background"):
        load_image_folder(tmp_path, background="no-such-colour")
    with pytest.raises(ValueError, match="size"):
        load_image_folder(tmp_path, size=0)
    with pytest.raises(ValueError, match="on_error"):
        load_image_folder(tmp_path, on_error="ignore")
    with pytest.raises(MissingDataError, match="classes"):
        load_image_folder(tmp_path, classes=["b"])


def test_named_background_colour_is_accepted(tmp_path):
    _png(tmp_path / "a" / "1.png", (0, 0, 0, 0))
    out = load_image_folder(tmp_path, background="black")
    assert float(out.images.max()) == 0.0


def test_a_16_bit_grey_png_is_scaled_by_its_true_bit_depth(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 32), (32, 1)).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "ramp16.png")
    for grey in (True, False):
        x = load_image(tmp_path / "ramp16.png", grey=grey)
        np.testing.assert_allclose(x[0, 0], ramp[0] / 65535, atol=1e-6)
        assert (x > 0.99).mean() < 0.05  # not saturated to white
    small = load_image(tmp_path / "ramp16.png", size=8, grey=True)
    assert small.shape == (1, 8, 8) and abs(float(small.mean()) - 0.5) < 0.02


def test_a_decompression_bomb_png_is_refused_naming_the_file(tmp_path, monkeypatch):
    import PIL.Image

    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "bomb.png")
    # 1600 pixels against a limit of 2 x 100: what a 20000^2 PNG is to the default limit
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(DataFileError, match=r"bomb\.png' is too large to decode safely"):
        load_image(tmp_path / "bomb.png")
