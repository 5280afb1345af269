using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Rules;
using Bpfilter.Engine.Simulation;

namespace Bpfilter.Bench;

/// <summary>Per-packet cost of one compiled chain by BPF_PROG_TEST_RUN; Nanoseconds is empty when the chain did not load.</summary>
internal sealed record ProgramCostRun(string Shape, int Rules, bool Optimized, double[] Nanoseconds, string Note);

/// <summary>
/// BPF_PROG_TEST_RUN's own average over a million runs of the 64-byte frame that the last rule drops, for the
/// optimized and the naive compile of the same rules at XDP. Every program's verdict on the frame is checked first:
/// a program that does not drop it by the last rule is not measured.
/// </summary>
internal static class ProgramCost
{
    public static List<ProgramCostRun> Run(BenchSettings settings, Action<string> log)
    {
        var frame = Generator.Frame([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1], Rulesets.MatchedPort);
        var runs = new List<ProgramCostRun> { BareDrop(frame, settings) };
        log($"program cost: a bare XDP_DROP program takes {Median(runs[0].Nanoseconds):0} ns (the harness's own cost)");
        foreach (var (shape, make) in new (string, Func<int, Rule[]>)[] { ("pairs", Rulesets.Pairs), ("mixed", Rulesets.Mixed) })
        {
            foreach (var n in settings.RuleCounts.Append(settings.LargestRuleCount))
            {
                foreach (var optimized in new[] { true, false })
                {
                    if (!optimized && n > settings.RuleCounts[^1]) continue;
                    var run = Measure(shape, make(n), optimized, frame, settings);
                    log($"program cost {shape} {n,6} rules {(optimized ? "optimized" : "naive    ")}: "
                        + (run.Nanoseconds.Length > 0 ? $"{Median(run.Nanoseconds):0} ns" : run.Note));
                    runs.Add(run);
                }
            }
        }
        return runs;
    }

    private static ProgramCostRun Measure(string shape, Rule[] rules, bool optimized, byte[] frame, BenchSettings settings)
    {
        var chain = new Chain("BENCH", Hook.Xdp, "lo", Verdict.Accept, rules);
        try
        {
            var compiled = ChainCompiler.Compile(new Ruleset("bench", [chain]), chain, CompileOptions.Simulation with { Optimize = optimized });
            using var kernel = new KernelChainRunner(compiled);
            var decision = kernel.Run(frame);
            if (decision.Position != rules.Length)
                return new(shape, rules.Length, optimized, [], $"decided by {decision}, not the last rule");
            var times = Enumerable.Range(0, settings.CostRuns).Select(_ => (double)kernel.AverageNanoseconds(frame, settings.CostRepeat)).ToArray();
            return new(shape, rules.Length, optimized, times, "");
        }
        catch (Exception e)
        {
            return new(shape, rules.Length, optimized, [], DataPlane.FirstLine(e.Message));
        }
    }

    /// <summary>The test harness's own cost: a program that only returns XDP_DROP, measured the same way.</summary>
    private static ProgramCostRun BareDrop(byte[] frame, BenchSettings settings)
    {
        var asm = new Assembler();
        asm.Mov(Register.R0, 1L);
        asm.Exit();
        using var program = LoadedProgram.Load(asm.Assemble("bench_bare", ProgramType.Xdp), new Dictionary<MapSpec, BpfMap>());
        var times = Enumerable.Range(0, settings.CostRuns).Select(_ => (double)program.TestRunDuration(frame, settings.CostRepeat)).ToArray();
        return new ProgramCostRun(BareShape, 0, false, times, "");
    }

    public const string BareShape = "bare drop";

    public static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
