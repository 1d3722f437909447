"""The normflows side of the reverse-KL benchmark (see benches/reverse_kl_many_well.rs).

Same model as the Rust side: RealNVP with 8 affine couplings (alternating halves via swap
permutations), MLP 16->64->64->32 with leaky ReLU (slope 0.01), batch 256, Adam 1e-3,
float32, 2 torch threads. Prints the median seconds per iteration and sampling throughput.

Needs `pip install normflows==1.7.3` in the project venv (not part of the set-up: only this
benchmark uses it).
"""
import os
import time

import normflows as nf
import torch


class ManyWell(nf.distributions.Target):
    """ManyWell-32: 16 pairs of x^4 - 6x^2 - 0.5x + y^2/2 (unnormalised log-density)."""

    def __init__(self, dim=32):
        super().__init__()
        self.dim = dim

    def log_prob(self, z):
        x, y = z[:, 0::2], z[:, 1::2]
        return -(x**4 - 6 * x**2 - 0.5 * x + 0.5 * y**2).sum(-1)


def main():
    threads = int(os.environ.get("BENCH_THREADS", "2"))
    steps = int(os.environ.get("BENCH_STEPS", "300"))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dim = 32
    flows = []
    for _ in range(8):
        net = nf.nets.MLP([dim // 2, 64, 64, dim], leaky=0.01, init_zeros=True)
        flows.append(nf.flows.AffineCouplingBlock(net))
        flows.append(nf.flows.Permute(dim, mode="swap"))
    model = nf.NormalizingFlow(nf.distributions.DiagGaussian(dim, trainable=False), flows, ManyWell(dim))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    durations = []
    last = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        loss = model.reverse_kld(256)
        loss.backward()
        opt.step()
        now = time.perf_counter()
        durations.append(now - last)
        last = now
    warm = len(durations) // 10
    d = sorted(durations[warm:])
    print(f"normflows reverse-KL ManyWell-32 RealNVP: median {d[len(d) // 2] * 1e3:.3f} ms/iteration "
          f"over {len(d)} iterations ({threads} threads)")
    n = 100_000
    with torch.no_grad():
        model.sample(1000)
        times = []
        for _ in range(5):
            t = time.perf_counter()
            model.sample(n)
            times.append(time.perf_counter() - t)
    times.sort()
    print(f"normflows sampling (x and log q), ManyWell-32 RealNVP, CPU: {n / times[2]:.3e} samples/s (median of 5 x {n})")


if __name__ == "__main__":
    main()
