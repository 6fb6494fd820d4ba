"""Helpers of scripts/bench.sh that turn measurements into docs/benchmarks.md sections.

usage:
  bench_doc.py table TABLE.txt [--ref NAME] [--tls-ref NAME]
      Reads a table printed by the peer harness's measure.py and prints it as a Markdown table.
      Its ratios are to the row named --ref, the nginx plain proxy of the same run. Rows whose
      name starts with "TLS " are compared with --tls-ref instead when it is given.
  bench_doc.py compare NAME_A NAME_B TABLE.txt [TABLE.txt ...]
      Prints the mean req/s of the rows whose names start with NAME_A and NAME_B, over every
      table given (one per round), B's throughput difference to A in percent, and the largest
      bg of those rows.
  bench_doc.py median OUT TABLE.txt [TABLE.txt ...]
      Combines the tables of several rounds over the same targets into one table in
      measure.py's format, written to OUT: per row the median req/s, p50 and p99, the median
      up/req and idle RSS, the sum of errors, and the largest peak RSS and bg. A row is BAD
      when it was BAD in any round. Ratios are to the first row's medians.
  bench_doc.py rounds TABLE.txt [TABLE.txt ...] --ref NAME [--tls-ref NAME]
      Prints a Markdown table of each row's req/s ratio to the reference row of the same
      round, one column per round, and the median of those ratios.
  bench_doc.py multiple NAME_A NAME_B TABLE.txt [TABLE.txt ...]
      Prints a Markdown table of row NAME_A's req/s as a multiple of row NAME_B's, one column
      per table (round), and the median of those multiples.
  bench_doc.py section DOC NAME FILE
      Replaces the text between <!-- bench:NAME:begin --> and <!-- bench:NAME:end --> in DOC
      with the contents of FILE; appends both markers and the text when DOC has none.
  bench_doc.py redis BEFORE AFTER
      Prints the number of Redis commands between two INFO commandstats outputs, leaving out
      INFO itself.
"""
import re
import sys

COLUMNS = ("rps", "p50", "p99", "rps_x", "p50_x", "p99_x", "up", "err", "rss", "bg", "ok")


def read_table(path):
    rows = []
    for line in open(path):
        parts = line.split()
        if len(parts) < len(COLUMNS) + 1 or parts[0] == "target" or set(line.strip()) == {"-"}:
            continue
        fields = dict(zip(COLUMNS, parts[-len(COLUMNS):]))
        row = {"name": " ".join(parts[: -len(COLUMNS)]), "ok": fields["ok"]}
        for key in ("rps", "p50", "p99", "up", "bg"):
            row[key] = float(fields[key])
        row["err"] = int(fields["err"])
        idle, peak = fields["rss"].split(">")
        row["rss_idle"], row["rss_peak"] = float(idle), float(peak)
        rows.append(row)
    return rows


def ratio(value, reference):
    return f"{value / reference:.2f}" if reference else "-"


