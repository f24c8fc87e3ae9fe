"""Staff training check of the ViT / MAE reference (reference/mae/models.py): does it learn?

The course notebook's procedure, end to end, with the reference models:

1. a supervised `ClassificationViT`, trained from scratch with cross-entropy;
2. a `MaskedAutoEncoder`, pretrained without labels on the masked-patch pixel loss
   (`reconstruction_loss`, mask ratio 0.75, unnormalised targets as in the notebook);
3. a linear probe, `ClassificationMAE(detach=True)` on a copy of the pretrained MAE: only the
   LayerNorm + Linear head on the encoder's CLS output learns;
4. fine-tuning, `ClassificationMAE(detach=False)` on another copy: head and encoder learn.

Every phase uses AdamW with betas (0.9, 0.95) as the course does, batches drawn in a fresh random
order each epoch, and reports the best test accuracy over its epochs, as the notebook's loop keeps
it (`best_val_acc`: the test set picks the epoch, so it is a slightly optimistic number; the final
epoch's accuracy is in the JSON too). The reconstruction loss is measured on the test images with
masks drawn once from the seed, so that the loss before and after pretraining are over the same
patches; predicting 0 (the normalised mean) for every masked pixel is given as a yardstick.

Data, offline (no torchvision, no network):

* default: scikit-learn's bundled 8x8 digits (1797 images), split 80/20 per digit with the seed,
  pixels scaled to [0, 1], upsampled to 32x32 bilinearly, repeated to 3 channels and normalised
  with the training split's mean and standard deviation. Bilinear rather than nearest: nearest
  would make every 4x4 block one constant pixel, so that a course-sized patch (4x4) held a single
  number 48 times over; bilinear gives smooth strokes whose patches have structure within them,
  and a masked patch that its neighbours only partly predict, as in a photograph;
* `--cifar-dir DIR`: a staff-supplied CIFAR-10 "python version" folder (`data_batch_1`..`5`,
  `test_batch`: pickled dicts with b'data' uint8 [N, 3072], channel planes R, G, B of 32x32 each,
  and b'labels'), read with pickle, which is safe only because the folder is trusted staff data;
  normalised with the course's mean (0.4914, 0.4822, 0.4465) and std (0.2023, 0.1994, 0.2010).

Settings (`--setting`; every size, epoch count, learning rate and the seed can be overridden):

* `course`: the notebook's sizes: 32x32 images, patch 4 (8x8 = 64 patches), encoder Transformer
  of width 256 with 4 layers, decoder of width 128 with 2 layers (4 heads and feed-forward width
  1024 in both, the `Transformer` defaults, which the notebook leaves as they are), batch 128,
  AdamW lr 1e-3. Epochs 10 (ViT), 20 (MAE), 20 (probes), 10 (fine-tuning) are our choice, not
  the notebook's. Meant for CIFAR-10 on a GPU (`--device cuda`).
* `cpu` (default): the same models made smaller so that all phases finish within a few minutes
  on 2 CPU cores: patch 8 (4x4 = 16 patches, so that the encoder sees 4 of them while
  pretraining), width 64 with 4 layers and 4 heads in the encoder and the ViT, width 64 with 2
  layers in the decoder, feed-forward widths 4x the model width, batch 64 (the digits' training
  split is 1438 images against CIFAR-10's 50000, so more, smaller steps), and epochs 30 (ViT),
  60 (MAE), 20 (probe), 30 (fine-tuning). One torch thread: on 2 cores shared with other jobs,
  two threads were as fast at best and up to 7x slower.

`ClassificationViT` always builds a width-E Transformer at the course's depth (4 layers, 4 heads,
feed-forward 1024); the script swaps in one of the configured size, so that the supervised ViT
and the MAE encoder are the same network and the accuracies compare like with like. For the
same reason the linear probe is also trained on the MAE before pretraining (its initial weights),
which says how much of the probe's accuracy pretraining earned.

What to expect (cpu setting, digits, seed 0, measured on a shared 2-core CPU: 143 s, of which
ViT 30 s, MAE 62 s, probe 9 s, fine-tuning 32 s, probe of the untrained MAE 9 s; 170 s with a
test run on the same cores; the numbers were the same to the last digit in both runs):

    supervised ViT       0.978 best test accuracy (0.950 at the last epoch)
    MAE linear probe     0.916 (0.365 for the same probe on the MAE before pretraining)
    MAE fine-tuned       0.989 (0.967 at the last epoch)
    reconstruction loss  1.338 before pretraining -> 0.182 after (x0.14) on the test images'
                         masked patches; predicting 0 (the mean) everywhere: 0.992

Seeds 1 and 2 gave ViT 0.975 and 0.967, probe 0.903 and 0.850 (untrained 0.396 and 0.320),
fine-tuned 0.989 and 0.992, reconstruction loss 0.168 and 0.180 after pretraining. So on the
digits all three classifiers are far above chance, fine-tuning the pretrained encoder beats the
same network trained from scratch by 1 to 2.5 points, and pretraining alone takes a linear probe
from 0.32-0.40 to 0.85-0.92.

The course's thresholds (ViT 0.65, linear probe 0.30, fine-tuned 0.70) are for CIFAR-10; ten
handwritten digits are a much easier problem, so the digits numbers are not comparable to them
one to one: they show that each phase learns, not that a model would pass on CIFAR-10. With
`--cifar-dir` the table says whether each threshold is met.

    python -m reference.mae.train                                  # cpu setting, digits
    python -m reference.mae.train --out runs/mae/train.json
    python -m reference.mae.train --setting course --cifar-dir /data/cifar-10-batches-py --device cuda
    python -m reference.mae.train --help
"""
from __future__ import annotations

