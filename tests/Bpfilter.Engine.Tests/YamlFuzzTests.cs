using System.Diagnostics;
using System.Globalization;
using System.Text;
using Bpfilter.Engine.Formats;
using Bpfilter.Engine.Rules;
using Xunit;
using Xunit.Abstractions;
using YamlDotNet.Core;

namespace Bpfilter.Engine.Tests;

/// <summary>The YAML reader's memory-hungry tests run one at a time, so that their memory checks see only themselves.</summary>
[CollectionDefinition("yaml-reader")]
public sealed class YamlReaderCollection;

/// <summary>
/// Fuzzes <see cref="YamlRulesetReader"/> for a bounded time with a fixed seed (<see cref="YamlFuzzer"/> makes the
/// inputs): every input must end in a ruleset (and generated valid ones must) or in a <see cref="RulesetFormatException"/>
/// with a sensible position, within <see cref="SlowInput"/>, allocating no more than <see cref="AllocationBound"/>,
/// and the heap must not grow over the run. BPFILTER_FUZZ_SECONDS sets the time (20 s by default), BPFILTER_FUZZ_SEED
/// the seed; failing inputs are written to bpfilter-fuzz/ under the temporary directory.
/// </summary>
[Collection("yaml-reader")]
public sealed class YamlFuzzTests(ITestOutputHelper output)
{
    public const int DefaultSeed = 20261201;
    public const double DefaultSeconds = 20;

    /// <summary>Any input slower than this (twice, to rule out a pause of the machine) is a failure.</summary>
    private static readonly TimeSpan SlowInput = TimeSpan.FromSeconds(1);

    /// <summary>The watchdog gives up on an input after this long: the reader hangs.</summary>
    private static readonly TimeSpan HungInput = TimeSpan.FromSeconds(10);

    /// <summary>The most one input may allocate: a fixed allowance and a multiple of its size.</summary>
    private static long AllocationBound(int length) => (16L << 20) + 256L * length;

    /// <summary>The most the heap may have grown, after a full collection, at the end of the run.</summary>
    private const long RetainedGrowthBound = 64L << 20;

    private const string FileName = "fuzz.yaml";

    /// <summary>The first word of every problem <see cref="Check"/> reports (and of a hang), for the summary.</summary>
    private static readonly string[] Categories = ["crash", "hang", "slow", "memory", "position", "message", "unexpected", "refused", "wrong"];

    private static double Seconds() =>
        double.TryParse(Environment.GetEnvironmentVariable("BPFILTER_FUZZ_SECONDS"), NumberStyles.Float, CultureInfo.InvariantCulture, out var s) && s > 0
            ? s : DefaultSeconds;