def table(args):
    path, ref_name, tls_ref_name = args[0], None, None
    rest = args[1:]
    while rest:
        flag, value, rest = rest[0], rest[1], rest[2:]
        if flag == "--ref":
            ref_name = value
        elif flag == "--tls-ref":
            tls_ref_name = value
        else:
            sys.exit(f"bench_doc.py: unknown option {flag}")
    rows = read_table(path)
    by_name = {r["name"]: r for r in rows}
    if ref_name and ref_name not in by_name:
        sys.exit(f"bench_doc.py: no row named \"{ref_name}\" in {path}")
    print("| target | req/s | p50 ms | p99 ms | req/s vs nginx | p99 vs nginx | RSS MB idle / peak "
          "| peak RSS vs nginx | up/req | err | bg | ok |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        ref = by_name.get(ref_name)
        if r["name"].startswith("TLS ") and tls_ref_name in by_name:
            ref = by_name[tls_ref_name]
        rps_x = ratio(r["rps"], ref["rps"]) if ref else "-"
        p99_x = ratio(r["p99"], ref["p99"]) if ref else "-"
        rss_x = ratio(r["rss_peak"], ref["rss_peak"]) if ref else "-"
        print(f"| {r['name']} | {r['rps']:,.0f} | {r['p50']:.3f} | {r['p99']:.3f} | {rps_x} | {p99_x} "
              f"| {r['rss_idle']:.1f} / {r['rss_peak']:.1f} | {rss_x} | {r['up']:.2f} | {r['err']} "
              f"| {r['bg']:.2f} | {r['ok']} |")


def compare(args):
    rows = [row for path in args[2:] for row in read_table(path)]

    def matching(prefix):
        found = [r for r in rows if r["name"].startswith(prefix)]
        if not found:
            sys.exit(f"bench_doc.py: no row starts with \"{prefix}\"")
        return found

    rows_a, rows_b = matching(args[0]), matching(args[1])
    a = sum(r["rps"] for r in rows_a) / len(rows_a)
    b = sum(r["rps"] for r in rows_b) / len(rows_b)
    bg = max(r["bg"] for r in rows_a + rows_b)
    print(f"{a:.0f} {b:.0f} {(b - a) / a * 100:+.1f} {bg:.2f}")


def median_of(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def read_rounds(paths):
    """Reads the tables of several rounds and checks that they list the same targets in order."""
    rounds = [read_table(path) for path in paths]
    names = [r["name"] for r in rounds[0]]
    for path, rows in zip(paths, rounds):
        if [r["name"] for r in rows] != names:
            sys.exit(f"bench_doc.py: {path} does not list the targets of {paths[0]} in the same order")
    return names, rounds


def median(args):
    out, paths = args[0], args[1:]
    names, rounds = read_rounds(paths)
    combined = []
    for index, name in enumerate(names):
        rows = [rows[index] for rows in rounds]
        combined.append({
            "name": name,
            "rps": median_of(r["rps"] for r in rows),
            "p50": median_of(r["p50"] for r in rows),
            "p99": median_of(r["p99"] for r in rows),
            "up": median_of(r["up"] for r in rows),
            "err": sum(r["err"] for r in rows),
            "rss_idle": median_of(r["rss_idle"] for r in rows),
            "rss_peak": max(r["rss_peak"] for r in rows),
            "bg": max(r["bg"] for r in rows),
            "ok": "yes" if all(r["ok"] == "yes" for r in rows) else "BAD",
        })
    base = combined[0]
    width = max(len(name) for name in names)
    head = (f"{'target':<{width}} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'rps/x':>6} "
            f"{'p50/x':>6} {'p99/x':>6} {'up/req':>6} {'err':>5} {'RSS MB idle>peak':>17} {'bg':>4}  ok")
    lines = [head, "-" * len(head)]
    for r in combined:
        lines.append(
            f"{r['name']:<{width}} {r['rps']:>9.0f} {r['p50']:>7.3f} {r['p99']:>7.3f} "
            f"{r['rps'] / base['rps']:>6.2f} {r['p50'] / base['p50']:>6.2f} {r['p99'] / base['p99']:>6.2f} "
            f"{r['up']:>6.2f} {r['err']:>5} {r['rss_idle']:>8.1f}>{r['rss_peak']:<8.1f} {r['bg']:>4.2f}  {r['ok']}")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


def rounds_table(args):
    paths, ref_name, tls_ref_name = [], None, None
    while args:
        if args[0] in ("--ref", "--tls-ref"):
            if args[0] == "--ref":
                ref_name = args[1]
            else:
                tls_ref_name = args[1]
            args = args[2:]
        else:
            paths.append(args[0])
            args = args[1:]
    if not paths or not ref_name:
        sys.exit("bench_doc.py: rounds needs at least one table and --ref")
    names, rounds = read_rounds(paths)
    if ref_name not in names:
        sys.exit(f"bench_doc.py: no row named \"{ref_name}\" in {paths[0]}")
    header = " | ".join(f"round {n}" for n in range(1, len(paths) + 1))
    print(f"| target (req/s vs nginx) | {header} | median |")
    print("|---|" + "---:|" * (len(paths) + 1))
    for index, name in enumerate(names):
        reference = tls_ref_name if name.startswith("TLS ") and tls_ref_name in names else ref_name
        if name == reference:
            continue
        ratios = []
        for rows in rounds:
            by_name = {r["name"]: r for r in rows}
            ratios.append(rows[index]["rps"] / by_name[reference]["rps"])
        cells = " | ".join(f"{value:.2f}" for value in ratios)
        print(f"| {name} | {cells} | {median_of(ratios):.2f} |")


def multiple(args):
    name_a, name_b, paths = args[0], args[1], args[2:]
    if not paths:
        sys.exit("bench_doc.py: multiple needs two row names and at least one table")
    names, rounds = read_rounds(paths)
    for name in (name_a, name_b):
        if name not in names:
            sys.exit(f"bench_doc.py: no row named \"{name}\" in {paths[0]}")
    values = []
    for rows in rounds:
        by_name = {r["name"]: r for r in rows}
        values.append(by_name[name_a]["rps"] / by_name[name_b]["rps"])
    header = " | ".join(f"round {n}" for n in range(1, len(paths) + 1))
    print(f"| req/s of \"{name_a}\" / \"{name_b}\" | {header} | median |")
    print("|---|" + "---:|" * (len(paths) + 1))
    cells = " | ".join(f"{value:.2f}x" for value in values)
    print(f"| multiple | {cells} | {median_of(values):.2f}x |")


def section(args):
    doc, name, source = args
    text = open(doc).read()
    body = open(source).read().rstrip("\n")
    begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
    block = f"{begin}\n{body}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    open(doc, "w").write(text)


def redis(args):
    def calls(path):
        total = 0
        for line in open(path):
            m = re.match(r"cmdstat_([a-z|_-]+):calls=(\d+)", line.strip())
            if m and m.group(1) != "info":
                total += int(m.group(2))
        return total

    print(calls(args[1]) - calls(args[0]))


if __name__ == "__main__":
    commands = {"table": table, "compare": compare, "median": median, "rounds": rounds_table,
                "multiple": multiple, "section": section, "redis": redis}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](sys.argv[2:])
