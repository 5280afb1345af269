using System.Globalization;
using System.Text;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Bench;

/// <summary>Writes a run's results folder: results.csv (every measurement), results.md (tables and the issue's targets), chart.png, machine.md.</summary>
internal static class Report
{
    public static void Write(string folder, BenchResults results, DateTimeOffset started)
    {
        File.WriteAllText(Path.Combine(folder, "results.csv"), Csv(results));
        File.WriteAllText(Path.Combine(folder, "results.md"), Markdown(results, started));
        File.WriteAllText(Path.Combine(folder, "machine.md"), Machine(started));
        if (results.DataPlane.Count > 0) File.WriteAllBytes(Path.Combine(folder, "chart.png"), Chart(results));
    }

    private static string Csv(BenchResults results)
    {
        var csv = new StringBuilder("section,name,rules,round,value,unit,valid,sent,delivered,dropped,note\n");
        string Q(string text) => text.Contains(',') || text.Contains('"') ? "\"" + text.Replace("\"", "\"\"") + "\"" : text;
        for (int i = 0; i < results.ImportMilliseconds.Length; i++)
            csv.Append($"import,Import-Module,0,{i + 1},{results.ImportMilliseconds[i]:0.#},ms,true,,,,\n");
        foreach (var r in results.DataPlane)
            csv.Append($"data-plane,{Q(r.Variant)},{r.Rules},{r.Round},{r.Mpps:0.####},Mpps,{(r.Valid ? "true" : "false")},{r.Sent},{r.Delivered},{r.Dropped},{Q(r.Note)}\n");
        foreach (var r in results.ProgramCost)
        {
            var name = Q(CostName(r));
            if (r.Nanoseconds.Length == 0) csv.Append($"program-cost,{name},{r.Rules},,,ns/packet,false,,,,{Q(r.Note)}\n");
            for (int i = 0; i < r.Nanoseconds.Length; i++) csv.Append($"program-cost,{name},{r.Rules},{i + 1},{r.Nanoseconds[i]:0},ns/packet,true,,,,\n");
        }
        foreach (var r in results.ControlPlane)
        {
            var name = Q($"{r.Operation} {r.Tool}");
            if (r.Milliseconds.Length == 0) csv.Append($"control-plane,{name},{r.Rules},,,ms,false,,,,{Q(r.Note)}\n");
            for (int i = 0; i < r.Milliseconds.Length; i++) csv.Append($"control-plane,{name},{r.Rules},{i + 1},{r.Milliseconds[i]:0.###},ms,true,,,,\n");
        }
        return csv.ToString();
    }

    private static string CostName(ProgramCostRun r) =>
        (r.Shape == ProgramCost.BareShape ? r.Shape : $"{r.Shape} {(r.Optimized ? "optimized" : "naive")}") + (r.Hook == Hook.Xdp ? "" : $" {r.Hook.ToName()}");

    private static double Median(IEnumerable<double> values) => ProgramCost.Median(values.ToList());

    /// <summary>Median, min and max Mpps of a variant's valid rounds at one rule count; null when no round was valid.</summary>
    private static (double Median, double Min, double Max, int Invalid)? Rate(BenchResults results, string variant, int rules)
    {
        var runs = results.DataPlane.Where(r => r.Variant == variant && r.Rules == rules).ToList();
        var valid = runs.Where(r => r.Valid).Select(r => r.Mpps).ToList();
        if (valid.Count == 0) return null;
        return (Median(valid), valid.Min(), valid.Max(), runs.Count - valid.Count);
    }

    private static string RateCell(BenchResults results, string variant, int rules, int ratioRules)
    {
        var rate = Rate(results, variant, rules);
        if (rate is null)
        {
            var note = results.DataPlane.FirstOrDefault(r => r.Variant == variant && r.Rules == rules)?.Note ?? "";
            return "invalid" + (note.Length > 0 ? $" ({Shorten(note)})" : "");
        }
        var (median, min, max, invalid) = rate.Value;
        var cell = $"{F(median)} ({F(min)}–{F(max)})";
        if (Rate(results, "iptables-legacy", ratioRules) is { } legacy) cell += $" {median / legacy.Median:0.##}x";
        if (invalid > 0) cell += $", {invalid} round(s) invalid";
        return cell;
    }

    /// <summary>A note short enough for a table cell: of a verifier refusal, its last line (the reason).</summary>
    private static string Shorten(string text)
    {
        if (text.LastIndexOf(" / ", StringComparison.Ordinal) is int last and >= 0) text = text[(last + 3)..];
        return (text.Length > 70 ? text[..70] + "…" : text).Replace("|", "/");
    }

    private static string F(double value) => value >= 10 ? value.ToString("0.0") : value >= 1 ? value.ToString("0.00") : value.ToString("0.###");

