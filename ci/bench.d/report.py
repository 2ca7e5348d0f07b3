"""The Markdown report of ``ci/bench``: one table per server group.

Every figure is the median of the runs. "ok/s" counts only answers below 400
(for a batch: batches whose every sub-request was below 400). The ratio is
ours / Kinto for throughput (higher is better) and for p99 (lower is better).
"""

import os
import statistics

import profiling
import soak
from scenarios import SCENARIOS
from servers import CONFIGS, INDEXERS, REFERENCES

#: Issue 12: an as-shipped write may cost at most this much of the same
#: server's like-for-like speed (like-for-like ok/s ÷ as-shipped ok/s).
SHIPPED_TARGETS = {"memory": 1.5, "postgresql": 1.25, "redis": 1.25}
WRITES = ("create", "patch", "batch")
#: Issue 12: our GET reaches at least this share of the floor's.
FLOOR_TARGET = 0.5
#: Issue 12: reads and search stay within this slowdown from the first size to the last.
FLAT_TARGET = 1.5


def _median(runs, field):
    return statistics.median(r[field] for r in runs)


def _summary(runs):
    return {
        "ok_rate": _median(runs, "ok_rate"),
        "records_rate": _median(runs, "records_rate"),
        "p50_ms": _median(runs, "p50_ms"),
        "p99_ms": _median(runs, "p99_ms"),
        "non_ok": max(r["non_ok"] for r in runs),
        "statuses": _statuses(runs),
        "subfailed": sum(r["subfailed"] for r in runs),
        "lost": sum(r.get("lost", 0) for r in runs),
    }


def _statuses(runs):
    total = {}
    for r in runs:
        for code, n in r["statuses"].items():
            total[code] = total.get(code, 0) + n
    return total


def _rate(key, s):
    if key == "batch":
        return f"{s['ok_rate']:.1f} ({s['records_rate']:.0f} rec/s)"
    return f"{s['ok_rate']:.1f}"


def _throughput(key, s):
    return s["records_rate"] if key == "batch" else s["ok_rate"]


