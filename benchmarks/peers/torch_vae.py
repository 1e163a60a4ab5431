#!/usr/bin/python3
"""PyTorch's time per epoch for the VAE of issue 11 on Fashion-MNIST, the peer of
latent's VAE benchmark: encoder 784-400-20 and decoder 20-400-784, ReLU hidden
layers, a diagonal-Gaussian q(z|x) (mean and log-scale heads on the encoder's
hidden layer), a standard normal prior and a Bernoulli likelihood on the pixel
intensities in [0, 1] (binary cross-entropy with logits, summed over pixels:
continuous targets, as in the usual Fashion-MNIST VAE). One reparameterized draw
per image, minibatches of 128 shuffled images, Adam with step 1e-3, float32,
torch.set_num_threads(2).

Prints the wall time of each training epoch (the forward and backward passes and
the Adam steps over the 60000 training images; evaluation excluded), their
median, and the test ELBO per image after the first epoch (the mean over the
10000 test images of the single-draw ELBO estimate, in nats). Run with Debian's
interpreter (/usr/bin/python3, python3-torch, dataset-fashion-mnist) on an otherwise idle
machine. PyTorch's OpenMP threads spin at barriers, so when other processes compete for the
two cores a 2-thread epoch becomes about ten times slower: measured on the 2-core machine with
a load average of 2-8 from other builds, 147-151 s per epoch with 2 threads, against about
21 s with 1 thread or with OMP_WAIT_POLICY=PASSIVE (the issue quotes 14.9 s on an idle
machine). The test ELBO after one epoch does not depend on the load (-263.4 with 1 and with 2
threads):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 benchmarks/peers/torch_vae.py [--epochs 3]
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
D, H, K = 784, 400, 20


def read_idx_images(path):
    """The images of a gzipped IDX3 file as an N x 784 float32 array in [0, 1]."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">u4")
    assert magic == 0x0803 and rows * cols == D, (hex(magic), rows, cols)
    pixels = np.frombuffer(raw[16:], dtype=np.uint8, count=int(n) * D)
    return pixels.reshape(int(n), D).astype(np.float32) / 255.0


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(D, H)
        self.enc_mean = nn.Linear(H, K)
        self.enc_log_scale = nn.Linear(H, K)
        self.dec_hidden = nn.Linear(K, H)
        self.dec_logits = nn.Linear(H, D)

    def elbo(self, x):
        """The single-draw reparameterized ELBO summed over the rows of x."""
        h = F.relu(self.enc(x))
        mean, log_scale = self.enc_mean(h), self.enc_log_scale(h)
        z = mean + torch.exp(log_scale) * torch.randn_like(mean)
        logits = self.dec_logits(F.relu(self.dec_hidden(z)))
        log_lik = -F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        kl = 0.5 * torch.sum(mean * mean + torch.exp(2 * log_scale) - 1 - 2 * log_scale)
        return log_lik - kl


def train_epoch(model, optimizer, x, batch, generator):
    order = torch.randperm(x.shape[0], generator=generator)
    t0 = time.perf_counter()
    for start in range(0, x.shape[0], batch):
        xb = x[order[start:start + batch]]
        optimizer.zero_grad()
        loss = -model.elbo(xb) / xb.shape[0]
        loss.backward()
        optimizer.step()
    return time.perf_counter() - t0


@torch.no_grad()
def test_elbo(model, x):
    return sum(float(model.elbo(x[s:s + 1000])) for s in range(0, x.shape[0], 1000)) / x.shape[0]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3, help="training epochs timed (default 3)")
    parser.add_argument("--data", default=DATA, help="folder of the gzipped IDX files")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    train = torch.from_numpy(read_idx_images(os.path.join(args.data, "train-images-idx3-ubyte.gz")))
    test = torch.from_numpy(read_idx_images(os.path.join(args.data, "t10k-images-idx3-ubyte.gz")))
    model = VAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(1)
    seconds = []
    for epoch in range(1, args.epochs + 1):
        seconds.append(train_epoch(model, optimizer, train, 128, generator))
        line = f"epoch {epoch}: {seconds[-1]:.2f} s"
        if epoch == 1:
            line += f", test ELBO per image {test_elbo(model, test):.1f}"
        print(line, flush=True)
    print(f"torch {torch.__version__}, float32, {args.threads} threads, batch 128, Adam 1e-3, 784-400-20")
    print(f"median seconds per epoch over {len(seconds)} epochs: {statistics.median(seconds):.2f}")


if __name__ == "__main__":
    main()
