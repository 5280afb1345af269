using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Rules;
using Bpfilter.Engine.Simulation;

namespace Bpfilter.Bench;

/// <summary>Per-packet cost of one compiled chain by BPF_PROG_TEST_RUN; Nanoseconds is empty when the chain did not load.</summary>
internal sealed record ProgramCostRun(string Shape, int Rules, bool Optimized, double[] Nanoseconds, string Note, Hook Hook = Hook.Xdp);

/// <summary>
/// BPF_PROG_TEST_RUN's own average over a million runs of the 64-byte frame that the last rule drops, for the
/// optimized and the naive compile of the same rules at XDP; and one rule against a bare drop program at every hook
/// the data plane measures, which gives one rule's cost there. Every program's verdict on the frame is checked
/// first: a program that does not drop it by the last rule is not measured.
/// </summary>
internal static class ProgramCost
{
    public static List<ProgramCostRun> Run(BenchSettings settings, Action<string> log)
    {
        var frame = Generator.Frame([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1], Rulesets.MatchedPort);
        var runs = new List<ProgramCostRun>();
        foreach (var hook in Hooks)
        {
            var bare = BareDrop(hook, frame, settings);
            var one = Measure("pairs", Rulesets.Pairs(1), true, frame, settings, hook);
            log($"program cost at {hook.ToName()}: a bare drop program {Median(bare.Nanoseconds):0} ns (the harness's own cost), one rule {Median(one.Nanoseconds):0} ns");
            runs.Add(bare);
            if (hook != Hook.Xdp) runs.Add(one);
        }
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

    /// <summary>The hooks whose per-packet cost the data plane's targets need.</summary>
    public static readonly Hook[] Hooks = [Hook.Xdp, Hook.TcIngress, Hook.NfInput];

    private static ProgramCostRun Measure(string shape, Rule[] rules, bool optimized, byte[] frame, BenchSettings settings, Hook hook = Hook.Xdp)
    {
        var chain = hook.IsNetfilter() ? new Chain("BENCH", hook, null, Verdict.Accept, rules) : new Chain("BENCH", hook, "lo", Verdict.Accept, rules);
        if (hook.IsNetfilter()) frame = frame[14..];
        try
        {
            var compiled = ChainCompiler.Compile(new Ruleset("bench", [chain]), chain, CompileOptions.Simulation with { Optimize = optimized });
            using var kernel = new KernelChainRunner(compiled);
            var decision = kernel.Run(frame);
            if (decision.Position != rules.Length)
                return new(shape, rules.Length, optimized, [], $"decided by {decision}, not the last rule", hook);
            var times = Enumerable.Range(0, settings.CostRuns).Select(_ => (double)kernel.AverageNanoseconds(frame, settings.CostRepeat)).ToArray();
            return new(shape, rules.Length, optimized, times, "", hook);
        }
        catch (Exception e)
        {
            return new(shape, rules.Length, optimized, [], DataPlane.FirstLine(e.Message), hook);
        }
    }

    /// <summary>The test harness's own cost at a hook: a program that only returns its drop code, measured the same way.</summary>
    private static ProgramCostRun BareDrop(Hook hook, byte[] frame, BenchSettings settings)
    {
        var (type, attach, drop) = hook switch
        {
            Hook.Xdp => (ProgramType.Xdp, 0u, 1L /* XDP_DROP */),
            Hook.TcIngress => (ProgramType.SchedCls, 0u, 2L /* TCX_DROP */),
            _ => (ProgramType.Netfilter, 45u /* BPF_NETFILTER */, 0L /* NF_DROP */),
        };
        var asm = new Assembler();
        asm.Mov(Register.R0, drop);
        asm.Exit();
        using var program = LoadedProgram.Load(asm.Assemble("bench_bare", type, attach), new Dictionary<MapSpec, BpfMap>());
        var input = hook.IsNetfilter() ? frame[14..] : frame;
        var times = Enumerable.Range(0, settings.CostRuns).Select(_ => (double)program.TestRunDuration(input, settings.CostRepeat)).ToArray();
        return new ProgramCostRun(BareShape, 0, false, times, "", hook);
    }

    public const string BareShape = "bare drop";

    public static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