    private static string N(int n) => n.ToString("#,0", CultureInfo.InvariantCulture);

    private static string Markdown(BenchResults results, DateTimeOffset started)
    {
        var s = results.Settings;
        var md = new StringBuilder();
        md.Append($"# Bpfilter benchmark, {started:yyyy-MM-dd HH:mm}\n\n");
        md.Append($"Made by `dotnet pwsh ./build.ps1 Bench`{(s.CostRepeat == BenchSettings.Quick.CostRepeat ? " with BPFILTER_BENCH_QUICK=1" : "")}; the machine is in machine.md, every measurement in results.csv.\n\n");
        if (results.DataPlane.Count > 0)
        {
            md.Append($"## Data plane\n64-byte UDP frames from a generator namespace into a receiver namespace over veth, injected with BPF_PROG_TEST_RUN and live frames; the matching rule last. Mpps: median of {s.Rounds} round(s) of {s.Duration.TotalSeconds} s (min–max), then the ratio to iptables-legacy with the same rule count. A round counts only when the variant's own drop counter equals the frames delivered into the receiver's ring.\n\n");
            md.Append("| variant | " + string.Join(" | ", s.RuleCounts.Select(n => N(n) + (n == 1 ? " rule" : " rules"))) + " |\n");
            md.Append("|---|" + string.Concat(s.RuleCounts.Select(_ => "---:|")) + "\n");
            foreach (var v in Variant.All.Where(v => v.UsesRules && results.DataPlane.Any(r => r.Variant == v.Name)))
                md.Append($"| {v.Name} | " + string.Join(" | ", s.RuleCounts.Select(n => RateCell(results, v.Name, n, n))) + " |\n");
            md.Append("\nReferences, with no rules (the ratio is to iptables-legacy with one rule):\n\n| reference | Mpps |\n|---|---:|\n");
            foreach (var v in Variant.All.Where(v => !v.UsesRules && results.DataPlane.Any(r => r.Variant == v.Name))) md.Append($"| {v.Name} | {RateCell(results, v.Name, 0, 1)} |\n");
            md.Append('\n');
        }
        if (results.ProgramCost.Count > 0)
        {
            var counts = results.ProgramCost.Where(r => r.Shape != ProgramCost.BareShape && r.Hook == Hook.Xdp).Select(r => r.Rules).Distinct().Order().ToList();
            var names = results.ProgramCost.Where(r => r.Shape != ProgramCost.BareShape && r.Hook == Hook.Xdp).Select(CostName).Distinct().ToList();
            md.Append($"## Program cost\nBPF_PROG_TEST_RUN's average ns per packet over {s.CostRepeat:#,0} runs of the frame the last rule drops, at XDP; median of {s.CostRuns} (min–max). \"pairs\": rules differ in source host and port; \"mixed\": four rule shapes in turn (prefixes, port ranges, negation, ICMP). A bare XDP_DROP program takes {Cost(results, ProgramCost.BareShape, 0)} ns here: the harness's own share. The optimizer classifies runs of 64 rules or more (below that, testing rules one by one costs no more).\n\n");
            md.Append("| rules | " + string.Join(" | ", names) + " |\n|---:|" + string.Concat(names.Select(_ => "---:|")) + "\n");
            foreach (var n in counts) md.Append($"| {N(n)} | " + string.Join(" | ", names.Select(name => Cost(results, name, n))) + " |\n");
            md.Append("\nOne rule against a bare drop program at each hook (the difference is one rule's cost there, parser and counter included):\n\n| hook | bare drop | one rule |\n|---|---:|---:|\n");
            foreach (var hook in ProgramCost.Hooks)
            {
                var suffix = hook == Hook.Xdp ? "" : $" {hook.ToName()}";
                md.Append($"| {hook.ToName()} | {Cost(results, ProgramCost.BareShape + suffix, 0)} | {Cost(results, "pairs optimized" + suffix, 1)} |\n");
            }
            md.Append('\n');
        }
        if (results.ControlPlane.Count > 0)
        {
            var counts = results.ControlPlane.Select(r => r.Rules).Distinct().Order().ToList();
            md.Append($"## Control plane\nMilliseconds, median of {s.ControlRuns} (min–max): install N rules (Bpfilter's publish at native XDP; iptables-restore and nft -f as processes), change one of them (a republish; iptables -R; nft replace rule), add one member to a set of N (DeploymentSets.Add, as Add-BpfSetMember; nft add element).\n\n");
            md.Append("| operation | tool | " + string.Join(" | ", counts.Select(N)) + " |\n|---|---|" + string.Concat(counts.Select(_ => "---:|")) + "\n");
            foreach (var (operation, tool) in results.ControlPlane.Select(r => (r.Operation, r.Tool)).Distinct())
                md.Append($"| {operation} | {tool} | " + string.Join(" | ", counts.Select(n => Milliseconds(results, operation, tool, n))) + " |\n");
            md.Append('\n');
        }
        if (results.ImportMilliseconds.Length > 0)
            md.Append($"Import-Module in a fresh pwsh: {Median(results.ImportMilliseconds):0} ms (median of {results.ImportMilliseconds.Length}, {results.ImportMilliseconds.Min():0}–{results.ImportMilliseconds.Max():0}).\n\n");
        md.Append("## Against the targets of issue 6\n");
        foreach (var line in Targets(results)) md.Append($"- {line}\n");
        return md.ToString();
    }

