using System.Globalization;
using Bpfilter.Bench;

// The benchmark suite behind 'build.ps1 Bench' (root; not part of Test): the data plane (live frames from a generator
// namespace into a receiver namespace, every variant, every rule count), the per-packet program cost by
// BPF_PROG_TEST_RUN, optimized and naive, and the control plane (install, change one rule, add one set member).
// Writes results.csv, results.md, chart.png and machine.md into the folder given as the first argument.
// BPFILTER_BENCH_QUICK=1 runs one short round at fewer rule counts; a second argument "data-plane", "program-cost" or
// "control-plane" runs one part only.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
if (args.Length < 1)
{
    Console.Error.WriteLine("usage: Bpfilter.Bench <results folder> [data-plane|program-cost|control-plane] [--import-ms a,b,c]");
    return 2;
}
var folder = args[0];
var part = args.Length > 1 && !args[1].StartsWith("--") ? args[1] : "all";
var importArg = Array.IndexOf(args, "--import-ms");
var importMs = importArg >= 0 ? args[importArg + 1].Split(',').Select(double.Parse).ToArray() : [];
var settings = Environment.GetEnvironmentVariable("BPFILTER_BENCH_QUICK") is "1" or "true" ? BenchSettings.Quick : BenchSettings.Full;
// For a closer look at a few variants: BPFILTER_BENCH_VARIANTS (names or parts of names, comma-separated),
// BPFILTER_BENCH_RULES (rule counts) and BPFILTER_BENCH_ROUNDS.
if (Environment.GetEnvironmentVariable("BPFILTER_BENCH_VARIANTS") is { Length: > 0 } variants) settings = settings with { Variants = variants.Split(',') };
if (Environment.GetEnvironmentVariable("BPFILTER_BENCH_RULES") is { Length: > 0 } counts) settings = settings with { RuleCounts = counts.Split(',').Select(int.Parse).ToArray() };
if (Environment.GetEnvironmentVariable("BPFILTER_BENCH_ROUNDS") is { Length: > 0 } rounds) settings = settings with { Rounds = int.Parse(rounds) };
Directory.CreateDirectory(folder);
var started = DateTimeOffset.Now;
void Log(string line) => Console.WriteLine($"[{(DateTimeOffset.Now - started).TotalSeconds,6:0}s] {line}");
Log($"{(settings.CostRepeat == BenchSettings.Quick.CostRepeat ? "quick" : "full")} run: {settings.Rounds} round(s) of {settings.Duration.TotalSeconds} s, rules {string.Join(", ", settings.RuleCounts)}");

var results = new BenchResults(settings, importMs);
if (part is "all" or "program-cost") results.ProgramCost.AddRange(ProgramCost.Run(settings, Log));
if (part is "all" or "control-plane") results.ControlPlane.AddRange(ControlPlane.Run(settings, Log));
if (part is "all" or "data-plane") results.DataPlane.AddRange(DataPlane.Run(settings, Log));
Report.Write(folder, results, started);
Log($"results in {folder}");
return 0;

/// <summary>How much to measure: the full suite keeps to about a quarter of an hour on the 2-core development VM.</summary>
internal sealed record BenchSettings(int Rounds, TimeSpan Duration, int[] RuleCounts, int LargestRuleCount, int CostRuns, uint CostRepeat, int ControlRuns)
{
    /// <summary>The data-plane variants to measure (by part of their name); null for all.</summary>
    public string[]? Variants { get; init; }

    public static readonly BenchSettings Full = new(3, TimeSpan.FromSeconds(2), [1, 10, 100, 1_000, 10_000], 100_000, 5, 1_000_000, 3);
    public static readonly BenchSettings Quick = new(1, TimeSpan.FromSeconds(0.5), [1, 100, 10_000], 100_000, 3, 200_000, 1);
}

/// <summary>Everything one run measured.</summary>
internal sealed record BenchResults(BenchSettings Settings, double[] ImportMilliseconds)
{
    public List<DataPlaneRun> DataPlane { get; } = new();
    public List<ProgramCostRun> ProgramCost { get; } = new();
    public List<ControlPlaneRun> ControlPlane { get; } = new();
}
