#!/usr/bin/env python3
"""tether's benchmark driver (issue 7).

Runs every benchmark, writes CSV/JSON/SVG results to one folder, and prints a
summary table with PASS/MISS against each target. Started by the ctest entry
`tether_benchmarks` (cmake --workflow --preset bench), which passes the paths of
the binaries; docs/benchmarks.md describes the sections and the options.

Sections (--only, or TETHER_BENCH_ONLY, picks some):
  primitives      Google Benchmark binaries, each tether figure beside its
                  plain-Asio baseline; medians of repetitions
  memory          memory per pending child (memory_bench)
  queue_vs_batch  pool vs batch vs window, real and virtual time, and the same
                  jobs with Python asyncio
  scraper         nginx + wrk, the seeds' aiohttp pipeline, tether's scraper

Environment:
  TETHER_BENCH_FULL=1      full sweep: W = 1, 2, 4, …, 512 on real timers, more repetitions
  TETHER_BENCH_QUICK=1     smoke run: short measurements, N = 2000
  TETHER_BENCH_N=…         jobs per queue-vs-batch run (default 10000)
  TETHER_BENCH_SEED=…      seed of the job durations (default 1)
  TETHER_BENCH_ONLY=a,b    sections to run
  TETHER_BENCH_PUBLISH=DIR also copy the SVGs and summary.md to DIR (relative paths are
                           relative to the source tree: docs/benchmarks)
  TETHER_BENCH_TIMEOUT_SCALE=k  multiply every sub-run's time limit by k (default 1)
  TETHER_BENCH_NGINX=PATH  the nginx binary (default /usr/sbin/nginx or nginx on PATH; "none" skips)
  TETHER_BENCH_STRICT=1    exit non-zero when a target is MISSed
"""
import argparse
import csv
import datetime
import io
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import svgplot  # noqa: E402

HERE = Path(__file__).resolve().parent
SECTIONS = ["primitives", "memory", "queue_vs_batch", "scraper"]
DISTS = ["fixed", "exponential", "lognormal", "bimodal"]
STRATEGIES = ["pool", "batch", "window"]


def log(msg=""):
    print(msg, flush=True)


def env_flag(name):
    return os.environ.get(name, "").strip() not in ("", "0", "false", "no")


# --------------------------------------------------------------------------------------
# sub-processes: every one has a hard timeout


class TimedOut(RuntimeError):
    """A sub-run exceeded its time limit; its process group was killed."""

    def __init__(self, cmd, seconds, stdout="", stderr=""):
        super().__init__(f"{Path(str(cmd[0])).name} timed out after {seconds:.0f}s and was killed")
        self.stdout, self.stderr = stdout or "", stderr or ""


def run_cmd(cmd, timeout, stdout=subprocess.PIPE, stderr=subprocess.PIPE):
    """subprocess.run with a hard timeout that kills the whole process group.

    Returns a CompletedProcess (text mode); raises TimedOut."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.Popen([str(c) for c in cmd], stdout=stdout, stderr=stderr, text=True,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
        raise TimedOut(cmd, timeout, out, err) from None
    except BaseException:  # SIGTERM/SIGINT of the driver: take the sub-run down with it
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
        raise
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.CompletedProcess(cmd, p.returncode, out, err)
    # CPU seconds (user + system) of the sub-run and of what it waited for.
    done.cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done


def scaled_timeout(seconds):
    """Timeouts scale with TETHER_BENCH_TIMEOUT_SCALE (default 1) for slow machines."""
    try:
        k = float(os.environ.get("TETHER_BENCH_TIMEOUT_SCALE", "1"))
    except ValueError:
        k = 1.0
    return seconds * max(k, 0.1)


# --------------------------------------------------------------------------------------
# machine


def cpu_ticks():
    """(all CPU time, time stolen by the hypervisor) in clock ticks since boot, summed
    over CPUs (/proc/stat's first line), or None where /proc/stat cannot tell."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        ticks = [int(x) for x in fields[1:9]]  # user nice system idle iowait irq softirq steal
        return sum(ticks), ticks[7]
    except (OSError, ValueError, IndexError):
        return None


def stolen_share(t0, t1):
    """The share of CPU time the hypervisor gave to other guests between two
    cpu_ticks() readings: time the guest's vCPUs were ready to run and were not run."""
    if t0 is None or t1 is None or t1[0] <= t0[0]:
        return None
    return (t1[1] - t0[1]) / (t1[0] - t0[0])


def describe_steal(machine):
    """'primitives 0.1 %, scraper 4.2 %' — or None where nothing was read."""
    steal = machine.get("steal_by_section") or {}
    parts = [f"{k} {v * 100:.1f} %" for k, v in steal.items() if v is not None]
    return ", ".join(parts) or None


STEAL_WARNING = 0.01  # above this share, absolute figures are likely slowed


def slowed_by_steal(share):
    return share is not None and share > STEAL_WARNING


def machine_info(args):
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return None

    flags = " ".join(args.flags.split())
    compile_line = _compile_flags(args.compile_commands)
    if compile_line:
        flags = compile_line
    lscpu = {}
    try:
        r = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10)
        for line in r.stdout.splitlines():
            k, _, v = line.partition(":")
            lscpu[k.strip()] = v.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    cpu_detail = ", ".join(f"{k} {lscpu[k]}" for k in ("CPU family", "Model", "Hypervisor vendor", "L1d cache",
                                                       "L2 cache", "L3 cache") if lscpu.get(k))
    commit = version(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"])
    dirty = version(["git", "-C", str(HERE), "status", "--porcelain", "--untracked-files=no"])
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host_cpu": cpu,
        "cpu_detail": cpu_detail,
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "os": _os_name(),
        "compiler": args.compiler,
        "flags": flags,
        "build_type": args.build_type,
        "asio": args.asio_version,
        "google_benchmark": _gbench_version(),
        "python": version([args.python, "--version"]) if args.python else None,
        "nginx": version(["/usr/sbin/nginx", "-v"]) if Path("/usr/sbin/nginx").exists() else None,
        "wrk": version(["wrk", "--version"]) if shutil.which("wrk") else None,
        "git": (commit or "?") + (" (+ uncommitted changes)" if dirty else ""),
        "loadavg_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _compile_flags(path):
    """The flags a benchmark really compiled with, from compile_commands.json
    (compiler, include paths and file names dropped)."""
    if not path or not Path(path).exists():
        return None
    try:
        entries = json.loads(Path(path).read_text())
        cmd = next(e["command"] for e in entries if e["file"].endswith("benchmarks/queue_bench.cpp"))
    except (OSError, ValueError, KeyError, StopIteration):
        return None
    words, keep, skip = cmd.split()[1:], [], False
    for w in words:
        if skip:
            skip = False
        elif w in ("-o", "-c", "-isystem", "-MF", "-MT", "-I"):
            skip = True
        elif not w.startswith(("-I", "-isystem")):
            keep.append(w)
    return " ".join(keep)


def _os_name():
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def _gbench_version():
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libbenchmark-dev"], capture_output=True,
                           text=True, timeout=10)
        return r.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


# --------------------------------------------------------------------------------------
# primitives (Google Benchmark)

# (group, tether benchmark, baseline benchmark, what the ratio means)
PAIRS = [
    ("task await (sync-completing)", "task_await/tether", "task_await/asio", "asio::awaitable"),
    ("yield, 64 tasks ready", "yield64/tether", "yield64/asio", "asio::post"),
    ("spawn+join, 1k children", "spawn_join/tether/1000", "spawn_join/asio/1000", "co_spawn + counter"),
    ("spawn+join, 100k children", "spawn_join/tether/100000", "spawn_join/asio/100000", "co_spawn + counter"),
    ("spawn+join, 1M children", "spawn_join/tether/1000000", "spawn_join/asio/1000000", "co_spawn + counter"),
    ("timeout around sync op", "timeout/tether", "timeout/asio_or_timer", "op || timer"),
    ("queue 1P1C cap 16", "queue/tether/cap:16/pc:1", "queue/asio_channel/cap:16/pc:1", "channel"),
    ("queue 1P1C cap 1024", "queue/tether/cap:1024/pc:1", "queue/asio_channel/cap:1024/pc:1", "channel"),
    ("queue 4P4C cap 16", "queue/tether/cap:16/pc:4", "queue/asio_channel/cap:16/pc:4", "channel"),
    ("queue 4P4C cap 1024", "queue/tether/cap:1024/pc:4", "queue/asio_channel/cap:1024/pc:4", "channel"),
    ("semaphore uncontended", "semaphore_uncontended/tether", "semaphore_uncontended/asio_timer_waiters",
     "timer waiters"),
    ("semaphore contended (4 / 64)", "semaphore_contended/tether", "semaphore_contended/asio_timer_waiters",
     "timer waiters"),
    ("rate_limiter acquire + task", "resilience/rate_limiter", "resilience/bare_await", "bare await"),
    ("circuit_breaker call(task)", "resilience/circuit_breaker", "resilience/bare_await", "bare await"),
]