import argparse
import copy
import pickle
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from grader.seeding import seed_everything
from reference.mae.models import (ClassificationMAE, ClassificationViT, MaskedAutoEncoder, Transformer,
                                  patchify, reconstruction_loss)
from reference.training import preset_settings, torch_threads, write_summary

IMAGE_SIZE = 32
N_CLASSES = 10
CHANCE_ACC = 1 / N_CLASSES
COURSE_THRESHOLDS = {"vit_acc": 0.65, "mae_linear_acc": 0.30, "mae_finetune_acc": 0.70}   # CIFAR-10
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_FILE = "test_batch"
PHASES = ("vit", "mae", "probe", "finetune")
EVAL_BATCH_SIZE = 512    # no gradients are kept while evaluating, so batches can be larger

# The course's sizes; anything not named here keeps the cpu default of `Settings`.
COURSE = {"patch_size": 4, "encoder_dim": 256, "encoder_layers": 4, "encoder_heads": 4,
          "encoder_feedforward": 1024, "decoder_dim": 128, "decoder_layers": 2, "decoder_heads": 4,
          "decoder_feedforward": 1024, "batch_size": 128,
          "vit_epochs": 10, "mae_epochs": 20, "probe_epochs": 20, "finetune_epochs": 10,
          "vit_lr": 1e-3, "mae_lr": 1e-3, "probe_lr": 1e-3, "finetune_lr": 1e-3}
PRESETS = {"cpu": {}, "course": COURSE}


