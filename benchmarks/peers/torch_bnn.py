#!/usr/bin/python3
"""PyTorch's time per epoch for the Bayesian MLP of issue 12 on Fashion-MNIST, the peer of
latent's bench_bayesian_mlp: a 784-100-10 ReLU network whose 79510 weights and biases have a
mean-field Gaussian q (sigma = softplus(rho)), prior N(0, 1) with the analytic KL, a softmax
likelihood, Bayes by backprop with ONE weight draw per minibatch (w = mu + sigma * eps), the
ELBO scaled as N/|B| * sum log p(y|x,w) - KL, minibatches of 128 shuffled images, Adam 1e-3,
float32, torch.set_num_threads(2).

Prints the wall time of each training epoch (the forward and backward passes and Adam steps over
the 60000 training images; evaluation excluded), their median, and the test accuracy of the
predictive mean over 10 weight draws after the last epoch. Run with Debian's interpreter
(python3-torch, dataset-fashion-mnist):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 benchmarks/peers/torch_bnn.py [--epochs 3]

On a machine loaded by other processes PyTorch's spinning OpenMP threads slow a 2-thread epoch
down badly (see torch_vae.py); OMP_WAIT_POLICY=PASSIVE or --threads 1 then tells the difference.
"""
import argparse
import gzip
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path, images):
    with gzip.open(path, "rb") as f:
        data = f.read()
    if images:
        n = int.from_bytes(data[4:8], "big")
        return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, 784).astype(np.float32) / 255.0
    return np.frombuffer(data, dtype=np.uint8, offset=8).astype(np.int64)


class BayesLinear(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.w_mu = nn.Parameter(torch.randn(n_out, n_in) * (2.0 / n_in) ** 0.5)
        self.b_mu = nn.Parameter(torch.zeros(n_out))
        rho0 = float(np.log(np.expm1(1e-3)))
        self.w_rho = nn.Parameter(torch.full((n_out, n_in), rho0))
        self.b_rho = nn.Parameter(torch.full((n_out,), rho0))

    def forward(self, x):
        w_sigma, b_sigma = F.softplus(self.w_rho), F.softplus(self.b_rho)
        w = self.w_mu + w_sigma * torch.randn_like(w_sigma)
        b = self.b_mu + b_sigma * torch.randn_like(b_sigma)
        kl = kl_standard_normal(self.w_mu, w_sigma) + kl_standard_normal(self.b_mu, b_sigma)
        return F.linear(x, w, b), kl


def kl_standard_normal(mu, sigma):
    return torch.sum(-torch.log(sigma) + 0.5 * (sigma * sigma + mu * mu) - 0.5)


class BNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.l2 = BayesLinear(784, 100), BayesLinear(100, 10)

    def forward(self, x):
        h, kl1 = self.l1(x)
        logits, kl2 = self.l2(F.relu(h))
        return logits, kl1 + kl2


def train_epoch(model, optimizer, x, y, batch, generator):
    n = x.shape[0]
    order = torch.randperm(n, generator=generator)
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        idx = order[start:start + batch]
        optimizer.zero_grad()
        logits, kl = model(x[idx])
        log_lik = -F.cross_entropy(logits, y[idx], reduction="sum")
        loss = -(n / idx.shape[0] * log_lik - kl) / n
        loss.backward()
        optimizer.step()
    return time.perf_counter() - t0


@torch.no_grad()
def test_accuracy(model, x, y, draws=10):
    p = sum(F.softmax(model(x)[0], dim=1) for _ in range(draws)) / draws
    return float((p.argmax(dim=1) == y).float().mean())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3, help="training epochs timed (default 3)")
    parser.add_argument("--data", default=DATA, help="folder of the gzipped IDX files")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.from_numpy(read_idx(os.path.join(args.data, "train-images-idx3-ubyte.gz"), True))
    y = torch.from_numpy(read_idx(os.path.join(args.data, "train-labels-idx1-ubyte.gz"), False))
    xt = torch.from_numpy(read_idx(os.path.join(args.data, "t10k-images-idx3-ubyte.gz"), True))
    yt = torch.from_numpy(read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz"), False))
    model = BNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(1)
    seconds = []
    for epoch in range(1, args.epochs + 1):
        seconds.append(train_epoch(model, optimizer, x, y, 128, generator))
        print(f"epoch {epoch}: {seconds[-1]:.2f} s", flush=True)
    print(f"test accuracy (predictive mean of 10 draws) after {args.epochs} epochs: {test_accuracy(model, xt, yt):.4f}")
    print(f"torch {torch.__version__}, float32, {args.threads} threads, batch 128, Adam 1e-3, 784-100-10 BNN")
    print(f"median seconds per epoch over {len(seconds)} epochs: {statistics.median(seconds):.2f}")


if __name__ == "__main__":
    main()
