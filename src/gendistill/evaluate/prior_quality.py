"""How good a class-conditional prior is, judged like its use: by a classifier trained on real data.

- accuracy of that classifier on the prior's class-conditional samples (next to its real test accuracy);
- a Fréchet distance between the classifier's embeddings of samples and of real test images, next to the
  same distance for real training images (the floor a perfect prior would reach at that sample size);
- precision and recall in the same embedding (Kynkäänniemi et al. 2019): the share of samples that fall
  inside the real images' k-nearest-neighbour manifold, and the share of real images inside the samples';
- the Classification Accuracy Score (CAS, Ravuri & Vinyals 2019): fresh ConvNet-3s trained on N samples per
  class only, under the paper protocol, tested on the real test set, beside the same training on N real
  images per class: how useful the samples are to train on, which is what distillation asks of a prior.

An FID with an Inception network is the field's usual figure; it needs downloaded weights and 299 px RGB,
so this reports the same statistic in the embedding of the dataset's own ConvNet-3 instead.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gendistill.data import ImageDataset
from gendistill.errors import UserError
from gendistill.evaluate.teacher import TeacherSpec, teacher
from gendistill.evaluate.trainer import accuracy
from gendistill.priors.base import from_normalized, sample, to_normalized
from gendistill.report.progress import progress as progress_bar


def real_classifier(dataset: ImageDataset, epochs: int, seed: int, device: torch.device) -> nn.Module:
    """ConvNet-3 trained ``epochs`` on the training split (cached: see :mod:`~gendistill.evaluate.teacher`)."""
    return teacher(dataset, TeacherSpec("convnet", epochs, seed=seed), device)[0]


@torch.no_grad()
def samples(prior: nn.Module, dataset: ImageDataset, per_class: int, seed: int, batch: int = 250) -> tuple:
    labels = torch.arange(dataset.num_classes).repeat_interleave(per_class)
    g = torch.Generator().manual_seed(seed)
    device = next(prior.parameters()).device
    starts = progress_bar(range(0, len(labels), batch), desc="prior samples", unit="batch")
    images = [sample(prior, labels[i : i + batch].to(device), g).cpu() for i in starts]
    return to_normalized(torch.cat(images), dataset.mean, dataset.std), labels


@torch.no_grad()
def _embed(model: nn.Module, images: torch.Tensor, device: torch.device, batch: int = 256) -> np.ndarray:
    chunks = [model.embed(images[i : i + batch].to(device)).cpu() for i in range(0, len(images), batch)]
    return torch.cat(chunks).double().numpy()


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sets of feature vectors.

    tr(sqrt(C_a C_b)) is the sum of the square roots of the eigenvalues of C_a^1/2 C_b C_a^1/2, a symmetric
    matrix: two symmetric eigen-decompositions instead of scipy's general matrix square root, the same value
    (to 1e-8 relative on singular covariances) about 7x faster at 2048 features."""
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(cov_a)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T  # small samples: tiny negative eigenvalues are rounding
    lam = np.linalg.eigvalsh(root @ cov_b @ root)
    mean = ((a.mean(0) - b.mean(0)) ** 2).sum()
    return float(mean + np.trace(cov_a) + np.trace(cov_b) - 2 * np.sqrt(np.clip(lam, 0, None)).sum())


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3, chunk: int = 1024) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of ``fake`` against ``real`` feature vectors.

    Each set's manifold is the union of balls around its points, each ball's radius the distance to the
    point's ``k``-th nearest neighbour in its own set. Precision: the share of ``fake`` inside the real
    manifold (fidelity); recall: the share of ``real`` inside the fake manifold (coverage)."""
    a, b = torch.from_numpy(real).float(), torch.from_numpy(fake).float()
    return _coverage(a, b, k, chunk), _coverage(b, a, k, chunk)


def _coverage(ref: torch.Tensor, query: torch.Tensor, k: int, chunk: int) -> float:
    """The share of ``query`` inside the k-NN manifold of ``ref``."""
    radius = torch.cat([torch.cdist(part, ref).kthvalue(k + 1, dim=1).values for part in ref.split(chunk)])
    inside = [(torch.cdist(part, ref) <= radius).any(dim=1) for part in query.split(chunk)]
    return float(torch.cat(inside).float().mean())


def cas(
    images: torch.Tensor,
    labels: torch.Tensor,
    dataset: ImageDataset,
    per_class: int,
    runs: int = 3,
    epochs: int | None = None,
    seed: int = 0,
    device: torch.device | None = None,
) -> dict:
    """CAS at ``per_class`` samples per class (the first of each class in ``images``), and the same training
    on as many random real training images per class: ConvNet-3, paper protocol (no augmentation), final
    epoch, mean and std over ``runs`` fresh networks on the real test split."""
    from gendistill.artifacts import ImageSet
    from gendistill.data import random_subset
    from gendistill.evaluate.protocol import evaluate

    picks = torch.cat([torch.nonzero(labels == c).flatten()[:per_class] for c in range(dataset.num_classes)])
    real = random_subset(dataset, per_class, torch.Generator().manual_seed(seed))
    out = {}
    for name, data in (
        ("generated", ImageSet(images[picks], labels[picks])),
        ("real", ImageSet(dataset.train_images[real], dataset.train_labels[real])),
    ):
        report = evaluate(
            data, dataset, runs=runs, preset="paper", augment="none", epochs=epochs, seed=seed, device=device
        )
        result = report.results[0]
        out[name] = {"mean": result.mean, "std": result.std, "accuracies": result.accuracies}
    return {"per_class": per_class, "runs": runs, "epochs": epochs or "paper", **out}


def class_diversity(
    images: torch.Tensor, labels: torch.Tensor, embed: nn.Module, device: torch.device | None = None
) -> dict[int, float]:
    """Per class, the mean Euclidean distance between the embeddings of two distinct samples of it.

    ``embed`` is a real-data classifier (:func:`real_classifier`): distances in its feature space measure
    how different a class's samples are in what tells classes apart, not in pixels. Classes with fewer
    than two samples are left out. A set collapsed to one image per class scores 0."""
    emb = torch.from_numpy(_embed(embed, images, device or torch.device("cpu")))
    out = {}
    for c in torch.unique(labels).tolist():
        e = emb[labels == c]
        if len(e) >= 2:
            out[int(c)] = float(torch.pdist(e).mean())
    return out


def prior_quality(
    prior: nn.Module,
    dataset: ImageDataset,
    classifier_epochs: int = 2,
    per_class: int = 1000,
    seed: int = 0,
    device: torch.device | None = None,
    cas_per_class: tuple[int, ...] = (),
    cas_runs: int = 3,
    cas_epochs: int | None = None,
) -> dict:
    """The scores of a class-conditional prior (see the module): sample accuracy, FD, precision and recall
    on ``per_class`` samples per class; CAS at each of ``cas_per_class`` (none by default: it trains
    ``2 * cas_runs`` networks per N)."""
    too_many = [k for k in cas_per_class if k > per_class]
    if too_many:  # before any work
        raise UserError(
            f"CAS at {too_many[0]} samples per class needs --per-class {too_many[0]} or more, got {per_class}"
        )
    device = device or torch.device("cpu")
    clf = real_classifier(dataset, classifier_epochs, seed, device)
    fake_x, fake_y = samples(prior, dataset, per_class, seed)
    n = min(len(fake_x), len(dataset.test_images))
    g = torch.Generator().manual_seed(seed)
    train_pick = torch.randperm(len(dataset.train_images), generator=g)[:n]
    test_emb = _embed(clf, dataset.test_images[:n], device)
    fake_emb = _embed(clf, fake_x[:n], device)
    precision, recall = precision_recall(test_emb, fake_emb)
    q = {
        "classifier": f"convnet, {classifier_epochs} epochs on the training split",
        "classifier_test_acc": accuracy(clf, dataset.test_images, dataset.test_labels, device),
        "sample_acc": accuracy(clf, fake_x, fake_y, device),
        "fd_samples_vs_test": frechet(fake_emb, test_emb),
        "fd_train_vs_test": frechet(_embed(clf, dataset.train_images[train_pick], device), test_emb),
        "precision": precision,
        "recall": recall,
        "samples": len(fake_x),
    }
    for k in cas_per_class:
        q[f"cas_{k}"] = cas(fake_x, fake_y, dataset, k, cas_runs, cas_epochs, seed, device)
    return q


@torch.no_grad()
def _denoise(
    prior: nn.Module, cond: torch.Tensor, dataset: ImageDataset, seed: int, steps: int, batch: int = 250
) -> torch.Tensor:
    """Samples of a diffusion prior under conditionings ``cond`` (seeded noise, no guidance), normalised."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for part in progress_bar(cond.split(batch), desc="prior samples", unit="batch"):
        noise = torch.randn(prior.latent_shape(len(part)), generator=g).to(prior.device)
        z = prior.sample(noise, part.to(prior.device), steps=steps)
        out.append(prior.to_pixels(z, dataset.image_size, dataset.channels).clamp(-1, 1).cpu())
    return to_normalized(torch.cat(out), dataset.mean, dataset.std)


