"""Smoke test of the ViT / MAE staff training check (reference/mae/train.py).

The data: the digits come out as normalised 32x32 RGB images split per digit, and the CIFAR-10
reader reads a small fake folder written here in the real "python version" format (pickled dicts,
bytes keys, R, G, B planes). Training runs all phases on tiny models and 256 images in a few
seconds: the reconstruction loss must go down, the accuracies must be rates, the linear probe must
leave the MAE untouched, and the JSON must hold the four numbers.
"""
import json
import math
import pickle

import pytest
import torch
from tqdm import tqdm

from reference.mae import ClassificationMAE, patchify, reconstruction_loss
from reference.mae import train as train_module

TINY = dict(patch_size=8, encoder_dim=32, encoder_layers=1, encoder_heads=2, encoder_feedforward=64,
            decoder_dim=16, decoder_layers=1, decoder_heads=2, decoder_feedforward=32, batch_size=32,
            max_train=512, max_test=128, vit_epochs=8, mae_epochs=4, probe_epochs=2, finetune_epochs=4,
            vit_lr=3e-3, mae_lr=3e-3, probe_lr=3e-3, finetune_lr=3e-3, threads=1, seed=0, device="cpu",
            quiet=True)


# ----------------------------------------------------------------------------- data

def test_the_digits_become_normalised_32x32_rgb_images_split_per_digit():
    data = train_module.load_digits_data(train_module.Settings())
    (x_train, y_train), (x_test, y_test) = data["train"], data["test"]
    assert x_train.shape[1:] == x_test.shape[1:] == (3, 32, 32) and x_train.dtype == torch.float32
    assert len(y_train) + len(y_test) == 1797
    assert torch.equal(x_train[:, 0], x_train[:, 1]) and torch.equal(x_train[:, 0], x_train[:, 2])
    # normalised with the training split's own statistics
    assert abs(x_train.mean().item()) < 1e-4 and abs(x_train.std().item() - 1) < 1e-3
    counts_train, counts_test = torch.bincount(y_train), torch.bincount(y_test)
    for n_train, n_test in zip(counts_train.tolist(), counts_test.tolist()):
        assert n_test == round(0.2 * (n_train + n_test))


def test_the_split_depends_on_the_seed_and_only_on_it():
    a = train_module.load_digits_data(train_module.Settings(seed=0))
    b = train_module.load_digits_data(train_module.Settings(seed=0))
    c = train_module.load_digits_data(train_module.Settings(seed=1))
    assert torch.equal(a["test"][0], b["test"][0])
    assert not torch.equal(a["test"][0], c["test"][0])


def write_fake_cifar(directory, n_per_file=4):
    """Six files in the real format; pixel (c, i, j) of image k holds (k + 7c + i + 2j) mod 256."""
    expected = {}
    k = 0
    for name in train_module.CIFAR_TRAIN_FILES + (train_module.CIFAR_TEST_FILE,):
        images, labels = [], []
        for _ in range(n_per_file):
            c, i, j = torch.meshgrid(torch.arange(3), torch.arange(32), torch.arange(32), indexing="ij")
            images.append(((k + 7 * c + i + 2 * j) % 256).to(torch.uint8))
            labels.append(k % 10)
            k += 1
        images = torch.stack(images)                                     # [n, 3, 32, 32]
        # The python version's layout: a row is the 1024 red values, then green, then blue, each row-major.
        batch = {b"batch_label": name.encode(), b"labels": labels,
                 b"data": images.reshape(n_per_file, 3072).numpy(),
                 b"filenames": [f"{name}_{n}.png".encode() for n in range(n_per_file)]}
        with open(directory / name, "wb") as f:
            pickle.dump(batch, f)
        expected[name] = (images, torch.tensor(labels))
    return expected