@dataclass
class Settings:
    setting: str = "cpu"
    cifar_dir: str | None = None        # None: scikit-learn's digits
    max_train: int | None = None        # train on this many images drawn with the seed; None: all
    max_test: int | None = None
    test_fraction: float = 0.2          # digits only: the share of each digit's images kept for testing
    patch_size: int = 8                 # num_patches = 32 // patch_size per side
    encoder_dim: int = 64               # the MAE encoder's and the supervised ViT's width
    encoder_layers: int = 4
    encoder_heads: int = 4
    encoder_feedforward: int = 256
    decoder_dim: int = 64
    decoder_layers: int = 2
    decoder_heads: int = 4
    decoder_feedforward: int = 256
    mask_ratio: float = 0.75
    batch_size: int = 64
    vit_epochs: int = 30
    mae_epochs: int = 60
    probe_epochs: int = 20
    finetune_epochs: int = 30
    vit_lr: float = 1e-3
    mae_lr: float = 1e-3
    probe_lr: float = 1e-3
    finetune_lr: float = 1e-3
    weight_decay: float = 1e-4          # small, as in the course; the same in every phase
    seed: int = 0
    device: str | None = None           # None: cuda if available, else cpu
    threads: int | None = 1             # torch.set_num_threads, None: torch's (1 beat 2 on 2 shared cores)
    out: str | None = None              # JSON summary path; None: no file
    quiet: bool = False


def settings_for(setting: str = "cpu", **overrides) -> Settings:
    """The named setting's sizes, with `overrides` (field name -> value) on top."""
    return preset_settings(Settings, PRESETS, setting, overrides)


@dataclass
class Summary:
    settings: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)          # name, train and test sizes, image shape
    vit_acc: float = 0.0                              # best test accuracy over the epochs of each phase
    mae_linear_acc: float = 0.0
    mae_finetune_acc: float = 0.0
    untrained_linear_acc: float = 0.0                 # the linear probe on the MAE before pretraining
    recon_loss_start: float = 0.0                     # test images, fixed masks, before pretraining
    recon_loss_end: float = 0.0                       # the same images and masks, after pretraining
    recon_loss_ratio: float = 0.0                     # end / start: below 1 when the MAE learnt
    recon_loss_zero: float = 0.0                      # predicting 0 for every masked pixel
    chance_acc: float = CHANCE_ACC
    course_thresholds: dict = field(default_factory=lambda: dict(COURSE_THRESHOLDS))
    history: dict = field(default_factory=dict)       # phase -> per-epoch test accuracy or train loss
    pretrain_losses: list = field(default_factory=list)   # per step; not written to the JSON
    phase_times_s: dict = field(default_factory=dict)
    wall_time_s: float = 0.0


# ----------------------------------------------------------------------------- data

def stratified_split(labels: torch.Tensor, test_fraction: float, generator: torch.Generator):
    """(train indices, test indices): `test_fraction` of each class's images, drawn with `generator`."""
    train_idx, test_idx = [], []
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero().squeeze(1)
        idx = idx[torch.randperm(len(idx), generator=generator)]
        n_test = round(test_fraction * len(idx))
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    return torch.cat(train_idx).sort().values, torch.cat(test_idx).sort().values


def load_digits_data(settings: Settings) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{'train', 'test'} -> (images [N, 3, 32, 32] float32, normalised; labels [N] int64)."""
    from sklearn.datasets import load_digits   # bundled with scikit-learn: no download

    digits = load_digits()
    images = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)     # [N, 1, 8, 8], 0..1
    images = F.interpolate(images, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear",
                           align_corners=False)                                      # [N, 1, 32, 32]
    labels = torch.tensor(digits.target, dtype=torch.long)
    train_idx, test_idx = stratified_split(labels, settings.test_fraction,
                                           torch.Generator().manual_seed(settings.seed))
    # Statistics of the training images only, so that nothing about the test images leaks in.
    mean, std = images[train_idx].mean(), images[train_idx].std()
    images = ((images - mean) / std).expand(-1, 3, -1, -1).contiguous()              # [N, 3, 32, 32]
    return {"train": (images[train_idx], labels[train_idx]), "test": (images[test_idx], labels[test_idx])}


def read_cifar_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """One CIFAR-10 "python version" file -> (images [N, 3, 32, 32] uint8, labels [N] int64).

    pickle runs code from the file it reads: this is only for the trusted staff copy of CIFAR-10."""
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    data = torch.as_tensor(batch[b"data"], dtype=torch.uint8)     # [N, 3072]: the R, G, B planes, row-major
    labels = torch.as_tensor(batch[b"labels"], dtype=torch.long)
    if data.dim() != 2 or data.shape[1] != 3 * IMAGE_SIZE * IMAGE_SIZE or len(labels) != len(data):
        raise ValueError(f"{path}: expected b'data' of shape [N, 3072] and N labels, got "
                         f"{tuple(data.shape)} and {len(labels)}")
    return data.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE), labels


def normalise_cifar(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 3, 32, 32] -> float32, as the course's ToTensor() then Normalize(mean, std)."""
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    return (images.float() / 255 - mean) / std