    private static int Seed() =>
        int.TryParse(Environment.GetEnvironmentVariable("BPFILTER_FUZZ_SEED"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) ? s : DefaultSeed;

    private sealed record Outcome(Ruleset? Ruleset, Exception? Error, TimeSpan Time, long Allocated);

    private sealed class Stats
    {
        public long Executions, Rulesets, Errors, Characters;
        public TimeSpan Slowest;
        public string SlowestKind = "";
        public long MostAllocated;
        public readonly Dictionary<string, long> ByKind = [];
        public readonly Dictionary<string, TimeSpan> TimeByKind = [];
        public readonly Dictionary<string, long> Reasons = [];
    }

    [Fact]
    public void Mutated_and_generated_rulesets_end_in_a_ruleset_or_an_error_with_a_position()
    {
        var seconds = Seconds();
        var seed = Seed();
        // The corpus: the demo, and canonical texts of the whole rule language (sets, user chains, every match and verdict).
        var generated = new RulesetGenerator(seed);
        var fuzzer = new YamlFuzzer(seed, [File.ReadAllText(Samples.DemoPath), .. Enumerable.Range(0, 32).Select(_ => YamlRulesetWriter.Write(generated.Ruleset()))]);
        var scratch = Path.Combine(Path.GetTempPath(), $"bpft-yaml-fuzz-{Environment.ProcessId}.yaml");
        var stats = new Stats();
        var failures = new List<string>();
        long current = -1, startedTicks = 0;
        Exception? workerCrash = null;
        var clock = Stopwatch.StartNew();
        var deadline = TimeSpan.FromSeconds(seconds);

        GC.Collect();
        GC.WaitForPendingFinalizers();
        var heapBefore = GC.GetTotalMemory(forceFullCollection: true);

        var worker = new Thread(() =>
        {
            try
            {
                for (long i = 0; clock.Elapsed < deadline && failures.Count < 10; i++)
                {
                    var input = fuzzer.Make(i);
                    Volatile.Write(ref startedTicks, clock.Elapsed.Ticks);
                    Volatile.Write(ref current, i);
                    var outcome = Run(input, scratch);
                    if (outcome.Time > SlowInput)
                    {
                        var again = Run(input, scratch);
                        if (again.Time < outcome.Time) outcome = again;
                    }
                    Volatile.Write(ref current, -1);
                    Record(stats, input, outcome);
                    if (Check(input, outcome, scratch) is { } problem) failures.Add(Report(seed, i, input, problem));
                }
            }
            catch (Exception e)
            {
                workerCrash = e;
            }
        })
        { IsBackground = true, Name = "yaml-fuzz" };
        worker.Start();
        while (!worker.Join(100))
        {
            var i = Volatile.Read(ref current);
            if (i >= 0 && clock.Elapsed.Ticks - Volatile.Read(ref startedTicks) > HungInput.Ticks && Volatile.Read(ref current) == i)
            {
                // The worker is abandoned (it is a background thread); the input is made again from its number.
                var report = Report(seed, i, fuzzer.Make(i), $"hang: no result after {HungInput.TotalSeconds} s");
                output.WriteLine(report);
                Assert.Fail(report);
            }
        }
        File.Delete(scratch);
        var elapsed = clock.Elapsed;
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var heapGrowth = GC.GetTotalMemory(forceFullCollection: true) - heapBefore;

        output.WriteLine(
            $"YAML fuzz, seed {seed}, budget {seconds} s: {stats.Executions} executions in {elapsed.TotalSeconds:F1} s "
            + $"({stats.Executions / elapsed.TotalSeconds:F0}/s, {stats.Characters / 1048576.0:F1} MiB of input); "
            + $"{stats.Rulesets} rulesets, {stats.Errors} errors with a position ({stats.Reasons.Count} distinct reasons); "
            + $"{failures.Count} failures ({string.Join(", ", Categories.Select(c => $"{c} {failures.Count(f => f.Contains($"): {c}", StringComparison.Ordinal))}"))}); "
            + $"slowest input {stats.Slowest.TotalMilliseconds:F1} ms ({stats.SlowestKind}), most allocated by one input "
            + $"{stats.MostAllocated / 1048576.0:F1} MiB, heap growth over the run {heapGrowth / 1048576.0:F1} MiB.");
        output.WriteLine("By generator (inputs, time reading them): " + string.Join(", ",
            stats.ByKind.OrderBy(k => k.Key).Select(k => $"{k.Key} {k.Value} ({stats.TimeByKind[k.Key].TotalSeconds:F1} s)")));
        output.WriteLine("Most frequent reasons:");
        foreach (var (reason, count) in stats.Reasons.OrderByDescending(r => r.Value).Take(25)) output.WriteLine($"  {count,8}  {reason}");
        foreach (var failure in failures) output.WriteLine(failure);

        Assert.Null(workerCrash);
        Assert.True(failures.Count == 0, $"{failures.Count} failing inputs; the first:\n{failures.FirstOrDefault()}");
        Assert.True(heapGrowth < RetainedGrowthBound, $"the heap grew by {heapGrowth} bytes over the run");
        Assert.True(stats.Executions > 100, $"only {stats.Executions} executions");
    }

    private static Outcome Run(FuzzInput input, string scratch)
    {
        if (input.Bytes is not null) File.WriteAllBytes(scratch, input.Bytes);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        Ruleset? ruleset = null;
        Exception? error = null;
        try
        {
            ruleset = input.Bytes is not null ? YamlRulesetReader.ReadFile(scratch) : YamlRulesetReader.Read(new StringReader(input.Text!), FileName);
        }
        catch (Exception e)
        {
            error = e;
        }
        return new Outcome(ruleset, error, clock.Elapsed, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private static void Record(Stats stats, FuzzInput input, Outcome outcome)
    {
        stats.Executions++;
        stats.Characters += input.Length;
        stats.ByKind[input.Kind] = stats.ByKind.GetValueOrDefault(input.Kind) + 1;
        stats.TimeByKind[input.Kind] = stats.TimeByKind.GetValueOrDefault(input.Kind) + outcome.Time;
        if (outcome.Ruleset is not null) stats.Rulesets++;
        if (outcome.Error is RulesetFormatException f)
        {
            stats.Errors++;
            var family = Family(f.Reason);
            if (stats.Reasons.Count < 10_000 || stats.Reasons.ContainsKey(family)) stats.Reasons[family] = stats.Reasons.GetValueOrDefault(family) + 1;
        }
        if (outcome.Time > stats.Slowest) (stats.Slowest, stats.SlowestKind) = (outcome.Time, input.Kind);
        stats.MostAllocated = Math.Max(stats.MostAllocated, outcome.Allocated);
    }

    /// <summary>A reason without the values it quotes and the numbers it gives, so that alike errors count as one.</summary>
    private static string Family(string reason)
    {
        var text = new StringBuilder();
        bool quoted = false;
        foreach (var c in reason.Length > 120 ? reason[..120] : reason)
        {
            if (c == '\'') { quoted = !quoted; text.Append(c); continue; }
            if (quoted) continue;
            text.Append(char.IsAsciiDigit(c) ? '#' : c);
        }
        return text.ToString();
    }

    /// <summary>What is wrong with an outcome, or null.</summary>
    private static string? Check(FuzzInput input, Outcome outcome, string scratch)
    {
        if (outcome.Time > SlowInput) return $"slow: {outcome.Time.TotalMilliseconds:F0} ms (twice over {SlowInput.TotalSeconds} s)";
        if (outcome.Allocated > AllocationBound(input.Length))
            return $"memory: {outcome.Allocated} bytes allocated for {input.Length} of input (bound {AllocationBound(input.Length)})";
        if (outcome.Error is null)
        {
            if (input.ExpectedRules is { } expected && !outcome.Ruleset!.Chains.Select(c => c.Rules.Count).SequenceEqual(expected))
                return $"wrong: ruleset with rules per chain {string.Join(',', outcome.Ruleset.Chains.Select(c => c.Rules.Count))}, expected {string.Join(',', expected)}";
            return null;
        }
        if (outcome.Error is not RulesetFormatException f) return $"crash: {outcome.Error}";
        if (input.ExpectedRules is not null) return $"refused: a valid ruleset: {f.Message}";
        var file = input.Bytes is not null ? scratch : FileName;
        if (f.File != file) return $"message: the error names {f.File}, not {file}";
        if (f.Line < 1 || f.Column < 1) return $"position: {f.Line}:{f.Column} is not in the file: {f.Message}";
        if (input.Text is not null)
        {
            var end = RulesetTextReader.PositionAfter(input.Text);
            if (f.Line > end.Line + 1) return $"position: {f.Line}:{f.Column} is past the end of the text ({end.Line}:{end.Column}): {f.Message}";
        }
        if (!f.Message.StartsWith($"{file}:{f.Line}:{f.Column}: ", StringComparison.Ordinal) || f.Reason.Length == 0)
            return $"message: not 'file:line:column: reason': {f.Message}";
        if (f.Message.Length > 8_000) return $"message: {f.Message.Length} characters long";
        if (f.Message.Any(c => char.IsControl(c))) return $"message: holds control characters: {f.Message}";
        // Errors the reader only wraps so that a defect still has a position: finding one is a finding.
        if (f.Reason.StartsWith("the YAML cannot be read here:", StringComparison.Ordinal)
            || f.Reason.StartsWith("the ruleset cannot be read:", StringComparison.Ordinal)
            || f.Reason.StartsWith("the file cannot be read:", StringComparison.Ordinal))
            return $"unexpected: exception inside the reader: {f.InnerException}";
        return f.InnerException switch
        {
            null or YamlException or RulesetValidationException or DecoderFallbackException => null,
            ArgumentException when f.Reason.StartsWith("the YAML after this position is not valid:", StringComparison.Ordinal) => null,
            InvalidOperationException when f.Reason.StartsWith("the YAML is malformed here", StringComparison.Ordinal)
                || f.Reason.StartsWith("the YAML cannot be read at this tab", StringComparison.Ordinal) => null,
            var other => $"unexpected: inner exception {other}",
        };
    }

    private static string Report(int seed, long index, FuzzInput input, string problem)
    {
        var directory = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "bpfilter-fuzz")).FullName;
        var path = Path.Combine(directory, $"seed{seed}-input{index}.yaml");
        if (input.Bytes is not null) File.WriteAllBytes(path, input.Bytes);
        else File.WriteAllText(path, input.Text, new UTF8Encoding(false));
        var preview = input.Text is { } text ? RulesetFormatException.Printable(text.Length > 300 ? text[..300] + "..." : text).Replace("\n", "\\n")
            : Convert.ToHexString(input.Bytes!.AsSpan(0, Math.Min(150, input.Bytes!.Length)));
        return $"input {index} ({input.Kind}, {input.Length} {(input.Bytes is null ? "characters" : "bytes")}, saved as {path}): {problem}\n  {preview}";
    }
}