    private static string Cost(BenchResults results, string name, int rules)
    {
        var run = results.ProgramCost.FirstOrDefault(r => CostName(r) == name && r.Rules == rules);
        if (run is null) return "";
        if (run.Nanoseconds.Length == 0) return $"refused ({Shorten(run.Note)})";
        return $"{Median(run.Nanoseconds):0} ({run.Nanoseconds.Min():0}–{run.Nanoseconds.Max():0})";
    }

    private static double? CostMedian(BenchResults results, string name, int rules) =>
        results.ProgramCost.FirstOrDefault(r => CostName(r) == name && r.Rules == rules && r.Nanoseconds.Length > 0) is { } run ? Median(run.Nanoseconds) : null;

    private static string Milliseconds(BenchResults results, string operation, string tool, int rules)
    {
        var run = results.ControlPlane.FirstOrDefault(r => r.Operation == operation && r.Tool == tool && r.Rules == rules);
        if (run is null) return "";
        if (run.Milliseconds.Length == 0) return $"failed ({Shorten(run.Note)})";
        return $"{Median(run.Milliseconds):0.##} ({run.Milliseconds.Min():0.##}–{run.Milliseconds.Max():0.##})";
    }

    private static double? MsMedian(BenchResults results, string operation, string tool, int rules) =>
        results.ControlPlane.FirstOrDefault(r => r.Operation == operation && r.Tool == tool && r.Rules == rules && r.Milliseconds.Length > 0) is { } run
            ? Median(run.Milliseconds) : null;

    /// <summary>
    /// The median over rounds of a ratio taken within each round (both rates valid): on a machine whose speed drifts
    /// between rounds (other work on the same cores), a ratio of the same round is fairer than a ratio of medians.
    /// </summary>
    private static double? Paired(BenchResults results, string variant, int rules, Func<int, double?> reference)
    {
        var ratios = results.DataPlane.Where(r => r.Variant == variant && r.Rules == rules && r.Valid)
            .Select(r => reference(r.Round) is { } b && b > 0 ? r.Mpps / b : (double?)null).OfType<double>().ToList();
        return ratios.Count == 0 ? null : Median(ratios);
    }

    private static double? RoundRate(BenchResults results, string variant, int rules, int round) =>
        results.DataPlane.FirstOrDefault(r => r.Variant == variant && r.Rules == rules && r.Round == round && r.Valid)?.Mpps;