def load_cifar_data(directory: str | Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{'train', 'test'} -> (images uint8 [N, 3, 32, 32], labels [N]) from a CIFAR-10 python folder."""
    directory = Path(directory)
    missing = [name for name in CIFAR_TRAIN_FILES + (CIFAR_TEST_FILE,) if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{directory} lacks the CIFAR-10 file(s) {', '.join(missing)}")
    train = [read_cifar_batch(directory / name) for name in CIFAR_TRAIN_FILES]
    return {"train": (torch.cat([x for x, _ in train]), torch.cat([y for _, y in train])),
            "test": read_cifar_batch(directory / CIFAR_TEST_FILE)}


def subsample(images: torch.Tensor, labels: torch.Tensor, n: int | None, generator: torch.Generator):
    """`n` images drawn without replacement, in their original order; all of them if n is None."""
    if n is None or n >= len(labels):
        return images, labels
    idx = torch.randperm(len(labels), generator=generator)[:n].sort().values
    return images[idx], labels[idx]


def load_data(settings: Settings) -> tuple[str, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """(dataset name, {'train', 'test'} -> (images [N, 3, 32, 32] float32 normalised, labels [N]))."""
    generator = torch.Generator().manual_seed(settings.seed)
    if settings.cifar_dir:
        name, raw = "cifar10", load_cifar_data(settings.cifar_dir)
    else:
        name, raw = "digits", load_digits_data(settings)
    limits = {"train": settings.max_train, "test": settings.max_test}
    data = {}
    for split, (images, labels) in raw.items():
        images, labels = subsample(images, labels, limits[split], generator)
        # CIFAR stays uint8 until after subsampling: the float copy of all 60000 images is 700 MB.
        data[split] = (normalise_cifar(images) if name == "cifar10" else images, labels)
    return name, data


def batches(n: int, batch_size: int, generator: torch.Generator | None = None):
    """Index tensors covering 0..n-1 once, shuffled if a generator is given; the last may be short."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return order.split(batch_size)


# ----------------------------------------------------------------------------- models

def encoder_transformer(settings: Settings) -> Transformer:
    return Transformer(settings.encoder_dim, settings.encoder_heads, settings.encoder_layers,
                       settings.encoder_feedforward)


def build_vit(settings: Settings) -> ClassificationViT:
    vit = ClassificationViT(N_CLASSES, settings.encoder_dim, settings.patch_size,
                            IMAGE_SIZE // settings.patch_size)
    # ClassificationViT fixes its Transformer at the course's depth and feed-forward width; use the
    # MAE encoder's configuration instead, so that supervised and pretrained runs share one network.
    vit.transformer = encoder_transformer(settings)
    return vit


def build_mae(settings: Settings) -> MaskedAutoEncoder:
    decoder = Transformer(settings.decoder_dim, settings.decoder_heads, settings.decoder_layers,
                          settings.decoder_feedforward)
    return MaskedAutoEncoder(encoder_transformer(settings), decoder, settings.encoder_dim, settings.decoder_dim,
                             settings.patch_size, IMAGE_SIZE // settings.patch_size, settings.mask_ratio)


def adamw(parameters, lr: float, settings: Settings) -> torch.optim.AdamW:
    return torch.optim.AdamW(parameters, lr=lr, betas=(0.9, 0.95), weight_decay=settings.weight_decay)


# ----------------------------------------------------------------------------- evaluation

@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """The share of `images` whose highest logit is their label (exact, not a mean of batch means)."""
    model.eval()
    correct = 0
    for idx in batches(len(labels), EVAL_BATCH_SIZE):
        correct += (model(images[idx]).argmax(dim=-1) == labels[idx]).sum().item()
    model.train()
    return correct / len(labels)


def fixed_masks(n: int, mae: MaskedAutoEncoder, seed: int) -> torch.Tensor:
    """[n, L] patch permutations drawn once, so that every evaluation masks the same patches."""
    L = mae.num_patches * mae.num_patches
    return torch.argsort(torch.rand(n, L, generator=torch.Generator().manual_seed(seed)), dim=1)


@torch.no_grad()
def masked_reconstruction_loss(mae: MaskedAutoEncoder, images: torch.Tensor,
                               ids_shuffle: torch.Tensor) -> tuple[float, float]:
    """(the MAE's loss, the loss of predicting 0 everywhere) over the masked patches of `images`.

    Every image has the same number of masked patches, so the mean of per-batch losses weighted by
    batch size is the loss over all masked patches at once."""
    mae.eval()
    total, total_zero = 0.0, 0.0
    for idx in batches(len(images), EVAL_BATCH_SIZE):
        x = images[idx]
        encoded, mask, ids_restore = mae.forward_encoder(x, ids_shuffle[idx].to(x.device))  # [b, 1 + K, Ee]
        predicted = mae.forward_decoder(encoded, ids_restore)                                 # [b, L, F]
        target = patchify(x, mae.patch_size)                                                  # [b, L, F]
        total += reconstruction_loss(target, predicted, mask).item() * len(idx)
        total_zero += reconstruction_loss(target, torch.zeros_like(target), mask).item() * len(idx)
    mae.train()
    return total / len(images), total_zero / len(images)


# ----------------------------------------------------------------------------- training

def train_classifier(model: nn.Module, optimizer, data: dict, epochs: int, settings: Settings,
                     generator: torch.Generator, progress) -> list[float]:
    """Cross-entropy on the training split for `epochs`; the test accuracy after each epoch."""
    x_train, y_train = data["train"]
    accuracies = []
    model.train()
    for _ in range(epochs):
        for idx in batches(len(y_train), settings.batch_size, generator):
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            progress.update()
            progress.set_postfix(loss=f"{loss.item():.3f}",
                                 test_acc=f"{accuracies[-1]:.3f}" if accuracies else "-", refresh=False)
        accuracies.append(accuracy(model, *data["test"]))
    return accuracies


def pretrain_mae(mae: MaskedAutoEncoder, data: dict, settings: Settings, generator: torch.Generator,
                 progress) -> tuple[list[float], list[float]]:
    """The notebook's pretraining loop: a fresh random mask per image and step (torch's global
    generator), the pixel loss over the masked patches. Returns (per-step losses, per-epoch means)."""
    x_train = data["train"][0]
    optimizer = adamw(mae.parameters(), settings.mae_lr, settings)
    losses, epoch_means = [], []
    mae.train()
    for _ in range(settings.mae_epochs):
        start = len(losses)
        for idx in batches(len(x_train), settings.batch_size, generator):
            x = x_train[idx]                                                  # [b, 3, 32, 32]
            predicted, mask = mae(x)                                          # [b, L, F], [b, L]
            loss = reconstruction_loss(patchify(x, settings.patch_size), predicted, mask)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            progress.update()
            progress.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        epoch_means.append(sum(losses[start:]) / (len(losses) - start))
    return losses, epoch_means


def train(settings: Settings, log=print) -> Summary:
    """The ViT, MAE pretraining and the classifiers on the MAE; the summary, also written as JSON
    if `settings.out` is set."""
    with torch_threads(settings.threads):
        return _train(settings, log)


def check(settings: Settings) -> None:
    if IMAGE_SIZE % settings.patch_size:
        raise ValueError(f"patch size must divide {IMAGE_SIZE}, got {settings.patch_size}")
    for width, heads, what in ((settings.encoder_dim, settings.encoder_heads, "encoder"),
                               (settings.decoder_dim, settings.decoder_heads, "decoder")):
        if width % heads:
            raise ValueError(f"the {what} width {width} is not divisible by its {heads} heads")
    L = (IMAGE_SIZE // settings.patch_size) ** 2
    if not 0 < int(L * settings.mask_ratio) < L:
        raise ValueError(f"mask ratio {settings.mask_ratio} must mask some but not all of the {L} patches")
    if min(getattr(settings, f"{phase}_epochs") for phase in PHASES) < 0 or settings.batch_size < 1:
        raise ValueError("epochs must be >= 0 and the batch size >= 1")


def _train(settings: Settings, log) -> Summary:
    started = time.perf_counter()
    check(settings)
    say = (lambda *_: None) if settings.quiet else log
    device = torch.device(settings.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    seed_everything(settings.seed)
    name, data = load_data(settings)
    data = {split: (x.to(device), y.to(device)) for split, (x, y) in data.items()}
    n_train, n_test = len(data["train"][1]), len(data["test"][1])
    summary = Summary(settings={**asdict(settings), "device": str(device)},
                      data={"name": name, "train": n_train, "test": n_test,
                            "image_shape": list(data["train"][0].shape[1:])})
    say(f"{name}: {n_train} training and {n_test} test images, {settings.setting} setting, device {device}")

    steps_per_epoch = len(batches(n_train, settings.batch_size))
    epochs = {phase: getattr(settings, f"{phase}_epochs") for phase in PHASES}
    total_steps = steps_per_epoch * (sum(epochs.values()) + epochs["probe"])   # the probe runs twice
    progress = tqdm(total=total_steps, unit="step", disable=settings.quiet, dynamic_ncols=True)

    def begin(phase: str, index: int) -> torch.Generator:
        """Seed each phase on its own, so that its result does not depend on the other phases'
        epoch counts; returns the generator of its batch order."""
        progress.set_description(phase)
        seed_everything(settings.seed + index)
        return torch.Generator().manual_seed(settings.seed + index)

    def finished(phase: str, t: float) -> None:
        summary.phase_times_s[phase] = round(time.perf_counter() - t, 1)

    # 1. Supervised ViT from scratch.
    t = time.perf_counter()
    order = begin("vit", 1)
    vit = build_vit(settings).to(device)
    summary.history["vit"] = train_classifier(vit, adamw(vit.parameters(), settings.vit_lr, settings), data,
                                              epochs["vit"], settings, order, progress)
    finished("vit", t)

    # 2. MAE pretraining, without labels.
    t = time.perf_counter()
    order = begin("mae", 2)
    mae = build_mae(settings).to(device)
    untrained = copy.deepcopy(mae)          # the weights pretraining starts from, for the probe's yardstick
    eval_masks = fixed_masks(n_test, mae, settings.seed)
    summary.recon_loss_start, summary.recon_loss_zero = masked_reconstruction_loss(mae, data["test"][0], eval_masks)
    summary.pretrain_losses, summary.history["mae"] = pretrain_mae(mae, data, settings, order, progress)
    summary.recon_loss_end, _ = masked_reconstruction_loss(mae, data["test"][0], eval_masks)
    summary.recon_loss_ratio = summary.recon_loss_end / summary.recon_loss_start
    finished("mae", t)

    # 3. Linear probe and 4. fine-tuning, each on its own copy of the pretrained MAE: fine-tuning
    # changes the encoder, and the probe must see the encoder exactly as pretraining left it. The
    # same probe on the untrained encoder says how much of the probe's accuracy pretraining earned:
    # random features of an easy data set can be linearly separable already. Both probes take seed
    # index 3: the same head initialisation and batch order, so that only the encoder differs.
    for phase, index, encoder, detach in (("probe", 3, mae, True), ("finetune", 4, mae, False),
                                          ("probe_untrained", 3, untrained, True)):
        t = time.perf_counter()
        order = begin(phase, index)
        kind = phase.split("_")[0]
        model = ClassificationMAE(N_CLASSES, copy.deepcopy(encoder), settings.encoder_dim, detach=detach).to(device)
        # All parameters, as the notebook passes them: with detach=True the MAE's never get a
        # gradient, and AdamW skips a parameter without one (no weight decay either).
        optimizer = adamw(model.parameters(), getattr(settings, f"{kind}_lr"), settings)
        summary.history[phase] = train_classifier(model, optimizer, data, epochs[kind], settings, order, progress)
        finished(phase, t)
    progress.close()

    best = lambda accuracies: max(accuracies, default=0.0)   # noqa: E731
    summary.vit_acc = best(summary.history["vit"])
    summary.mae_linear_acc = best(summary.history["probe"])
    summary.mae_finetune_acc = best(summary.history["finetune"])
    summary.untrained_linear_acc = best(summary.history["probe_untrained"])
    summary.wall_time_s = round(time.perf_counter() - started, 1)
    say(summary_table(summary))
    if settings.out:
        say(f"wrote {write_summary(summary, settings.out, leave_out=('pretrain_losses',))}")
    return summary


def summary_table(summary: Summary) -> str:
    """The four numbers next to the course's CIFAR-10 thresholds and chance, as a small text table."""
    on_cifar = summary.data.get("name") == "cifar10"
    header = ("", "this run", "final epoch", "course threshold (CIFAR-10)", "met" if on_cifar else "")
    rows = []
    for key, title, phase in (("vit_acc", "supervised ViT", "vit"), ("mae_linear_acc", "MAE linear probe", "probe"),
                              ("mae_finetune_acc", "MAE fine-tuned", "finetune")):
        value, threshold = getattr(summary, key), COURSE_THRESHOLDS[key]
        final = summary.history.get(phase) or [0.0]
        met = ("yes" if value >= threshold else "NO") if on_cifar else ""
        rows.append((f"{title} test acc ({key})", f"{value:.3f}", f"{final[-1]:.3f}", f"{threshold:.2f}", met))
    untrained = summary.history.get("probe_untrained") or [0.0]
    rows.append(("linear probe, untrained MAE", f"{summary.untrained_linear_acc:.3f}", f"{untrained[-1]:.3f}",
                 "", ""))
    rows.append(("chance", f"{summary.chance_acc:.3f}", "", "", ""))
    widths = [max(len(row[c]) for row in [header] + rows) for c in range(len(header))]

    def line(row):
        cells = [row[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(row[1:], widths[1:])]
        return "  ".join(cells).rstrip()

    lines = [line(header), "-" * len(line(header))] + [line(row) for row in rows]
    lines.append(f"MAE reconstruction loss on the test images' masked patches: {summary.recon_loss_start:.4f} "
                 f"before pretraining -> {summary.recon_loss_end:.4f} after (x{summary.recon_loss_ratio:.2f}); "
                 f"predicting 0 everywhere: {summary.recon_loss_zero:.4f}")
    if not on_cifar:
        lines.append(f"The thresholds are the course's for CIFAR-10; on {summary.data.get('name')} these numbers "
                     f"are not comparable to them one to one (best test accuracy over the epochs, as the course).")
    times = ", ".join(f"{phase} {s:.0f} s" for phase, s in summary.phase_times_s.items())
    lines.append(f"{summary.wall_time_s:.0f} s in all ({times})")
    return "\n".join(lines)


def parse_args(argv=None) -> Settings:
    defaults = Settings()

    def preset_defaults(name: str) -> str:
        return f"cpu {getattr(defaults, name)}, course {COURSE.get(name, getattr(defaults, name))}"

    p = argparse.ArgumentParser(
        prog="python -m reference.mae.train",
        description="Train the reference ViT, pretrain the reference MAE, then a linear probe and a fine-tuned "
                    "classifier on it, as the CS182 notebook does; report the test accuracies and the "
                    "reconstruction loss next to the course's CIFAR-10 thresholds. Data: scikit-learn's 8x8 "
                    "digits upsampled to 32x32 (offline), or a CIFAR-10 python folder with --cifar-dir.",
        epilog="Sizes, epochs and learning rates not given default to the chosen --setting's; "
               "--epochs and --lr set all four phases at once, and the per-phase flags win over them.")
    p.add_argument("--setting", choices=sorted(PRESETS), default="cpu",
                   help="cpu: reduced model, a few minutes on 2 cores; course: the notebook's sizes (default cpu)")
    p.add_argument("--cifar-dir", metavar="DIR",
                   help="a trusted CIFAR-10 python-version folder (data_batch_1..5, test_batch); default: digits")
    p.add_argument("--max-train", type=int, metavar="N", help="train on N images drawn with the seed (default all)")
    p.add_argument("--max-test", type=int, metavar="N", help="test on N images drawn with the seed (default all)")
    for name, help_ in (("patch_size", "patch side in pixels; 32 // it patches per side"),
                        ("encoder_dim", "encoder (and ViT) width"), ("encoder_layers", "encoder layers"),
                        ("encoder_heads", "encoder attention heads"),
                        ("encoder_feedforward", "encoder feed-forward width"),
                        ("decoder_dim", "decoder width"), ("decoder_layers", "decoder layers"),
                        ("decoder_heads", "decoder attention heads"),
                        ("decoder_feedforward", "decoder feed-forward width"),
                        ("batch_size", "training batch size")):
        p.add_argument("--" + name.replace("_", "-"), type=int, metavar="N",
                       help=f"{help_} ({preset_defaults(name)})")
    p.add_argument("--epochs", type=int, metavar="N", help="epochs of every phase")
    p.add_argument("--lr", type=float, metavar="LR", help="AdamW learning rate of every phase")
    for phase, title in (("vit", "the supervised ViT"), ("mae", "MAE pretraining"), ("probe", "the linear probes"),
                         ("finetune", "fine-tuning")):
        p.add_argument(f"--{phase}-epochs", type=int, metavar="N",
                       help=f"epochs of {title} ({preset_defaults(f'{phase}_epochs')})")
        p.add_argument(f"--{phase}-lr", type=float, metavar="LR",
                       help=f"learning rate of {title} ({preset_defaults(f'{phase}_lr')})")
    p.add_argument("--mask-ratio", type=float, metavar="R",
                   help=f"share of the patches masked while pretraining (default {defaults.mask_ratio})")
    p.add_argument("--weight-decay", type=float, metavar="WD",
                   help=f"AdamW weight decay (default {defaults.weight_decay})")
    p.add_argument("--seed", type=int, help=f"random seed (default {defaults.seed})")
    p.add_argument("--device", help="torch device, e.g. cuda (default: cuda if available, else cpu)")
    p.add_argument("--threads", type=int, metavar="N", help=f"torch CPU threads (default {defaults.threads})")
    p.add_argument("--out", help="write the settings and the results to this JSON file")
    p.add_argument("--quiet", action="store_true", default=None, help="no progress bar and no printed summary")
    args = vars(p.parse_args(argv))
    setting = args.pop("setting")
    every = {"epochs": args.pop("epochs"), "lr": args.pop("lr")}
    given = {k: v for k, v in args.items() if v is not None}
    for what, value in every.items():
        if value is not None:
            given = {**{f"{phase}_{what}": value for phase in PHASES}, **given}
    names = {f.name for f in fields(Settings)}
    return settings_for(setting, **{k: v for k, v in given.items() if k in names})


def main(argv=None) -> None:
    train(parse_args(argv))


if __name__ == "__main__":
    main()
