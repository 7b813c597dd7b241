#!/usr/bin/env python3
"""Queue vs batch in Python asyncio: the seeds' own patterns, beside tether's.

Runs the same jobs as queue_vs_batch_bench (read from --durations-dir, written
there by the C++ binary) three ways at width W:

  pool    asyncio.Queue(maxsize=W) + W workers, get/task_done/join, workers
          cancelled at the end, inside a TaskGroup (the seeds' template)
  batch   chunks of W jobs, each awaited with asyncio.gather (the seeds'
          "gather per chunk" alternative)
  window  a Semaphore(W) acquired before each TaskGroup.create_task, released
          when the job ends (at most W tasks exist at a time)

A job is `await asyncio.sleep(d)`. Prints CSV with the columns of
queue_vs_batch_bench. Needs Python >= 3.11 (TaskGroup).
"""
import argparse
import asyncio
import heapq
import sys
import time


async def job(d):
    await asyncio.sleep(d)


async def worker(queue):
    while True:
        d = await queue.get()
        try:
            await asyncio.sleep(d)
        finally:
            queue.task_done()


async def run_pool(durations, w):
    queue = asyncio.Queue(maxsize=w)
    async with asyncio.TaskGroup() as tg:
        workers = [tg.create_task(worker(queue)) for _ in range(w)]
        for d in durations:
            await queue.put(d)
        await queue.join()
        for t in workers:
            t.cancel()


async def run_batch(durations, w):
    for i in range(0, len(durations), w):
        await asyncio.gather(*(job(d) for d in durations[i:i + w]))


async def windowed_job(d, sem):
    try:
        await asyncio.sleep(d)
    finally:
        sem.release()


async def run_window(durations, w):
    sem = asyncio.Semaphore(w)
    async with asyncio.TaskGroup() as tg:
        for d in durations:
            await sem.acquire()
            tg.create_task(windowed_job(d, sem))


STRATEGIES = {"pool": run_pool, "batch": run_batch, "window": run_window}


def ideal_list_schedule(d, w):
    free_at = [0] * w
    makespan = 0
    for x in d:
        start = heapq.heappop(free_at)
        heapq.heappush(free_at, start + x)
        makespan = max(makespan, start + x)
    return makespan


def ideal_chunks(d, w):
    return sum(max(d[i:i + w]) for i in range(0, len(d), w))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--durations-dir", required=True)
    ap.add_argument("--dists", default="fixed,exponential,lognormal,bimodal")
    ap.add_argument("--widths", default="16,64,256,512")
    ap.add_argument("--strategies", default="pool,batch,window")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--seed", default="1")
    ap.add_argument("--mean-us", type=float, default=None, help="nominal mean (default: the sample mean)")
    ap.add_argument("--header", action="store_true", help="print the CSV header first")
    args = ap.parse_args()

    if args.header:
        print("impl,clock,dist,width,strategy,n,mean_us,seed,rep,wall_s,makespan_s,throughput_jobs_s,"
              "ideal_s,ratio_to_ideal,bound_s,ratio_to_bound,peak_bytes,cpu_ns_per_job,error", flush=True)
    for dist in args.dists.split(","):
        with open(f"{args.durations_dir}/{dist}.txt") as f:
            us = [int(line) for line in f if line.strip()]
        secs = [x / 1e6 for x in us]
        n = len(us)
        mean_us = args.mean_us if args.mean_us else sum(us) / n
        for w in (int(x) for x in args.widths.split(",")):
            bound_s = max(sum(us) / w, max(us)) / 1e6
            ideals = {"batch": ideal_chunks(us, w) / 1e6, "list": ideal_list_schedule(us, w) / 1e6}
            # Repetitions outside: a slow spell of the machine falls on every strategy.
            for rep in range(args.repeat):
                for strategy in args.strategies.split(","):
                    ideal_s = ideals["batch" if strategy == "batch" else "list"]
                    t0 = time.perf_counter()
                    asyncio.run(STRATEGIES[strategy](secs, w))
                    wall = time.perf_counter() - t0
                    print(f"asyncio,real,{dist},{w},{strategy},{n},{mean_us:.0f},{args.seed},{rep},"
                          f"{wall:.6f},{wall:.6f},{n / wall:.1f},{ideal_s:.6f},{wall / ideal_s:.5f},"
                          f"{bound_s:.6f},{wall / bound_s:.5f},,,", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