    /// <summary>Each target of issue 6 with the ratio this run measured, met or missed (or why it could not be judged).</summary>
    private static IEnumerable<string> Targets(BenchResults results)
    {
        int most = results.Settings.RuleCounts[^1];
        double? R(string variant, int rules) => Rate(results, variant, rules)?.Median;
        double? P(string variant, int rules, string reference, int referenceRules) =>
            Paired(results, variant, rules, round => RoundRate(results, reference, referenceRules, round));
        string Judge(string what, double? value, double bound, bool atLeast, string unit = "x") =>
            value is not { } v ? $"{what}: not measured (a row is invalid or missing)"
            : $"{what}: {v:0.###}{unit} (target {(atLeast ? "≥" : "≤")} {bound}{unit}) — {((atLeast ? v >= bound : v <= bound) ? "met" : "missed")}";
        double? Ratio(double? a, double? b) => a is { } x && b is { } y && y > 0 ? x / y : null;

        yield return "data-plane ratios below are medians of the ratios within each round (medians of the medians in brackets)";
        string Both(double? paired, double? ofMedians) => ofMedians is { } m ? $" [{m:0.###}x]" : "";
        foreach (var (what, variant, n, reference, m, bound) in new[]
        {
            ("one drop rule at native XDP against the always-drop XDP program", "bpfilter xdp native", 1, "xdp always-drop", 0, 0.95),
            ($"{N(most)} pairs at native XDP against our own one-rule rate", "bpfilter xdp native", most, "bpfilter xdp native", 1, 0.8),
            ($"{N(most)} pairs at native XDP against nftables with a set", "bpfilter xdp native", most, "nftables set", most, 3.5),
            ($"{N(most)} pairs at native XDP against iptables-legacy", "bpfilter xdp native", most, "iptables-legacy", most, 100),
        })
        {
            var paired = P(variant, n, reference, m);
            yield return Judge(what, paired, bound, true) + Both(paired, Ratio(R(variant, n), R(reference, m)));
        }
        foreach (var shape in new[] { "pairs", "mixed" })
            yield return Judge($"BPF_PROG_TEST_RUN cost of {N(most)} {shape} rules against one rule, optimized",
                Ratio(CostMedian(results, $"{shape} optimized", most), CostMedian(results, $"{shape} optimized", 1)), 3, false);
        foreach (var (variant, reference, hook) in new[] { ("bpfilter tc-ingress", "tc-ingress always-drop", Hook.TcIngress), ("bpfilter nf-input", "nf-input always-drop", Hook.NfInput) })
        {
            var suffix = $" {hook.ToName()}";
            double? oneRule = CostMedian(results, "pairs optimized" + suffix, 1) is { } c1 && CostMedian(results, ProgramCost.BareShape + suffix, 0) is { } bare ? Math.Max(0, c1 - bare) : null;
            double? Expected(double? floor) => floor is { } f && oneRule is { } c ? 1 / (1 / f + c / 1000) : null;
            foreach (var n in results.Settings.RuleCounts)
            {
                var paired = Paired(results, variant, n, round => Expected(RoundRate(results, reference, 0, round)));
                yield return Judge($"{variant}, {N(n)} rules, against {reference} plus one rule's cost ({(oneRule is { } c2 ? $"{c2:0} ns" : "?")})",
                    paired, 0.9, true) + Both(paired, Ratio(R(variant, n), Expected(R(reference, 0))));
            }
        }
        yield return Judge($"publishing {N(most)} rules against iptables-legacy-restore of the same rules",
            Ratio(MsMedian(results, "install", "bpfilter", most), MsMedian(results, "install", "iptables-legacy", most)), 1, false);
        yield return Judge($"adding one member to a set of {N(most)}", MsMedian(results, "add-set-member", "bpfilter", most), 1, false, " ms");
    }

    private static byte[] Chart(BenchResults results)
    {
        var counts = results.Settings.RuleCounts;
        var series = new List<ChartSeries>();
        foreach (var v in Variant.All.Where(v => v.UsesRules))
            series.Add(new ChartSeries(v.Name, counts.Select(n => (n, Rate(results, v.Name, n))).Where(p => p.Item2 is not null).Select(p => ((double)p.n, p.Item2!.Value.Median)).ToList()));
        foreach (var v in Variant.All.Where(v => !v.UsesRules))
            if (Rate(results, v.Name, 0) is { } rate) series.Add(new ChartSeries(v.Name, [(1, rate.Median)], Reference: true));
        double max = series.SelectMany(s => s.Points).Select(p => p.Y).DefaultIfEmpty(10).Max();
        double min = series.SelectMany(s => s.Points).Select(p => p.Y).DefaultIfEmpty(0.01).Min();
        var y = (Math.Pow(10, Math.Floor(Math.Log10(min))), Math.Pow(10, Math.Ceiling(Math.Log10(max))));
        return PngChart.Render("64-BYTE UDP OVER VETH, MATCHING RULE LAST (MEDIANS)", "RULES", "MPPS", (1, counts[^1]), y, series);
    }

    private static string Machine(DateTimeOffset started)
    {
        string Read(string path) => File.Exists(path) ? File.ReadAllText(path) : "";
        var cpu = Read("/proc/cpuinfo").Split('\n').FirstOrDefault(l => l.StartsWith("model name"))?.Split(':', 2)[1].Trim() ?? "unknown";
        var memory = Read("/proc/meminfo").Split('\n').FirstOrDefault(l => l.StartsWith("MemTotal"))?.Split(':', 2)[1].Trim() ?? "unknown";
        string Version(string command, params string[] args)
        {
            try { return Shell.TryRun(command, args).Output.Split('\n')[0].Trim(); }
            catch (Exception) { return "not installed"; }
        }
        return $"""
            # Machine
            - measured: {started:o}
            - kernel: {Read("/proc/sys/kernel/osrelease").Trim()}
            - cpu: {Environment.ProcessorCount} x {cpu}
            - memory: {memory}
            - load average at the end: {Read("/proc/loadavg").Trim()}
            - .NET: {Environment.Version}
            - iptables: {Version("iptables-legacy", "--version")}; nft: {Version("nft", "--version")}
            - BPF JIT: {(Read("/proc/sys/net/core/bpf_jit_enable").Trim() == "1" ? "on" : "off")}

            """;
    }
}