def test_the_cifar_reader_reads_the_python_version_format(tmp_path):
    expected = write_fake_cifar(tmp_path)
    images, labels = train_module.read_cifar_batch(tmp_path / "data_batch_3")
    assert images.dtype == torch.uint8 and images.shape == (4, 3, 32, 32)
    assert torch.equal(images, expected["data_batch_3"][0]) and torch.equal(labels, expected["data_batch_3"][1])
    assert images[0, 2, 1, 5].item() == (8 + 14 + 1 + 10) % 256          # image 8, blue, row 1, column 5

    name, data = train_module.load_data(train_module.Settings(cifar_dir=str(tmp_path)))
    assert name == "cifar10"
    x_train, y_train = data["train"]
    assert x_train.shape == (20, 3, 32, 32) and x_train.dtype == torch.float32
    raw = torch.cat([expected[f"data_batch_{i}"][0] for i in range(1, 6)])
    mean = torch.tensor(train_module.CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(train_module.CIFAR_STD).view(1, 3, 1, 1)
    assert torch.allclose(x_train, (raw.float() / 255 - mean) / std)
    assert torch.equal(y_train, torch.cat([expected[f"data_batch_{i}"][1] for i in range(1, 6)]))
    assert torch.equal(data["test"][1], expected["test_batch"][1])


def test_the_cifar_reader_says_which_files_are_missing(tmp_path):
    write_fake_cifar(tmp_path)
    (tmp_path / "data_batch_4").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_4"):
        train_module.load_data(train_module.Settings(cifar_dir=str(tmp_path)))


def test_the_cifar_reader_rejects_a_wrong_shape(tmp_path):
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": torch.zeros(2, 100, dtype=torch.uint8).numpy(), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match="3072"):
        train_module.read_cifar_batch(tmp_path / "test_batch")


def test_max_train_subsamples_with_the_seed():
    settings = train_module.Settings(max_train=100, max_test=50)
    _, data = train_module.load_data(settings)
    assert len(data["train"][1]) == 100 and len(data["test"][1]) == 50
    _, again = train_module.load_data(settings)
    assert torch.equal(data["train"][0], again["train"][0])


# ----------------------------------------------------------------------------- models and settings

def test_the_course_setting_builds_the_notebooks_models():
    settings = train_module.settings_for("course")
    vit, mae = train_module.build_vit(settings), train_module.build_mae(settings)
    layer = vit.transformer.transformer.layers[0]
    assert len(vit.transformer.transformer.layers) == 4 and layer.linear1.out_features == 1024
    assert layer.self_attn.embed_dim == 256 and layer.self_attn.num_heads == 4
    assert len(mae.encoder.transformer.layers) == 4 and mae.encoder.embedding_dim == 256
    assert len(mae.decoder.transformer.layers) == 2 and mae.decoder.embedding_dim == 128
    assert mae.decoder.feedforward_dim == 1024 and (mae.patch_size, mae.num_patches) == (4, 8)
    images = torch.randn(2, 3, 32, 32)
    predicted, mask = mae(images)
    assert vit(images).shape == (2, 10)
    assert predicted.shape == (2, 64, 48) and mask.sum().item() == 2 * 48          # 75 % of 64 patches


def test_impossible_sizes_are_refused():
    for bad in (dict(patch_size=5), dict(encoder_dim=30, encoder_heads=4), dict(mask_ratio=0.0),
                dict(vit_epochs=-1)):
        with pytest.raises(ValueError):
            train_module.check(train_module.Settings(**bad))


def test_the_command_line_sets_the_settings():
    assert train_module.parse_args([]) == train_module.Settings()
    course = train_module.parse_args(["--setting", "course", "--device", "cuda"])
    assert all(getattr(course, k) == v for k, v in train_module.COURSE.items())
    assert course.device == "cuda" and course.setting == "course"
    settings = train_module.parse_args(["--epochs", "3", "--mae-epochs", "5", "--lr", "0.01", "--probe-lr", "0.1",
                                        "--encoder-dim", "32", "--seed", "4", "--out", "x.json", "--quiet",
                                        "--cifar-dir", "/data/cifar"])
    epochs = (settings.vit_epochs, settings.mae_epochs, settings.probe_epochs, settings.finetune_epochs)
    assert epochs == (3, 5, 3, 3)
    assert (settings.vit_lr, settings.probe_lr) == (0.01, 0.1)
    assert (settings.encoder_dim, settings.seed, settings.out, settings.quiet, settings.cifar_dir) == \
        (32, 4, "x.json", True, "/data/cifar")
    assert train_module.parse_args(["--setting", "course", "--patch-size", "8"]).patch_size == 8


def test_the_linear_probe_leaves_the_mae_untouched():
    # A large weight decay, and the MAE still holding the gradients of a pretraining step, as the
    # notebook's pretrained object does: neither may move the encoder while the probe trains.
    settings = train_module.Settings(**{**TINY, "weight_decay": 0.5})
    torch.manual_seed(0)
    mae = train_module.build_mae(settings)
    images = torch.randn(8, 3, 32, 32)
    predicted, mask = mae(images)
    reconstruction_loss(patchify(images, settings.patch_size), predicted, mask).backward()
    assert mae.encoder_input_projection.weight.grad is not None
    before = {k: v.clone() for k, v in mae.state_dict().items()}
    model = ClassificationMAE(10, mae, settings.encoder_dim, detach=True)
    head_before = model.output_head[1].weight.clone()
    data = {"train": (torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))),
            "test": (torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,)))}
    optimizer = train_module.adamw(model.parameters(), 1e-2, settings)
    train_module.train_classifier(model, optimizer, data, 1, settings, torch.Generator().manual_seed(0),
                                  tqdm(disable=True))
    assert all(torch.equal(before[k], v) for k, v in mae.state_dict().items())
    assert not torch.equal(head_before, model.output_head[1].weight)