def diffusion_quality(
    prior: nn.Module,
    dataset: ImageDataset,
    classifier_epochs: int = 2,
    samples: int = 2000,
    seed: int = 0,
    device: torch.device | None = None,
    steps: int = 20,
) -> dict:
    """A label-free diffusion prior judged by the same real-data ConvNet as a GAN prior:

    - the Fréchet distance of unconditional samples (the null conditioning) to the test images;
    - with an image encoder: held-out validation images re-generated from their encoder tokens, their mean
      squared error to the originals (pixels in [0, 1]) and the classifier's accuracy on them (next to its
      accuracy on the originals): how much of an image its K tokens carry.
    """
    device = device or torch.device("cpu")
    clf = real_classifier(dataset, classifier_epochs, seed, device)
    n = min(samples, len(dataset.test_images))
    fake = _denoise(prior, prior.null_conditioning(n).cpu(), dataset, seed, steps)
    g = torch.Generator().manual_seed(seed)
    train_pick = torch.randperm(len(dataset.train_images), generator=g)[:n]
    test_emb = _embed(clf, dataset.test_images[:n], device)
    q = {
        "classifier": f"convnet, {classifier_epochs} epochs on the training split",
        "classifier_test_acc": accuracy(clf, dataset.test_images, dataset.test_labels, device),
        "fd_unconditional_vs_test": frechet(fake_emb := _embed(clf, fake, device), test_emb),
        **dict(zip(("precision", "recall"), precision_recall(test_emb, fake_emb))),
        "fd_train_vs_test": frechet(_embed(clf, dataset.train_images[train_pick], device), test_emb),
        "samples": n,
        "sampler": f"dpm, {steps} steps",
    }
    if prior.encoder is not None and len(dataset.val_images):
        real = dataset.val_images[:n]
        with torch.no_grad():
            tokens = torch.cat(
                [
                    prior.encoder(from_normalized(part, dataset.mean, dataset.std).to(device)).cpu()
                    for part in real.split(250)
                ]
            )
        recon = _denoise(prior, tokens, dataset, seed + 1, steps)
        pixels = (dataset.denormalize(recon) - dataset.denormalize(real)).square().mean()
        q.update(
            {
                "val_images": len(real),
                "recon_mse": float(pixels),
                "recon_acc": accuracy(clf, recon, dataset.val_labels[:n], device),
                "val_acc": accuracy(clf, real, dataset.val_labels[:n], device),
                "fd_recon_vs_test": frechet(_embed(clf, recon, device), test_emb),
            }
        )
    return q