def _ms(value):
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _group_table(name, cfg, results):
    servers = [s for s in CONFIGS[name]
               if any(label == s.label for label, _, _ in results)]
    if not servers:
        return []
    ref = _reference(name)
    lines = [
        f"### {name}: " + ", ".join(f"{s.label} ({s.workers}w×{s.threads}t)" for s in servers),
        "",
        "| scenario | records | server | ok/s | p50 ms | p99 ms | non-ok | ×Kinto ok/s | p99 ÷ Kinto |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    sizes = sorted({size for _, _, size in results})
    for size in sizes:
        for key, scenario in SCENARIOS.items():
            base = results.get((ref.label, key, size)) if ref else None
            base = _summary(base) if base else None
            for server in servers:
                runs = results.get((server.label, key, size))
                if not runs:
                    continue
                s = _summary(runs)
                ratio = p99 = "—"
                if base and server is not ref:
                    if _throughput(key, base) > 0:
                        ratio = f"{_throughput(key, s) / _throughput(key, base):.2f}×"
                    if base["p99_ms"] > 0:
                        p99 = f"{s['p99_ms'] / base['p99_ms']:.2f}"
                non_ok = f"{s['non_ok']:.1%}"
                bad = {c: n for c, n in s["statuses"].items() if int(c) >= 400}
                if bad:
                    non_ok += " " + ",".join(f"{c}×{n}" for c, n in sorted(bad.items()))
                if s["subfailed"]:
                    non_ok += f" ({s['subfailed']} sub-requests failed)"
                if s["lost"]:
                    non_ok += f" **{s['lost']} acknowledged creates lost**"
                lines.append(
                    f"| {scenario.title} | {size} | {server.label} | {_rate(key, s)} | "
                    f"{_ms(s['p50_ms'])} | {_ms(s['p99_ms'])} | {non_ok} | {ratio} | {p99} |")
    lines.append("")
    return lines


def _reference(name):
    """The Kinto server a group is compared with (maybe another group's)."""
    ref = next((s for s in CONFIGS[name] if s.is_reference), None)
    if ref is None and name in REFERENCES:
        ref = next((s for servers in CONFIGS.values() for s in servers
                    if s.label == REFERENCES[name]), None)
    return ref


def _role(name, role):
    return next((s for s in CONFIGS[name] if s.role == role), None)


def _get(results, server, key, size):
    runs = results.get((server.label, key, size)) if server else None
    return _summary(runs) if runs else None


def _shipped_vs_core(name, results):
    """As shipped beside like for like: ×Kinto for both, the cost of search and the log."""
    shipped, core = _role(name, "shipped"), _role(name, "core")
    ref = _reference(name)
    target = SHIPPED_TARGETS.get(name)
    sizes = sorted({size for label, _, size in results if shipped and label == shipped.label})
    if not shipped or not core or not sizes:
        return []
    lines = [f"### {name}: as shipped (search on, {INDEXERS.get(name)} indexer, request log on)"
             f" vs like for like (both off)", "",
             f"Cost = like-for-like ok/s ÷ as-shipped ok/s; target for writes ≤ {target}×.", "",
             "| scenario | records | as shipped ok/s | ×Kinto | like for like ok/s | ×Kinto "
             "| cost | target |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for size in sizes:
        for key, scenario in SCENARIOS.items():
            a, b = _get(results, shipped, key, size), _get(results, core, key, size)
            if not a and not b:
                continue
            k = _get(results, ref, key, size)

            def cell(x):
                if not x:
                    return "—", "—"
                rate = _rate(key, x)
                if k and _throughput(key, k) > 0:
                    return rate, f"{_throughput(key, x) / _throughput(key, k):.2f}×"
                return rate, "—"
            (ar, ak), (br, bk) = cell(a), cell(b)
            cost = verdict = "—"
            if a and b and _throughput(key, a) > 0:
                ratio = _throughput(key, b) / _throughput(key, a)
                cost = f"{ratio:.2f}×"
                if key in WRITES and target:
                    verdict = "met" if ratio <= target else f"**missed** (> {target}×)"
            lines.append(f"| {scenario.title} | {size} | {ar} | {ak} | {br} | {bk} | {cost} | {verdict} |")
    return lines + [""]


def _floor(name, results):
    """Our GET as a share of the bare Pyramid + psycopg view's."""
    floor = _role(name, "floor")
    if not floor:
        return []
    sizes = sorted({size for label, _, size in results if label == floor.label})
    if not sizes:
        return []
    lines = [f"### {name}: GET against the floor (a bare Pyramid view, one primary-key SELECT,"
             f" psycopg pool, orjson; aim ≥ {FLOOR_TARGET:.0%})", "",
             "| records | floor ok/s | floor p50 ms | like for like | share | as shipped | share |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for size in sizes:
        f = _get(results, floor, "get", size)
        if not f:
            continue
        cells = []
        for role in ("core", "shipped"):
            x = _get(results, _role(name, role), "get", size)
            cells += [f"{x['ok_rate']:.1f}", f"{x['ok_rate'] / f['ok_rate']:.0%}"] if x and f["ok_rate"] \
                else ["—", "—"]
        lines.append(f"| {size} | {f['ok_rate']:.1f} | {_ms(f['p50_ms'])} | " + " | ".join(cells) + " |")
    return lines + [""]


def _search(results):
    """Search p50 per server and size (the as-shipped servers only search)."""
    rows = sorted({(label, size) for label, key, size in results if key == "search"})
    if not rows:
        return []
    lines = ["### Search, portable mix: p50 per indexer and size", "",
             "| server | indexer | records | ok/s | p50 ms | p99 ms |", "|---|---|---:|---:|---:|---:|"]
    for label, size in rows:
        s = _summary(results[(label, "search", size)])
        indexer = next((x.indexer for servers in CONFIGS.values() for x in servers
                        if x.label == label), "?")
        lines.append(f"| {label} | {indexer} | {size} | {s['ok_rate']:.1f} | "
                     f"{_ms(s['p50_ms'])} | {_ms(s['p99_ms'])} |")
    return lines + [""]


def _scaling(cfg, results):
    sizes = sorted({size for _, _, size in results})
    if len(sizes) < 2:
        return []
    first = sizes[0]
    lines = [f"### Slowdown from {first} records (ok/s at {first} ÷ ok/s at N;"
             f" flat: ≤ {FLAT_TARGET}×)", "",
             "| server | scenario | " + " | ".join(str(s) for s in sizes[1:]) + " |",
             "|---|---|" + "---:|" * (len(sizes) - 1)]
    labels = []
    for label, _, _ in results:
        if label not in labels:
            labels.append(label)
    for label in labels:
        for key in cfg["scale_scenarios"]:
            base = results.get((label, key, first))
            if not base:
                continue
            cells = []
            for size in sizes[1:]:
                runs = results.get((label, key, size))
                rate = _summary(runs)["ok_rate"] if runs else 0
                cells.append(f"{_summary(base)['ok_rate'] / rate:.2f}×" if rate else "—")
            lines.append(f"| {label} | {SCENARIOS[key].title} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def render(cfg, now, load_before, results, failures, profiles, soaks=()):
    """The whole report as Markdown text."""
    lines = [
        f"## ci/bench — {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"- wrk: {cfg['connections']} connections, {cfg['threads']} threads, "
        f"{cfg['duration']} s per run, median of {cfg['runs']} run(s)"
        + (" (BENCH_QUICK: a smoke test, not a measurement)" if cfg["quick"] else ""),
        f"- machine: {os.cpu_count()} cores, load average before the run "
        f"{load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f}, "
        f"after {os.getloadavg()[0]:.2f}",
        f"- {os.environ.get('BENCH_VERSIONS', '')}",
        "- both apps under the same Granian, workers × threads as in each table's title:"
        " Kinto with `--interface wsgi` (blocking threads), ours as `cliquet serve` runs it"
        " (`--interface rsgi`, bodies read before one of its threads is taken); the request"
        " log only on our as-shipped servers (the example INI's logging, as `cliquet serve`"
        " applies it, into the server's log file), Kinto's off",
        "- ok/s counts answers below 400 only; a batch is ok when all its sub-requests are;"
        " the collection is counted before and after each create and batch run, and creates"
        " answered 2xx but missing are reported as lost",
        "- ×Kinto: ok/s (records/s for a batch) divided by Kinto's, higher is better;"
        " p99 ÷ Kinto: lower is better; records: the collection's size when the stage starts"
        " (each size on freshly started servers and empty backends; the reads and PATCH"
        " run first, then create and batch write into the same collection)",
        "",
    ]
    for name in cfg["configs"]:
        lines += _shipped_vs_core(name, results)
        lines += _floor(name, results)
    lines += _search(results)
    for name in cfg["configs"]:
        lines += _group_table(name, cfg, results)
    lines += _scaling(cfg, results)
    lines += soak.render(soaks)
    errors = [(label, key, size, r["first_error"]) for (label, key, size), runs
              in results.items() for r in runs[:1] if r.get("first_error")]
    if errors:
        lines += ["### First error answers", ""]
        lines += [f"- {label}, {SCENARIOS[key].title} at {size}: `{text[:200]}`"
                  for label, key, size, text in errors] + [""]
    if failures:
        lines += ["### Failures", ""] + [f"- {f}" for f in failures] + [""]
    for label, title, size, path in profiles:
        lines += [f"### Profile: {label}, {title}, {size} records", "",
                  profiling.summarise(path)]
    return "\n".join(lines)
