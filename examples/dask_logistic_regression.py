"""Data-parallel logistic regression on a Dask cluster: the gradient srcdiff writes, run by Dask.

The loss is plain numpy code. Given a chunked Dask array of data, every ``np.`` call in it,
and in the derivative srcdiff generates, builds Dask's task graph instead of computing:
``dloss(w, b, x, y)`` returns at once with lazy gradients, and ``dask.compute`` runs them on
a ``dask.distributed.LocalCluster`` of worker processes, chunk by chunk, where the data
lives. The parameters are small numpy arrays; only they and the gradients travel. The same
steps on the same data with plain numpy give the same parameters.

The gradient object itself pickles too, so it can be sent to the workers: the last check
computes each chunk's gradient there with ``client.map(dloss, ...)`` and sums them.

Run: python examples/dask_logistic_regression.py              (2 worker processes)
     python examples/dask_logistic_regression.py --measure    (the figures below)

Install Dask with srcdiff's extra: ``pip install "srcdiff[dask]"``.

Figures (``--measure``, and ``--measure --chunk-rows 500000``; 2 CPU cores shared with
other jobs, load average 5-6; one thread per worker; 2026-12-06):

- memory: while 2 workers take one gradient of data made chunk by chunk on them, a
  worker's peak resident memory is 156, 150 and 228 MB for 64 MB, 256 MB and 1 GB of data
  in chunks of 16 MB (172, 306 and 441 MB with chunks of 64 MB; 74 MB at start): a worker
  holds a few chunks at a time, never its share of the data.
- time of 10 steps on 2,000,000 x 16 rows (256 MB) held by the workers, 16 MB chunks:
  numpy 6.5 s, Dask's threads (no cluster) 7.7 s, 1 worker 18.2 s, 2 workers 26.6 s;
  64 MB chunks: numpy 5.6 s, threads 5.3 s, 1 worker 7.8 s, 2 workers 18.3 s. The
  derivative costs on Dask what it costs in numpy (threads against numpy); the rest is
  the cluster's cost per task (~230 tasks a step with 16 chunks, ~60 with 4) and its
  processes competing for 2 busy cores, where 2 workers cannot run side by side.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np

import srcdiff


def loss(w, b, x, y):
    z = x @ w + b
    return np.mean(np.logaddexp(0.0, z) - y * z)


dloss = srcdiff.value_and_grad(loss, wrt=("w", "b"))


def make_data(da, rows, features, chunk_rows, seed=0):
    """``(x, y)``: Dask arrays of ``rows`` examples, made chunk by chunk where they are
    computed (a seeded generator per chunk: the same numbers on any cluster)."""
    x = da.random.default_rng(seed).standard_normal((rows, features), chunks=(chunk_rows, features))
    w_true = np.linspace(-1.0, 1.0, features)
    noise = da.random.default_rng(seed + 1).logistic(size=rows, chunks=chunk_rows)
    y = (x @ w_true + 0.5 + noise > 0).astype(np.float64)
    return x, y


def fit(x, y, steps, lr=0.5, compute=None, report=None):
    """Gradient descent from zero; ``compute`` turns lazy values into numbers (Dask's)."""
    w, b = np.zeros(x.shape[1]), 0.0
    value = None
    for step in range(steps):
        value, (dw, db) = dloss(w, b, x, y)
        if compute is not None:
            value, dw, db = compute(value, dw, db)
        w, b = w - lr * dw, b - lr * float(db)
        if report is not None:
            report(step, float(value))
    return w, b, float(value)


def peak_mb() -> float:
    """This process's peak resident memory in MB: Linux's VmHWM, which starts afresh with
    the process (ru_maxrss would count the peak of the process that forked it too)."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
    except OSError:  # not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20 if sys.platform == "darwin" else 1024)


def worker_peak_mb(client) -> dict:
    """The peak resident memory of each worker process, in MB."""
    return {addr: round(mb) for addr, mb in client.run(peak_mb).items()}


def cluster(workers, memory_limit="2GB"):
    from dask.distributed import Client, LocalCluster

    local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                         memory_limit=memory_limit, dashboard_address=None)
    return local, Client(local)


def demo(rows, features, chunk_rows, workers, steps):
    import dask
    import dask.array as da
    from dask.distributed import progress

    local, client = cluster(workers)
    with local, client:
        x, y = make_data(da, rows, features, chunk_rows)
        print(f"data   : {rows} x {features} float64 ({x.nbytes / 1e6:.0f} MB) in "
              f"{x.numblocks[0]} chunks, on {workers} worker processes")
        x, y = client.persist([x, y])
        progress(x, y)  # Dask's progress bar, while the workers make the chunks
        print()
        start = time.perf_counter()
        w, b, value = fit(x, y, steps, compute=dask.compute,
                          report=lambda s, v: print(f"step {s + 1:3d}  loss {v:.6f}"))
        seconds = time.perf_counter() - start
        print(f"loss   : {value:.6f} after {steps} steps ({seconds:.2f} s on Dask)")

        x_np, y_np = dask.compute(x, y)  # the same data in this process, for numpy
        w_np, b_np, value_np = fit(x_np, y_np, steps)
        print(f"numpy  : loss {value_np:.6f}, largest difference in w "
              f"{np.max(np.abs(w - w_np)):.2e}, in b {abs(b - b_np):.2e}")

        # the gradient object travels to the workers: one chunk's gradient each, summed
        blocks = [(block_x, block_y) for block_x, block_y in
                  zip(x.to_delayed().ravel(), y.to_delayed().ravel())]
        futures = client.map(lambda xy, w=w, b=b: dloss(w, b, *xy)[1],
                             client.compute(blocks))
        dw_sum = sum(n / rows * dw for n, (dw, _) in zip(x.chunks[0], client.gather(futures)))
        _, (dw_all, _) = dloss(w, b, x, y)
        print(f"client.map(dloss): chunk gradients on the workers, summed, differ from "
              f"Dask's by {np.max(np.abs(dw_sum - dw_all.compute())):.2e}")


def measure(chunk_rows=125_000):
    """The figures of the docstring: a worker's peak memory against the dataset's size, and
    the time of 10 steps on 1 and 2 workers against numpy."""
    import dask
    import dask.array as da
    from dask.distributed import wait

    features, steps = 16, 10
    memory = []
    for rows in (500_000, 2_000_000, 8_000_000):
        local, client = cluster(2, memory_limit="4GB")
        with local, client:
            at_start = max(worker_peak_mb(client).values())
            x, y = make_data(da, rows, features, chunk_rows)  # never persisted: streamed
            dask.compute(*dloss(np.zeros(features), 0.0, x, y))
            peak = max(worker_peak_mb(client).values())
            memory.append(f"{x.nbytes / 1e6:.0f} MB of data: {peak} MB ({at_start} MB at start)")
    print("memory :", ", ".join(memory))

    rows = 2_000_000
    x_np, y_np = dask.compute(*make_data(da, rows, features, chunk_rows), scheduler="sync")
    start = time.perf_counter()
    fit(x_np, y_np, steps)
    timing = [f"numpy {time.perf_counter() - start:.2f} s"]
    del x_np, y_np
    x, y = dask.persist(*make_data(da, rows, features, chunk_rows), scheduler="sync")
    start = time.perf_counter()
    fit(x, y, steps, compute=lambda *values: dask.compute(*values, scheduler="threads"))
    timing.append(f"Dask's threads, no cluster {time.perf_counter() - start:.2f} s")
    del x, y
    for workers in (1, 2):
        local, client = cluster(workers, memory_limit="4GB")
        with local, client:
            x, y = client.persist(list(make_data(da, rows, features, chunk_rows)))
            wait([x, y])
            start = time.perf_counter()
            fit(x, y, steps, compute=dask.compute)
            timing.append(f"{workers} worker{'s' if workers > 1 else ''} "
                          f"{time.perf_counter() - start:.2f} s")
    print("timing :", ", ".join(timing))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--chunk-rows", type=int, default=None,
                        help="rows per chunk (5,000; with --measure 125,000)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--measure", action="store_true", help="print the docstring's figures")
    args = parser.parse_args(argv)
    try:
        import dask.array  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        print("Dask is not installed: pip install 'srcdiff[dask]' (nothing to run)")
        return 0
    if args.measure:
        measure(args.chunk_rows or 125_000)
    else:
        demo(args.rows, args.features, args.chunk_rows or 5_000, args.workers, args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