GBENCH_TIMEOUT_S = 900  # one Google Benchmark binary (spawn_bench runs 1M co_spawns per round)


def run_primitives(args, out, quick, full):
    results = {}
    failed = []
    min_time = "0.05" if quick else ("1.0" if full else "0.3")
    reps = "1" if quick else ("7" if full else "5")
    for binary in args.gbench:
        name = Path(binary).name
        if not Path(binary).exists():
            log(f"  {name}: binary missing, skipped")
            continue
        json_path = out / f"gbench_{name}.json"
        cmd = [binary, f"--benchmark_min_time={min_time}", f"--benchmark_repetitions={reps}",
               "--benchmark_report_aggregates_only=true", f"--benchmark_out={json_path}",
               "--benchmark_out_format=json"]
        if reps != "1":
            # tether's repetitions and its baseline's alternate in random order, so
            # that a slow spell of the machine falls on both rather than on one.
            cmd.append("--benchmark_enable_random_interleaving=true")
        log(f"  {name} (min_time {min_time}s x {reps})")
        t0 = time.time()
        if json_path.exists():
            json_path.unlink()
        limit = scaled_timeout(GBENCH_TIMEOUT_S)
        try:
            with open(out / f"gbench_{name}.log", "w") as console:
                r = run_cmd(cmd, limit, stdout=console, stderr=subprocess.STDOUT)
        except TimedOut as e:
            failed.append(f"{name}: {e}")
            log(f"    FAILED: {e}; see {out}/gbench_{name}.log")
            continue
        if r.returncode != 0 or not json_path.exists():
            failed.append(f"{name} exited with {r.returncode}")
            log(f"    FAILED: exit code {r.returncode}; see {out}/gbench_{name}.log")
            if not json_path.exists():
                continue
        try:
            data = json.loads(json_path.read_text())
        except json.JSONDecodeError as e:
            failed.append(f"{name}: unreadable JSON ({e})")
            log(f"    FAILED: unreadable JSON output ({e})")
            continue
        for b in data["benchmarks"]:
            if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
                continue
            run_name = b.get("run_name", b["name"])
            ips = b.get("items_per_second")
            if b.get("error_occurred"):
                results[run_name] = {"error": b.get("error_message")}
                continue
            results[run_name] = {
                # Google Benchmark divides rate counters by the CPU time of the
                # benchmark thread: ns_per_item is CPU time, which a shared machine
                # skews far less than wall time. wall_ns_per_item is the same per
                # elapsed time (equal on an idle machine).
                "ns_per_item": 1e9 / ips if ips else None,
                "wall_ns_per_item": (1e9 / ips * b["real_time"] / b["cpu_time"]
                                     if ips and b.get("cpu_time") else None),
                "items_per_second": ips,
                "real_time": b["real_time"],
                "cpu_time": b.get("cpu_time"),
                "time_unit": b["time_unit"],
                "iterations": b["iterations"],
            }
        log(f"    done in {time.time() - t0:.0f}s")

    rows = []
    for group, mine, base, base_name in PAIRS:
        m, b = results.get(mine), results.get(base)
        row = {"operation": group, "tether": mine, "baseline": base, "baseline_kind": base_name,
               "tether_ns": m.get("ns_per_item") if m else None,
               "baseline_ns": b.get("ns_per_item") if b else None,
               "tether_wall_ns": m.get("wall_ns_per_item") if m else None,
               "baseline_wall_ns": b.get("wall_ns_per_item") if b else None,
               "tether_items_s": m.get("items_per_second") if m else None,
               "baseline_items_s": b.get("items_per_second") if b else None}
        row["speedup"] = (row["baseline_ns"] / row["tether_ns"]
                          if row["tether_ns"] and row["baseline_ns"] else None)
        rows.append(row)
    with open(out / "primitives.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    (out / "primitives.json").write_text(json.dumps({"benchmarks": results, "pairs": rows}, indent=1))

    labels = [r["operation"] for r in rows if r["tether_ns"] or r["baseline_ns"]]
    sel = [r for r in rows if r["tether_ns"] or r["baseline_ns"]]
    svg = svgplot.bar_chart(
        "tether primitives vs their baselines (CPU time per operation, lower is better)", labels,
        [{"name": "tether", "values": [r["tether_ns"] for r in sel], "color": "#1f77b4"},
         {"name": "baseline", "values": [r["baseline_ns"] for r in sel], "color": "#bbbbbb"}],
        "ns per operation (log scale)", subtitle="baseline: plain Asio (bare await for the resilience rows)",
        value_fmt=lambda v: f"{v:.3g} ns")
    (out / "primitives.svg").write_text(svg)
    result = {"benchmarks": results, "pairs": rows, "failed": failed}
    if failed:
        raise PartialFailure("; ".join(failed), result)
    return result


# --------------------------------------------------------------------------------------
# memory


def run_memory(args, out):
    if not args.memory or not Path(args.memory).exists():
        log("  memory_bench missing, skipped")
        return None
    r = run_cmd([args.memory, "100000"], scaled_timeout(300))
    (out / "memory.log").write_text(r.stdout + r.stderr)
    if r.returncode != 0:
        raise RuntimeError(f"memory_bench failed ({r.returncode}): {r.stderr.strip()}")
    res = {}
    for line in r.stdout.splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            res[d["variant"]] = d
    (out / "memory.json").write_text(json.dumps(res, indent=1))
    for k, d in res.items():
        if "skipped" in d:
            log(f"  {k}: skipped ({d['skipped']})")
        else:
            log(f"  {k}: {d['malloc_bytes_per_child']:.0f} B/child (malloc), "
                f"{d['heap_bytes_per_child']:.0f} B/child (operator new), "
                f"{d['allocations_per_child']:.2f} allocations/child")
    return res


# --------------------------------------------------------------------------------------
# queue vs batch


def read_csv_text(text):
    return list(csv.DictReader(io.StringIO(text or "")))


def expected_real_s(n, widths, repeat, mean_s=1e-3):
    """Rough ideal wall time of a real-timer sweep: 4 distributions x 3 strategies
    (batch at most ~12x the pool), for the timeouts."""
    ws = [int(w) for w in str(widths).split(",") if w]
    return sum(4 * (2 + 12) * n * mean_s / min(w, n) for w in ws) * repeat


def run_queue_vs_batch(args, out, quick, full):
    if not args.queue_vs_batch or not Path(args.queue_vs_batch).exists():
        log("  queue_vs_batch_bench missing, skipped")
        return None
    n = int(os.environ.get("TETHER_BENCH_N", "2000" if quick else "10000"))
    seed = os.environ.get("TETHER_BENCH_SEED", "1")
    # Real timers: W = 1 … 512. Widths below 16 take seconds per run (N jobs of
    # 1 ms, W at a time), so they run once; the others are medians of `repeat`.
    if quick:
        real_runs = [("64,512", "1")]
    elif full:
        real_runs = [("1,2,4,8", "3"), ("16,32,64,128,256,512", "5")]
    else:
        real_runs = [("1,4", "1"), ("16,64,256,512", "3")]
    real_widths = ",".join(w for w, _ in real_runs)
    repeat = real_runs[-1][1]
    virtual_widths = "1,2,4,8,16,32,64,128,256,512"
    durations_dir = out / "durations"
    durations_dir.mkdir(exist_ok=True)
    rows = []
    errors = []
    skipped = None
    asyncio_error = None
    for clock, widths, reps in [("virtual", virtual_widths, "1")] + [("real", w, r) for w, r in real_runs]:
        cmd = [args.queue_vs_batch, "--n", str(n), "--seed", seed, "--clock", clock, "--widths", widths,
               "--durations-dir", str(durations_dir), "--repeat", reps]
        log(f"  tether, {clock} time, N={n}, W={widths}" + (f", median of {reps}" if reps != "1" else ""))
        t0 = time.time()
        limit = scaled_timeout(300 + (4 * expected_real_s(n, widths, int(reps)) if clock == "real" else 0))
        try:
            r = run_cmd(cmd, limit)
        except TimedOut as e:
            rows += read_csv_text(e.stdout)
            errors.append(f"{clock} time W={widths}: {e}")
            log(f"    FAILED: {e}")
            continue
        got = read_csv_text(r.stdout)
        rows += got
        if r.returncode == 3:
            skipped = r.stderr.strip()
            log(f"    {skipped}")
        elif r.returncode != 0:
            bad = [g for g in got if g.get("error")]
            if not bad:  # a crash, not a reported failure
                errors.append(f"{clock} time W={widths}: queue_vs_batch_bench exited with {r.returncode}: "
                              f"{r.stderr.strip()[-300:]}")
                log(f"    FAILED: {errors[-1]}")
                continue
            errors.extend(f"{g['clock']} {g['dist']} W={g['width']} {g['strategy']}: {g['error']}" for g in bad)
            log(f"    {len(bad)} run(s) FAILED, e.g. {errors[-1]}")
        log(f"    done in {time.time() - t0:.0f}s")

    if args.python and Path(args.python).exists() and any(durations_dir.glob("*.txt")):
        for widths, reps in real_runs:
            cmd = [args.python, str(HERE / "python" / "queue_vs_batch.py"), "--durations-dir", str(durations_dir),
                   "--widths", widths, "--seed", seed, "--mean-us", "1000", "--header", "--repeat", reps]
            log(f"  asyncio ({args.python}), real time, W={widths}" + (f", median of {reps}" if reps != "1" else ""))
            t0 = time.time()
            try:
                r = run_cmd(cmd, scaled_timeout(300 + 6 * expected_real_s(n, widths, int(reps))))
                if r.returncode != 0:
                    log(f"    asyncio peer failed ({r.returncode}): {r.stderr.strip()[-400:]}")
                    asyncio_error = f"exit {r.returncode}: {r.stderr.strip()[-200:]}"
                rows += read_csv_text(r.stdout)
            except TimedOut as e:
                rows += read_csv_text(e.stdout)
                asyncio_error = str(e)
                log(f"    asyncio peer FAILED: {e} (the rows it finished are kept)")
            log(f"    done in {time.time() - t0:.0f}s")
    else:
        log("  python3 (or the durations files) not found: asyncio peer skipped")

    if not rows:
        return None
    fields = list(rows[0].keys())
    with open(out / "queue_vs_batch.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)

    # Per (impl, clock, dist, W): the three strategies side by side.
    def key(r):
        return (r["impl"], r["clock"], r["dist"], int(r["width"]))

    # Repetitions: the median makespan (and its row) stands for the cell.
    reps = {}
    for r in rows:
        reps.setdefault(key(r) + (r["strategy"],), []).append(r)
    table = {}
    for k, rs in reps.items():
        good = [r for r in rs if not r.get("error")]
        if good:
            good.sort(key=lambda r: float(r["makespan_s"]))
            chosen = dict(good[(len(good) - 1) // 2])
            chosen["reps"] = len(good)
        else:
            chosen = dict(rs[0])
        table.setdefault(k[:4], {})[k[4]] = chosen
    summary = []
    for (impl, clock, dist, wdt), strat in sorted(table.items()):
        s = {"impl": impl, "clock": clock, "dist": dist, "width": wdt}
        for st in STRATEGIES:
            if st in strat and strat[st].get("error"):
                s[f"{st}_error"] = strat[st]["error"]
            elif st in strat:
                s[f"{st}_s"] = float(strat[st]["makespan_s"])
                s[f"{st}_jobs_s"] = float(strat[st]["throughput_jobs_s"])
                s[f"{st}_vs_ideal"] = float(strat[st]["ratio_to_ideal"])
                s[f"{st}_peak_bytes"] = strat[st]["peak_bytes"]
                s[f"{st}_cpu_ns_per_job"] = strat[st]["cpu_ns_per_job"]
        if "pool_s" in s and "batch_s" in s:
            s["batch_over_pool"] = s["batch_s"] / s["pool_s"]
        summary.append(s)
    sfields = sorted({k for s in summary for k in s}, key=lambda k: (k not in ("impl", "clock", "dist", "width"), k))
    with open(out / "queue_vs_batch_summary.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=sfields)
        w.writeheader()
        w.writerows(summary)

    # Plots: throughput vs W per distribution (real timers), and the virtual-time overhead.
    colors = {"pool": "#1f77b4", "batch": "#d62728", "window": "#2ca02c"}
    for dist in DISTS:
        series = []
        for impl, label in (("tether", "tether"), ("asio", "plain Asio"), ("asyncio", "asyncio"),
                            ("ideal", "ideal")):
            for st in STRATEGIES:
                if impl == "ideal" and st == "window":
                    continue  # the window's ideal is the pool's
                if impl == "asio" and st != "pool":
                    continue  # the Asio baseline is a pool only
                pts = [(s["width"], s.get(f"{st}_jobs_s")) for s in summary
                       if s["impl"] == impl and s["clock"] == "real" and s["dist"] == dist]
                if pts and any(p[1] for p in pts):
                    name = f"{label} {st}" if impl != "ideal" else f"ideal {st}{' / window' if st == 'pool' else ''}"
                    c = colors[st]
                    style = {"tether": "solid", "asio": "solid", "asyncio": "dotted", "ideal": "dashed"}[impl]
                    color = {"asyncio": _lighter(c), "asio": "#555555"}.get(impl, c)
                    series.append({"name": name, "points": pts, "style": style, "color": color})
        svg = svgplot.line_chart(
            f"Queue vs batch: {dist} durations (mean 1 ms), N = {n}, real timers", series, "width W (log scale)",
            "jobs per second (log scale)", log_x=True, log_y=True,
            subtitle="solid: tether (grey: the same pool in plain Asio); dotted: Python asyncio (the same jobs); "
                     "dashed: zero-overhead ideal")
        (out / f"queue_vs_batch_{dist}.svg").write_text(svg)
    series = []
    for dist in DISTS:
        for st in STRATEGIES:
            pts = [(s["width"], float(s.get(f"{st}_cpu_ns_per_job") or 0) or None) for s in summary
                   if s["impl"] == "tether" and s["clock"] == "virtual" and s["dist"] == dist]
            if pts and any(p[1] for p in pts) and dist == "lognormal":
                series.append({"name": f"{st}", "points": pts, "color": colors[st]})
    svg = svgplot.line_chart(
        f"Virtual time: CPU cost per job (lognormal, N = {n})", series, "width W (log scale)",
        "ns of CPU per job", log_x=True, log_y=False,
        subtitle="CPU time of the whole run / N on tether::testing::virtual_clock (sleep + spawn/queue + join)")
    (out / "queue_vs_batch_virtual_cpu.svg").write_text(svg)
    result = {"n": n, "seed": seed, "repeat": int(repeat), "real_runs": real_runs, "real_widths": real_widths, "virtual_widths": virtual_widths,
              "summary": summary, "skipped": skipped, "errors": errors, "asyncio_error": asyncio_error}
    if errors:
        (out / "queue_vs_batch_errors.txt").write_text("\n".join(errors) + "\n")
        raise PartialFailure(f"{len(errors)} queue-vs-batch run(s) failed; see queue_vs_batch_errors.txt",
                             result)
    return result


IMPL_ORDER = {"tether": 0, "asio": 1, "asyncio": 2}


def qvb_rows(qvb):
    """Summary rows without the ideal, ordered clock, distribution, W, then tether, asio, asyncio."""
    rows = [s for s in qvb["summary"] if s["impl"] in IMPL_ORDER]
    return sorted(rows, key=lambda s: (s["clock"] != "real", DISTS.index(s["dist"]) if s["dist"] in DISTS else 9,
                                       s["width"], IMPL_ORDER[s["impl"]]))


def qvb_cells(s):
    return [("FAILED" if s.get(f"{st}_error") else fmt_opt(s.get(f"{st}_vs_ideal"), "{:.3f}")) for st in STRATEGIES]


class PartialFailure(RuntimeError):
    """A section that produced results but also failed runs."""

    def __init__(self, msg, result):
        super().__init__(msg)
        self.result = result


def _lighter(color):
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    r, g, b = (int(c + (255 - c) * 0.45) for c in (r, g, b))
    return f"#{r:02x}{g:02x}{b:02x}"


# --------------------------------------------------------------------------------------
# scraper


PAGE_COUNT = 10000
SCRAPER_RUN_TIMEOUT_S = 180  # one run of a pipeline over the 10,000 pages (~2-15 s expected)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_site(root, port):
    html = root / "html"
    (html / "p").mkdir(parents=True)
    filler = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
              "incididunt ut labore et dolore magna aliqua. ")
    urls = []
    for i in range(PAGE_COUNT):
        links = "".join(f'<li><a href="/p/{(i * 7 + k * 131) % PAGE_COUNT:05d}.html">page {k}</a></li>'
                        for k in range(8))
        head = f"<!doctype html>\n<html><head><title>Page {i}</title></head><body><h1>Page {i}</h1><ul>{links}</ul>"
        body = []
        size = len(head)
        while size < 4000:
            chunk = f"<p>{i}: {filler}</p>\n"
            body.append(chunk)
            size += len(chunk)
        (html / "p" / f"{i:05d}.html").write_text(head + "".join(body) + "</body></html>\n")
        urls.append(f"http://127.0.0.1:{port}/p/{i:05d}.html")
    (html / "robots.txt").write_text("User-agent: *\nAllow: /\n")
    (root / "urls.txt").write_text("\n".join(urls) + "\n")
    for d, _, files in os.walk(root):  # the nginx worker may run as another user
        os.chmod(d, 0o755)
        for f in files:
            os.chmod(os.path.join(d, f), 0o644)
    return root / "urls.txt"


NGINX_CONF = """
worker_processes 1;
daemon off;
error_log {root}/error.log warn;
pid {root}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    types {{ text/html html; text/plain txt; }}
    default_type application/octet-stream;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root}/html;
        location / {{ }}
    }}
}}
"""

WRK_ROTATE = """
local i = 0
request = function()
  i = (i + 1) % {count}
  return wrk.format(nil, string.format("/p/%05d.html", i))
end
"""


def wait_port(port, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def nginx_cpu_s(master_pid):
    """CPU seconds (user + system) used so far by the workers of the nginx whose master
    is `master_pid`, or None where /proc cannot tell (clock-tick resolution: 10 ms)."""
    try:
        workers = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
        ticks = 0
        for w in workers:
            fields = Path(f"/proc/{w}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # stat fields 14 and 15: utime, stime
        return ticks / os.sysconf("SC_CLK_TCK") if workers else None
    except (OSError, ValueError, IndexError):
        return None


class server_load:
    """One client run, timed, with nginx's CPU over it: `with server_load(pid) as s: ...`,
    then `s.wall_s`, `s.cpu_s` and `s.busy` (the fraction of one core)."""

    def __init__(self, master_pid):
        self.pid, self.wall_s, self.cpu_s, self.busy = master_pid, None, None, None

    def __enter__(self):
        self.c0 = nginx_cpu_s(self.pid)
        self.t0 = time.perf_counter()  # after the /proc read: the run alone is timed
        return self

    def __exit__(self, *exc):
        self.wall_s = time.perf_counter() - self.t0
        c1 = nginx_cpu_s(self.pid)
        if self.c0 is not None and c1 is not None and self.wall_s > 0:
            self.cpu_s, self.busy = c1 - self.c0, (c1 - self.c0) / self.wall_s
        return False


def run_wrk(url, seconds, nginx_pid, script=None):
    """wrk -t1 -c64 for `seconds`: (req/s, its output, wrk's CPU us per request, nginx's
    load as a dict: CPU us per request and the fraction of a core it was busy)."""
    cmd = ["wrk", "-t1", "-c64", f"-d{seconds}s"]
    if script:
        cmd += ["-s", str(script)]
    cmd.append(url)
    try:
        with server_load(nginx_pid) as load:
            r = run_cmd(cmd, scaled_timeout(seconds + 30))
    except TimedOut as e:
        return None, f"{e}\n{e.stdout}{e.stderr}", None, {}
    rps, requests = None, None
    for line in r.stdout.splitlines():
        if line.startswith("Requests/sec:"):
            rps = float(line.split()[1])
        elif " requests in " in line:
            requests = int(line.split()[0])
    cpu_us = r.cpu_s * 1e6 / requests if requests else None
    return rps, r.stdout + r.stderr, cpu_us, server_figures(load, requests)


def server_figures(load, requests):
    """nginx's CPU per request and busy fraction over a run, where /proc told them."""
    if load.cpu_s is None or not requests:
        return {}
    return {"nginx_cpu_us_per_request": load.cpu_s * 1e6 / requests, "nginx_busy": load.busy}


def describe_server(fig):
    """', nginx 13.6 us CPU per request, busy 99% of a core', or '' where unknown."""
    if not fig:
        return ""
    return (f"; nginx {fig['nginx_cpu_us_per_request']:.1f} us CPU per request, "
            f"busy {fig['nginx_busy']:.0%} of a core")


def sqlite_count(db, sql):
    import sqlite3
    try:
        con = sqlite3.connect(db)
        try:
            return con.execute(sql).fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error as e:
        return f"error: {e}"


def scraper_help(binary):
    try:
        r = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
        return r.stdout + r.stderr
    except (OSError, subprocess.SubprocessError):
        return ""


def run_scraper_section(args, out, quick):
    nginx = os.environ.get("TETHER_BENCH_NGINX")  # another nginx binary ("none": skip the section)
    if nginx is None:
        nginx = "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else shutil.which("nginx")
    elif not Path(nginx).exists():
        nginx = shutil.which(nginx)
    if not nginx:
        log("  SKIPPED: nginx not found (Debian: apt-get install nginx-light; or TETHER_BENCH_NGINX=none)")
        return {"skipped": "nginx not found"}
    res = {"pages": PAGE_COUNT, "concurrency": 64}
    root = Path(tempfile.mkdtemp(prefix="tether-bench-nginx-"))
    port = free_port()
    proc = None
    try:
        urls = make_site(root, port)
        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (root / "tmp" / d).mkdir(parents=True, exist_ok=True)
        os.chmod(root / "tmp", 0o755)
        conf = root / "nginx.conf"
        conf.write_text(NGINX_CONF.format(root=root, port=port))
        proc = subprocess.Popen([nginx, "-p", str(root), "-c", str(conf)], stdout=subprocess.DEVNULL,
                                stderr=open(root / "nginx.stderr", "w"))
        if not wait_port(port):
            err = "".join(p.read_text() for p in (root / "nginx.stderr", root / "error.log") if p.exists())
            log(f"  SKIPPED: nginx did not start: {err.strip()[-300:]}")
            return {"skipped": f"nginx did not start: {err.strip()[-300:]}"}
        log(f"  nginx (1 worker) on 127.0.0.1:{port}, {PAGE_COUNT} pages of ~4 KiB in {root}")
        seconds = 2 if quick else 5

        if shutil.which("wrk"):
            script = root / "rotate.lua"
            script.write_text(WRK_ROTATE.format(count=PAGE_COUNT))
            run_wrk(f"http://127.0.0.1:{port}/p/00001.html", 1, proc.pid)  # warm-up
            rps, text, cpu_us, srv = run_wrk(f"http://127.0.0.1:{port}/p/00001.html", seconds, proc.pid)
            (out / "wrk.txt").write_text(text)
            res["wrk_rps"] = rps
            res["wrk_cpu_us_per_request"] = cpu_us
            res["wrk_server"] = srv
            log(f"  wrk -t1 -c64 -d{seconds}s (one page): {rps:,.0f} req/s, "
                f"{cpu_us or 0:.1f} us CPU per request{describe_server(srv)}" if rps
                else f"  wrk FAILED: {text.strip()[-300:]}")
            rps2, text2, _, srv2 = run_wrk(f"http://127.0.0.1:{port}/", seconds, proc.pid, script)
            (out / "wrk_rotating.txt").write_text(text2)
            res["wrk_rotating_rps"] = rps2
            res["wrk_rotating_server"] = srv2
            if rps2:
                log(f"  wrk -t1 -c64 -d{seconds}s (all {PAGE_COUNT} pages in turn, Lua): {rps2:,.0f} req/s"
                    f"{describe_server(srv2)}")
        else:
            log("  wrk not installed: no server limit measured")

        runs = 1 if quick else 3
        res["runs"] = runs
        if args.python and Path(args.python).exists():
            got = []
            for i in range(runs):
                db = root / f"aiohttp{i}.db"
                try:
                    with server_load(proc.pid) as load:
                        r = run_cmd([args.python, str(HERE / "python" / "scraper_aiohttp.py"), "--urls",
                                     str(urls), "--db", str(db), "--concurrency", "64"],
                                    scaled_timeout(SCRAPER_RUN_TIMEOUT_S))
                except TimedOut as e:
                    log(f"  aiohttp pipeline FAILED: {e}")
                    res["aiohttp_error"] = str(e)
                    break
                if r.returncode != 0:
                    log(f"  aiohttp pipeline failed: {r.stderr.strip()[-400:]}")
                    res["aiohttp_error"] = r.stderr.strip()[-400:]
                    break
                d = json.loads(r.stdout.strip().splitlines()[-1])
                d["cpu_us_per_page"] = r.cpu_s * 1e6 / PAGE_COUNT
                d["server"] = server_figures(load, PAGE_COUNT)
                # Timed like tether's scraper: the whole process, start-up, reading the URL
                # list and closing SQLite included. Its own timer (fetching and storing only,
                # after the imports) is kept beside it.
                d["inner_elapsed_s"], d["inner_req_per_s"] = d["elapsed_s"], d["req_per_s"]
                d["elapsed_s"], d["req_per_s"] = load.wall_s, PAGE_COUNT / load.wall_s
                if d.get("ok") != PAGE_COUNT:
                    res["aiohttp_error"] = f"only {d.get('ok')}/{PAGE_COUNT} pages fetched with status 200"
                    log(f"  aiohttp pipeline: {res['aiohttp_error']}; its figure is not comparable")
                    break
                got.append(d)
            if got and "aiohttp_error" not in res:
                got.sort(key=lambda d: d["req_per_s"])
                d = got[(len(got) - 1) // 2]
                res["aiohttp"] = d
                res["aiohttp_all_rps"] = [g["req_per_s"] for g in got]
                res["aiohttp_rps"] = d["req_per_s"]
                res["aiohttp_cpu_us_per_page"] = d["cpu_us_per_page"]
                log(f"  aiohttp pipeline (seeds): {d['req_per_s']:,.0f} req/s (median of {len(got)}; process wall "
                    f"time {d['elapsed_s']:.2f}s, start-up and SQLite included; by its own timer after start-up "
                    f"{d['inner_req_per_s']:,.0f} req/s), "
                    f"{d['ok']}/{d['urls']} ok, stored in SQLite; {d['cpu_us_per_page']:.0f} us CPU per page"
                    f"{describe_server(d['server'])}")

        scraper = args.scraper
        if scraper and Path(scraper).exists():
            help_text = scraper_help(scraper)
            got = []
            for i in range(runs):
                db = root / f"tether{i}.db"
                cmd = [scraper, "--urls", str(urls), "--concurrency", "64", "--rate", "0", "--quiet", "--db",
                       str(db)]
                for flag, value in (("--per-host", "64"), ("--depth", "0")):
                    if flag in help_text:  # all pages are on one host; no crawling beyond the list
                        cmd[1:1] = [flag, value]
                res["scraper_cmd"] = " ".join(cmd)
                limit = scaled_timeout(SCRAPER_RUN_TIMEOUT_S)
                try:
                    with server_load(proc.pid) as load:
                        r = run_cmd(cmd, limit)
                except TimedOut as e:
                    (out / "scraper.log").write_text(e.stdout + e.stderr)
                    states = _count_scraper_rows(db)
                    res["scraper_error"] = f"timed out after {limit:.0f}s (killed); rows by state: {states}"
                    log(f"  tether scraper FAILED: {res['scraper_error']}; see {out}/scraper.log")
                    break
                elapsed = load.wall_s
                (out / "scraper.log").write_text(r.stdout + r.stderr)
                if r.returncode != 0:
                    log(f"  tether scraper exited with {r.returncode}: {(r.stdout + r.stderr).strip()[-400:]}")
                    res["scraper_error"] = f"exit {r.returncode}: {(r.stdout + r.stderr).strip()[-200:]}"
                    break
                states = _count_scraper_rows(db)
                ok = states.get("ok") if isinstance(states, dict) else None
                if ok != PAGE_COUNT:
                    res["scraper_error"] = f"only {ok}/{PAGE_COUNT} pages ok; rows by state: {states}"
                    log(f"  tether scraper: {res['scraper_error']}; its figure is not comparable")
                    break
                got.append({"elapsed_s": elapsed, "rps": PAGE_COUNT / elapsed, "rows": states,
                            "cpu_us_per_page": r.cpu_s * 1e6 / PAGE_COUNT,
                            "server": server_figures(load, PAGE_COUNT),
                            "summary": (r.stdout + r.stderr).strip().splitlines()[-1:]})
            if got and "scraper_error" not in res:
                got.sort(key=lambda d: d["rps"])
                d = got[(len(got) - 1) // 2]
                res["scraper_elapsed_s"] = d["elapsed_s"]
                res["scraper_rps"] = d["rps"]
                res["scraper_all_rps"] = [g["rps"] for g in got]
                res["scraper_rows"] = d["rows"]
                res["scraper_summary"] = d["summary"]
                res["scraper_cpu_us_per_page"] = d["cpu_us_per_page"]
                res["scraper_server"] = d["server"]
                log(f"  tether scraper: {d['rps']:,.0f} req/s (median of {len(got)}; process wall time "
                    f"{d['elapsed_s']:.2f}s, start-up and SQLite included; {d['cpu_us_per_page']:.0f} us CPU "
                    f"per page{describe_server(d['server'])}); rows: {d['rows']}; "
                    f"its summary: {' '.join(d['summary'])}")
        else:
            log("  SKIPPED tether scraper: the `scraper` binary does not exist yet "
                "(examples/scraper has no main target in this build)")
            res["scraper_skipped"] = "scraper binary not built"
    finally:
        if proc:
            proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(root, ignore_errors=True)

    (out / "scraper.json").write_text(json.dumps(res, indent=1))
    labels, vals = [], []
    for label, k in (("wrk -t1 -c64 (one page)", "wrk_rps"), ("wrk, all pages (Lua)", "wrk_rotating_rps"),
                     ("tether scraper", "scraper_rps"), ("aiohttp pipeline (seeds)", "aiohttp_rps")):
        if res.get(k):
            labels.append(label)
            vals.append(res[k])
    if vals:
        svg = svgplot.bar_chart(f"Scraper: {PAGE_COUNT:,} pages of ~4 KiB from local nginx, 64 concurrent", labels,
                                [{"name": "requests per second", "values": vals, "color": "#1f77b4"}],
                                "requests per second", log=False, value_fmt=lambda v: f"{v:,.0f}")
        (out / "scraper.svg").write_text(svg)
    bad = [f"{who}: {res[k]}" for k, who in (("scraper_error", "tether scraper"), ("aiohttp_error", "aiohttp"))
           if res.get(k)]
    if bad:
        raise PartialFailure("; ".join(bad), res)
    return res


def _count_scraper_rows(db):
    """Rows of the scraper's database (table `urls`) by state: ok, failed, skipped, pending."""
    import sqlite3
    if not Path(db).exists():
        return "no database"
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return dict(con.execute("SELECT state, COUNT(*) FROM urls GROUP BY state").fetchall())
        finally:
            con.close()
    except sqlite3.Error as e:
        return f"error: {e}"


# --------------------------------------------------------------------------------------
# targets


def evaluate_targets(prim, mem, qvb, scr):
    bench = (prim or {}).get("benchmarks", {})

    def ns(name):
        b = bench.get(name)
        return b.get("ns_per_item") if b else None

    def ips(name):
        b = bench.get(name)
        return b.get("items_per_second") if b else None

    def ratio(a, b):
        return ns(b) / ns(a) if ns(a) and ns(b) else None

    t = []
    if prim is None:
        prim_note, prim_failed = "the primitives section did not run", False
    elif prim.get("section_error"):
        prim_note, prim_failed = "the primitives section FAILED: " + prim["section_error"], True
    elif prim.get("failed"):
        prim_note, prim_failed = "its benchmark binary FAILED: " + "; ".join(prim["failed"]), True
    else:
        prim_note, prim_failed = "not compiled: the header it needs is missing", False

    def add(issue, what, value, op, threshold, unit, fmt, missing=None, failed=None, section="primitives"):
        if missing is None:
            missing, failed = prim_note, prim_failed
        if value is None:
            result = "FAIL" if failed else "SKIP"
        elif op == "<=":
            result = "PASS" if value <= threshold else "MISS"
        else:
            result = "PASS" if value >= threshold else "MISS"
        t.append({"issue": issue, "section": section, "target": what, "measured": value, "op": op,
                  "threshold": threshold, "unit": unit, "result": result,
                  "fmt": verdict_safe_format(fmt, value, op, threshold, result),
                  "note": missing if value is None else ""})

    add("7/4", "queue 1P1C cap 16 vs asio channel", ratio("queue/tether/cap:16/pc:1", "queue/asio_channel/cap:16/pc:1"),
        ">=", 25, "x", "{:.1f}x")
    add("7/4", "queue 1P1C cap 1024 vs asio channel",
        ratio("queue/tether/cap:1024/pc:1", "queue/asio_channel/cap:1024/pc:1"), ">=", 25, "x", "{:.1f}x")
    for cap in (16, 1024):
        v = ips(f"queue/tether/cap:{cap}/pc:1")
        add("7/4", f"queue 1P1C cap {cap} throughput", v / 1e6 if v else None, ">=", 100, "M items/s", "{:.1f} M/s")
    for cap in (16, 1024):
        v = ips(f"queue/tether/cap:{cap}/pc:4")
        add("4", f"queue 4P4C cap {cap} throughput", v / 1e6 if v else None, ">=", 50, "M items/s", "{:.1f} M/s")
    add("7/3", "spawn+join per child (1M children)", ns("spawn_join/tether/1000000"), "<=", 100, "ns", "{:.1f} ns")
    add("7/3", "spawn+join vs co_spawn (1M children)", ratio("spawn_join/tether/1000000", "spawn_join/asio/1000000"),
        ">=", 2.5, "x", "{:.2f}x")
    m = (mem or {}).get("tether", {})
    mem_note = ("the memory section did not run" if mem is None
                else ("memory_bench FAILED: " + mem["section_error"]) if mem.get("section_error")
                else m.get("skipped", "memory_bench printed no tether figure"))
    add("7/3", "memory per pending child (100k, malloc in use)", m.get("malloc_bytes_per_child"), "<=", 256, "B",
        "{:.0f} B", missing=mem_note, failed=bool(mem) and "skipped" not in m, section="memory")
    add("7/3", "with_timeout around sync op", ns("timeout/tether"), "<=", 100, "ns", "{:.1f} ns")
    add("7/4", "semaphore uncontended acquire+release", ns("semaphore_uncontended/tether"), "<=", 5, "ns",
        "{:.2f} ns")
    add("7/4", "semaphore contended (limit 4, 64 tasks)", ns("semaphore_contended/tether"), "<=", 100, "ns",
        "{:.1f} ns")
    add("2", "task await (sync-completing)", ns("task_await/tether"), "<=", 15, "ns", "{:.2f} ns")
    add("2", "yield_now with 64 ready tasks", ns("yield64/tether"), "<=", 30, "ns", "{:.1f} ns")
    add("5", "rate_limiter acquire + task (uncontended)", ns("resilience/rate_limiter"), "<=", 30, "ns", "{:.1f} ns")
    add("5", "circuit_breaker call(task) (closed)", ns("resilience/circuit_breaker"), "<=", 30, "ns", "{:.1f} ns")

    pool, pool_note = None, "queue_vs_batch did not run (headers not landed)"
    asio_pool = None
    if qvb:
        for s in qvb.get("summary", []):
            if s["impl"] == "tether" and s["clock"] == "real" and s["dist"] == "lognormal" and s["width"] == 64:
                pool = s.get("pool_vs_ideal")
                if s.get("pool_error"):
                    pool_note = "the run FAILED: " + s["pool_error"]
            if s["impl"] == "asio" and s["clock"] == "real" and s["dist"] == "lognormal" and s["width"] == 64:
                asio_pool = s.get("pool_vs_ideal")
    if qvb and pool is None and qvb.get("errors"):
        pool_note = "the run FAILED: " + qvb["errors"][0]
    if qvb and qvb.get("section_error"):
        pool_note = "the run FAILED: " + qvb["section_error"]
    add("7", "pool wall time / ideal (real timers, W=64, lognormal 1 ms)", pool, "<=", 1.05, "x", "{:.3f}x",
        missing=pool_note, failed=pool_note.startswith("the run FAILED"), section="queue_vs_batch")
    if asio_pool is not None:
        t[-1]["context"] = f"the same pool in plain Asio, same run: {asio_pool:.3f}x"

    s = scr or {}
    wrk, mine, py = s.get("wrk_rps"), s.get("scraper_rps"), s.get("aiohttp_rps")
    failed = bool(s.get("scraper_error"))
    why = (s.get("skipped") or s.get("scraper_skipped")
           or (f"tether scraper FAILED: {s['scraper_error']}" if s.get("scraper_error") else None)
           or ("the scraper section did not run" if scr is None else None)
           or (None if wrk else "wrk not measured"))
    add("7/6", "scraper req/s vs wrk -t1 -c64", mine / wrk if mine and wrk else None, ">=", 0.90, "x",
        "{:.0%}", missing=why or "not measured", failed=failed, section="scraper")
    if mine and wrk:
        t[-1]["context"] = scraper_context(s)
    why_py = why or (f"aiohttp FAILED: {s['aiohttp_error']}" if s.get("aiohttp_error") else None)
    add("7/6", "scraper req/s vs aiohttp pipeline", mine / py if mine and py else None, ">=", 10, "x", "{:.1f}x",
        missing=why_py or "not measured", failed=failed or bool(s.get("aiohttp_error")), section="scraper")
    return t


# --------------------------------------------------------------------------------------
# report


def verdict_safe_format(fmt, value, op, threshold, result):
    """`fmt` with as many more decimals as it takes for the shown figure to agree
    with the verdict: a MISS of 9.96x against >= 10 is shown as 9.96x, not 10.0x."""
    m = re.search(r"\{:\.(\d+)([f%])\}", fmt)
    if value is None or not m:
        return fmt
    scale = 100 if m.group(2) == "%" else 1
    for digits in range(int(m.group(1)), int(m.group(1)) + 5):
        candidate = fmt[:m.start()] + "{:." + str(digits) + m.group(2) + "}" + fmt[m.end():]
        shown = round(value * scale, digits) / scale
        if (shown <= threshold if op == "<=" else shown >= threshold) == (result == "PASS"):
            return candidate
    return candidate


def scraper_context(s):
    """What bounds the scraper figure: how busy nginx was under wrk (a server-bound wrk
    measures nginx, not a client limit) and what wrk gets on the scraper's own pages."""
    parts = []
    for label, k in (("under wrk (one page)", "wrk_server"), ("under the scraper", "scraper_server")):
        fig = s.get(k) or {}
        if fig:
            parts.append(f"nginx {label}: {fig['nginx_cpu_us_per_request']:.1f} us CPU/request, "
                         f"{fig['nginx_busy']:.0%} busy")
    rot = s.get("wrk_rotating_rps")
    if rot:
        parts.append(f"wrk on the same {PAGE_COUNT:,} pages: {rot:,.0f} req/s "
                     f"({rot / s['wrk_rps']:.0%} of its one-page rate; scraper {s['scraper_rps'] / rot:.0%} of it)")
    ceiling = scraper_cpu_ceiling(s)
    if ceiling:
        parts.append(f"CPU ceiling: with all {ceiling['cpus']} CPUs busy, {ceiling['cpu_us_per_page']:.1f} us of "
                     f"CPU per page (scraper + nginx) allows {ceiling['rps']:,.0f} req/s "
                     f"({ceiling['rps'] / s['wrk_rps']:.0%} of wrk); the run used {ceiling['utilisation']:.0%} of them")
    return "; ".join(parts)


def scraper_cpu_ceiling(s):
    """The most pages per second the machine's CPUs allow the scraper, from the CPU
    that the scraper process and nginx spent per page in the measured run: client
    and server share the machine, so (cpus / CPU per page) bounds the rate however
    well the two overlap. None where a figure is missing."""
    cpus = os.cpu_count()
    client = s.get("scraper_cpu_us_per_page")
    server = (s.get("scraper_server") or {}).get("nginx_cpu_us_per_request")
    if not (cpus and client and server and s.get("scraper_rps")):
        return None
    per_page = client + server
    rps = cpus * 1e6 / per_page
    return {"cpus": cpus, "cpu_us_per_page": per_page, "rps": rps, "utilisation": s["scraper_rps"] / rps}


def fmt_opt(v, f="{:.3g}"):
    return f.format(v) if v is not None else "—"


def fmt_ns(v):
    """A time in ns, as ns below 10 µs and as µs above."""
    if v is None:
        return "—"
    return f"{v:.4g} ns" if v < 10000 else f"{v / 1000:.4g} µs"


def print_summary(machine, prim, mem, qvb, scr, targets):
    log("")
    log("=" * 100)
    log(f"tether benchmarks — {machine['date']}")
    log(f"  {machine['host_cpu']}, {machine['nproc']} CPUs ({machine.get('cpu_detail')}), {machine['os']}, "
        f"Linux {machine['kernel']}")
    log(f"  {machine['compiler']}, flags: {machine['flags']} ({machine['build_type']}), Asio {machine['asio']}, "
        f"Google Benchmark {machine['google_benchmark']}, {machine['python']}")
    log(f"  load average at start {machine['loadavg_at_start']}, at end {machine.get('loadavg_at_end')} "
        f"(other work on the machine skews absolute figures; ratios were measured side by side)")
    if describe_steal(machine):
        log(f"  CPU time stolen by the hypervisor (other guests), per section: {describe_steal(machine)}"
            + (f"  <- above {STEAL_WARNING * 100:.0f} %: absolute figures of that section are slowed"
               if any(slowed_by_steal(v) for v in machine["steal_by_section"].values()) else ""))
    if prim and "pairs" in prim:
        log("")
        log("primitives: CPU time per operation (median of repetitions); wall time in brackets")
        log(f"{'primitive':34} {'tether':>12} {'baseline':>12}  {'speedup':>8}  {'(wall: tether':>14} "
            f"{'baseline)':>12}  baseline")
        for r in prim["pairs"]:
            log(f"{r['operation']:34} {fmt_ns(r['tether_ns']):>12} "
                f"{fmt_ns(r['baseline_ns']):>12}  {fmt_opt(r['speedup'], '{:.1f}x'):>8}  "
                f"{fmt_ns(r.get('tether_wall_ns')):>14} "
                f"{fmt_ns(r.get('baseline_wall_ns')):>12}  {r['baseline_kind']}")
    if mem:
        log("")
        for k in ("tether", "asio"):
            d = mem.get(k, {})
            if "malloc_bytes_per_child" in d:
                log(f"memory per pending child, {k:7}: {d['malloc_bytes_per_child']:.0f} B (malloc), "
                    f"{d['heap_bytes_per_child']:.0f} B (operator new), {d['allocations_per_child']:.2f} allocs "
                    f"— {d['what']}")
            elif d:
                log(f"memory per pending child, {k:7}: skipped ({d.get('skipped')})")
    if qvb and "summary" in qvb:
        log("")
        log(f"queue vs batch, N = {qvb['n']}, mean 1 ms: makespan / its exact ideal (1.000 = no overhead), "
            f"throughput, and batch/pool wall-time ratio")
        log(f"{'clock':8} {'dist':12} {'W':>4} {'impl':8} {'pool':>8} {'batch':>8} {'window':>8} "
            f"{'pool jobs/s':>12} {'batch jobs/s':>12} {'window jobs/s':>13} {'batch/pool':>10}")
        for s in qvb_rows(qvb):
            if s["clock"] == "virtual" and s["width"] not in (1, 16, 64, 512):
                continue
            cells = qvb_cells(s)
            log(f"{s['clock']:8} {s['dist']:12} {s['width']:>4} {s['impl']:8} {cells[0]:>8} {cells[1]:>8} "
                f"{cells[2]:>8} {fmt_opt(s.get('pool_jobs_s'), '{:,.0f}'):>12} "
                f"{fmt_opt(s.get('batch_jobs_s'), '{:,.0f}'):>12} {fmt_opt(s.get('window_jobs_s'), '{:,.0f}'):>13} "
                f"{fmt_opt(s.get('batch_over_pool'), '{:.2f}x'):>10}")
    if scr:
        log("")
        for label, k in (("wrk -t1 -c64, one page", "wrk_rps"), ("wrk -t1 -c64, all pages", "wrk_rotating_rps"),
                         ("tether scraper", "scraper_rps"), ("aiohttp pipeline", "aiohttp_rps")):
            log(f"scraper: {label:28} {fmt_opt(scr.get(k), '{:,.0f} req/s')}")
        if scr.get("skipped"):
            log(f"scraper: skipped — {scr['skipped']}")
    log("")
    log(f"{'targets (issue)':66} {'measured':>12} {'target':>12}  result")
    for t in targets:
        meas = t["fmt"].format(t["measured"]) if t["measured"] is not None else "—"
        thr = f"{t['op']} {t['threshold']:g}{'' if t['unit'] in ('x',) else ' ' + t['unit']}"
        if t["unit"] == "x" and t["fmt"].endswith("%}"):
            thr = f"{t['op']} {t['threshold']:.0%}"
        note = f"  ({t['note']})" if t["note"] else (f"  ({t['context']})" if t.get("context") else "")
        log(f"{t['target'] + ' (' + t['issue'] + ')':66} {meas:>12} {thr:>12}  {t['result']}{note}")
    counts = {r: sum(1 for t in targets if t["result"] == r) for r in ("PASS", "MISS", "FAIL", "SKIP")}
    log(f"\n{counts['PASS']} PASS, {counts['MISS']} MISS, {counts['FAIL']} FAIL (run failed), "
        f"{counts['SKIP']} SKIP (not measurable yet)")
    log("=" * 100)


def write_markdown(out, machine, prim, mem, qvb, scr, targets):
    L = []
    L.append(f"Measured {machine['date']} on {machine['host_cpu']} ({machine['nproc']} CPUs; "
             f"{machine.get('cpu_detail') or 'lscpu unavailable'}), {machine['os']}, "
             f"Linux {machine['kernel']}; {machine['compiler']}, `{machine['flags']}` ({machine['build_type']}); "
             f"Asio {machine['asio']}; Google Benchmark {machine['google_benchmark']}; {machine['python']}; "
             f"{machine.get('nginx') or 'nginx absent'}; {machine.get('wrk') or 'wrk absent'}; "
             f"tether {machine['git']}. Load average (1/5/15 min) at start {machine['loadavg_at_start']}, "
             f"at end {machine.get('loadavg_at_end')}."
             + (f" CPU time stolen by the hypervisor, per section: {describe_steal(machine)}."
                if describe_steal(machine) else ""))
    L.append("")
    L.append("### Targets")
    L.append("")
    L.append("| target (issue) | measured | target | result |")
    L.append("|---|---:|---:|---|")
    for t in targets:
        meas = t["fmt"].format(t["measured"]) if t["measured"] is not None else "—"
        thr = (f"{t['op']} {t['threshold']:.0%}" if t["fmt"].endswith("%}")
               else f"{t['op']} {t['threshold']:g}{'' if t['unit'] == 'x' else ' ' + t['unit']}")
        thr = thr.replace("<=", "≤").replace(">=", "≥")
        res = f"**{t['result']}**" + (f" ({t['note']})" if t["note"] else "")
        if t.get("context"):
            res += f" ({t['context']})"
        L.append(f"| {t['target']} ({t['issue']}) | {meas} | {thr} | {res} |")
    if prim and "pairs" in prim:
        L.append("")
        L.append("### Primitives (median of repetitions; CPU time per operation, wall time beside it)")
        L.append("")
        L.append("| operation | tether | baseline | speedup | tether (wall) | baseline (wall) | baseline is |")
        L.append("|---|---:|---:|---:|---:|---:|---|")
        for r in prim["pairs"]:
            L.append(f"| {r['operation']} | {fmt_ns(r['tether_ns'])} | "
                     f"{fmt_ns(r['baseline_ns'])} | {fmt_opt(r['speedup'], '{:.1f}×')} | "
                     f"{fmt_ns(r.get('tether_wall_ns'))} | "
                     f"{fmt_ns(r.get('baseline_wall_ns'))} | {r['baseline_kind'].replace('|', chr(92) + '|')} |")
    if mem:
        L.append("")
        L.append("### Memory per pending child (100,000 children)")
        L.append("")
        L.append("| variant | malloc in use | operator new payload | allocations | resident set |")
        L.append("|---|---:|---:|---:|---:|")
        for k in ("tether", "asio"):
            d = mem.get(k, {})
            if "malloc_bytes_per_child" in d:
                L.append(f"| {k}: {d['what']} | {d['malloc_bytes_per_child']:.0f} B | "
                         f"{d['heap_bytes_per_child']:.0f} B | {d['allocations_per_child']:.2f} | "
                         f"{d['rss_bytes_per_child']:.0f} B |")
            elif d:
                L.append(f"| {k} | skipped: {d.get('skipped')} | | | |")
    if qvb and "summary" in qvb:
        L.append("")
        L.append(f"### Queue vs batch (N = {qvb['n']}, mean 1 ms, seed {qvb['seed']})")
        L.append("")
        L.append("Makespan divided by the strategy's own exact zero-overhead schedule (1.000 = no overhead), "
                 "throughput (jobs per second of wall time; on virtual time, of virtual time), and how much "
                 "longer the batch takes than the pool (wall time). `asio` is the same pool in plain Asio; "
                 "`asyncio` runs the same durations in Python.")
        L.append("")
        L.append("| clock | distribution | W | impl | pool | batch | window | pool jobs/s | batch jobs/s | "
                 "window jobs/s | batch / pool |")
        L.append("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for s in qvb_rows(qvb):
            if s["clock"] == "virtual" and s["width"] not in (1, 16, 64, 512):
                continue
            cells = qvb_cells(s)
            L.append(f"| {s['clock']} | {s['dist']} | {s['width']} | {s['impl']} | {cells[0]} | {cells[1]} | "
                     f"{cells[2]} | {fmt_opt(s.get('pool_jobs_s'), '{:,.0f}')} | "
                     f"{fmt_opt(s.get('batch_jobs_s'), '{:,.0f}')} | {fmt_opt(s.get('window_jobs_s'), '{:,.0f}')} | "
                     f"{fmt_opt(s.get('batch_over_pool'), '{:.2f}×')} |")
        summ = qvb["summary"]
        cpu = [s for s in qvb_rows(qvb) if s["impl"] == "tether" and s["width"] in (64, 512)]
        if cpu:
            L.append("")
            L.append("CPU time per job (process CPU time of the whole run / N; on virtual time this is all the "
                     "overhead there is) and peak heap growth of the run (each run in a fresh process), tether:")
            L.append("")
            L.append("| clock | distribution | W | pool CPU/job | batch CPU/job | window CPU/job | pool peak | "
                     "batch peak | window peak |")
            L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
            for s in cpu:
                L.append(f"| {s['clock']} | {s['dist']} | {s['width']} | " + " | ".join(
                    fmt_ns(float(s.get(f'{st}_cpu_ns_per_job') or 0) or None) for st in STRATEGIES)
                    + " | " + " | ".join(fmt_opt(float(s.get(f'{st}_peak_bytes') or 0) / 1024 or None,
                                                 '{:,.0f} KiB') for st in STRATEGIES) + " |")
        asio = [s for s in summ if s["impl"] == "asio" and s["width"] in (64, 512)]
        if asio:
            L.append("")
            L.append("The plain-Asio pool: " + "; ".join(
                f"{s['dist']} W={s['width']}: {fmt_ns(float(s.get('pool_cpu_ns_per_job') or 0) or None)} CPU/job, "
                f"{fmt_opt(float(s.get('pool_peak_bytes') or 0) / 1024 or None, '{:,.0f} KiB')} peak"
                for s in sorted(asio, key=lambda s: (DISTS.index(s["dist"]), s["width"]))) + ".")
    if scr:
        L.append("")
        L.append("### Scraper (10,000 pages of ~4 KiB, 64 concurrent, local nginx with one worker)")
        L.append("")
        L.append("| client | requests/s | vs wrk | client CPU per request | nginx CPU per request | nginx busy |")
        L.append("|---|---:|---:|---:|---:|---:|")
        wrk = scr.get("wrk_rps")
        for label, k, c, srv in (
                ("wrk -t1 -c64, one page (the target's reference)", "wrk_rps", "wrk_cpu_us_per_request",
                 scr.get("wrk_server")),
                ("wrk -t1 -c64, all 10,000 pages in turn (Lua script)", "wrk_rotating_rps", None,
                 scr.get("wrk_rotating_server")),
                ("tether scraper (process wall time, SQLite included)", "scraper_rps", "scraper_cpu_us_per_page",
                 scr.get("scraper_server")),
                ("seeds' aiohttp pipeline (process wall time, SQLite included)", "aiohttp_rps",
                 "aiohttp_cpu_us_per_page", (scr.get("aiohttp") or {}).get("server"))):
            v, srv = scr.get(k), srv or {}
            L.append(f"| {label} | {fmt_opt(v, '{:,.0f}')} | "
                     f"{fmt_opt(v / wrk if v and wrk else None, '{:.0%}')} | "
                     f"{fmt_opt(scr.get(c) if c else None, '{:.1f} µs')} | "
                     f"{fmt_opt(srv.get('nginx_cpu_us_per_request'), '{:.1f} µs')} | "
                     f"{fmt_opt(srv.get('nginx_busy'), '{:.0%}')} |")
        if scr.get("runs"):
            L.append("")
            L.append(f"Median of {scr['runs']} runs each for the two pipelines "
                     f"(tether: {', '.join(f'{v:,.0f}' for v in scr.get('scraper_all_rps', []))}; "
                     f"aiohttp: {', '.join(f'{v:,.0f}' for v in scr.get('aiohttp_all_rps', []))} req/s); "
                     "wrk ran for a fixed time after a 1 s warm-up.")
        ceiling = scraper_cpu_ceiling(scr)
        if ceiling and wrk:
            L.append("")
            L.append(f"CPU ceiling of the scraper on this machine: the scraper and nginx spent "
                     f"{ceiling['cpu_us_per_page']:.1f} µs of CPU per page between them, so {ceiling['cpus']} busy "
                     f"CPUs allow at most {ceiling['rps']:,.0f} pages/s ({ceiling['rps'] / wrk:.0%} of wrk); "
                     f"the measured run reached {ceiling['utilisation']:.0%} of that ceiling.")
        for k in ("skipped", "scraper_skipped", "scraper_error"):
            if scr.get(k):
                L.append(f"\n{k.replace('_', ' ')}: {scr[k]}")
    (out / "summary.md").write_text("\n".join(L) + "\n")


# --------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description="tether benchmark driver")
    ap.add_argument("--out", required=True, help="results folder")
    ap.add_argument("--gbench", action="append", default=[], help="a Google Benchmark binary (repeatable)")
    ap.add_argument("--memory", help="memory_bench binary")
    ap.add_argument("--queue-vs-batch", help="queue_vs_batch_bench binary")
    ap.add_argument("--scraper", help="tether's scraper binary (empty: not built)")
    ap.add_argument("--python", default="/usr/bin/python3", help="Python for the asyncio/aiohttp peers")
    ap.add_argument("--compiler", default="?")
    ap.add_argument("--flags", default="?")
    ap.add_argument("--build-type", default="?")
    ap.add_argument("--asio-version", default="?")
    ap.add_argument("--compile-commands", help="compile_commands.json, for the exact compiler flags")
    ap.add_argument("--only", default=os.environ.get("TETHER_BENCH_ONLY", ""),
                    help="comma-separated sections: " + ",".join(SECTIONS))
    ap.add_argument("--publish", default=os.environ.get("TETHER_BENCH_PUBLISH", ""),
                    help="also copy SVGs and summary.md here (e.g. docs/benchmarks)")
    args = ap.parse_args()

    # ctest's TIMEOUT (or Ctrl-C) sends a signal: unwind, so that nginx and any
    # running sub-run are stopped by their `finally` blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    quick, full = env_flag("TETHER_BENCH_QUICK"), env_flag("TETHER_BENCH_FULL")
    only = [s for s in args.only.split(",") if s] or SECTIONS
    for s in only:
        if s not in SECTIONS:
            ap.error(f"unknown section {s!r} (choose from {', '.join(SECTIONS)})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Results of an earlier run must not pass for this run's (e.g. a plot of a
    # section that fails or is skipped this time): remove what the driver writes.
    for pattern in ("*.svg", "*.csv", "*.json", "*.log", "*.txt", "summary.md", "durations/*.txt"):
        for f in out.glob(pattern):
            f.unlink()
    machine = machine_info(args)
    (out / "machine.json").write_text(json.dumps(machine, indent=1))
    log(f"tether benchmarks -> {out}  (sections: {', '.join(only)}{', quick' if quick else ''}"
        f"{', full sweep' if full else ''})")

    prim = mem = qvb = scr = None
    failures = []
    t_start = time.time()
    machine["steal_by_section"] = {}
    for section in only:
        log(f"\n[{section}]")
        ticks_before = cpu_ticks()
        try:
            if section == "primitives":
                prim = run_primitives(args, out, quick, full)
            elif section == "memory":
                mem = run_memory(args, out)
            elif section == "queue_vs_batch":
                qvb = run_queue_vs_batch(args, out, quick, full)
            elif section == "scraper":
                scr = run_scraper_section(args, out, quick)
        except PartialFailure as e:
            failures.append(f"{section}: {e}")
            log(f"  FAILED: {e}")
            if section == "primitives":
                prim = e.result
            elif section == "queue_vs_batch":
                qvb = e.result
            elif section == "scraper":
                scr = e.result
        except Exception as e:  # noqa: BLE001 - report and go on with the other sections
            failures.append(f"{section}: {e}")
            log(f"  FAILED: {e}")
            crashed = {"section_error": str(e)}
            if section == "primitives":
                prim = crashed
            elif section == "memory":
                mem = crashed
            elif section == "queue_vs_batch":
                qvb = crashed
            elif section == "scraper":
                scr = {"scraper_error": f"the section crashed: {e}"}
        stolen = stolen_share(ticks_before, cpu_ticks())
        machine["steal_by_section"][section] = stolen
        if slowed_by_steal(stolen):
            log(f"  WARNING: the hypervisor took {stolen * 100:.1f} % of this machine's CPU time during this "
                f"section (steal in /proc/stat): its absolute figures are slower than the machine can do")

    machine["loadavg_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    (out / "machine.json").write_text(json.dumps(machine, indent=1))
    targets = evaluate_targets(prim, mem, qvb, scr)
    for t in targets:  # a MISS measured while other guests had the CPU says so
        stolen = machine["steal_by_section"].get(t["section"])
        if t["result"] == "MISS" and slowed_by_steal(stolen):
            t["context"] = "; ".join(filter(None, [t.get("context"), f"measured while the hypervisor took "
                                                   f"{stolen * 100:.1f} % of the CPU time"]))
    results = {"machine": machine, "primitives": prim, "memory": mem, "queue_vs_batch": qvb, "scraper": scr,
               "targets": targets, "failures": failures, "seconds": time.time() - t_start}
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    with open(out / "targets.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["issue", "target", "measured", "op", "threshold", "unit", "result",
                                          "note", "context"], extrasaction="ignore")
        w.writeheader()
        w.writerows(targets)
    write_markdown(out, machine, prim, mem, qvb, scr, targets)
    print_summary(machine, prim, mem, qvb, scr, targets)
    log(f"results: {out} ({time.time() - t_start:.0f}s)")

    if args.publish:
        dest = Path(args.publish)
        if not dest.is_absolute():  # relative to the source tree, not ctest's working directory
            dest = HERE.parent / dest
        dest.mkdir(parents=True, exist_ok=True)
        for f in list(out.glob("*.svg")) + [out / "summary.md", out / "targets.csv", out / "machine.json"]:
            if f.exists():
                shutil.copy2(f, dest / f.name)
        log(f"published SVGs and summary.md to {dest}")

    if failures:
        log("FAILED sections: " + "; ".join(failures))
        return 1
    if env_flag("TETHER_BENCH_STRICT") and any(t["result"] in ("MISS", "FAIL") for t in targets):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