# ----------------------------------------------------------------------------- a tiny run

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mae") / "train.json"
    return train_module.train(train_module.Settings(**TINY, out=str(out))), out


def test_pretraining_lowers_the_reconstruction_loss(run):
    summary, _ = run
    assert summary.recon_loss_end < 0.8 * summary.recon_loss_start
    assert summary.recon_loss_ratio == pytest.approx(summary.recon_loss_end / summary.recon_loss_start)
    epoch_means = summary.history["mae"]
    assert len(epoch_means) == TINY["mae_epochs"] and epoch_means[-1] < epoch_means[0]
    assert len(summary.pretrain_losses) == TINY["mae_epochs"] * math.ceil(TINY["max_train"] / TINY["batch_size"])
    assert 0 < summary.recon_loss_zero < 2               # normalised pixels: about 1 per masked pixel


def test_the_accuracies_are_rates_and_the_best_epochs(run):
    summary, _ = run
    for key, phase in (("vit_acc", "vit"), ("mae_linear_acc", "probe"), ("mae_finetune_acc", "finetune"),
                       ("untrained_linear_acc", "probe_untrained")):
        history = summary.history[phase]
        assert len(history) == TINY[f"{phase.split('_')[0]}_epochs"]
        assert all(0.0 <= a <= 1.0 for a in history)
        assert getattr(summary, key) == max(history)
        # an accuracy on 128 test images is a whole number of them
        assert all(abs(a * 128 - round(a * 128)) < 1e-9 for a in history)
    assert summary.vit_acc > 3 * train_module.CHANCE_ACC     # 8 epochs on 512 digits: 0.44-0.56 over seeds 0-3


def test_the_json_holds_the_four_numbers_and_the_settings(run):
    summary, out = run
    written = json.loads(out.read_text())
    for key in ("vit_acc", "mae_linear_acc", "mae_finetune_acc", "recon_loss_start", "recon_loss_end"):
        assert written[key] == getattr(summary, key)
    assert written["course_thresholds"] == {"vit_acc": 0.65, "mae_linear_acc": 0.30, "mae_finetune_acc": 0.70}
    assert written["chance_acc"] == 0.1
    assert written["settings"]["encoder_dim"] == 32 and written["settings"]["device"] == "cpu"
    assert written["data"] == {"name": "digits", "train": 512, "test": 128, "image_shape": [3, 32, 32]}
    assert "pretrain_losses" not in written and math.isfinite(written["wall_time_s"])


def test_the_table_says_the_thresholds_are_for_cifar(run):
    summary, _ = run
    table = train_module.summary_table(summary)
    assert "CIFAR-10" in table and "not comparable" in table and "0.65" in table
