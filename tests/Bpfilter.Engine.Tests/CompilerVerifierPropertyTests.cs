using System.Diagnostics;
using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Ebpf.Interpreter;
using Bpfilter.Engine.Rules;
using Bpfilter.Engine.Simulation;
using Xunit;
using Xunit.Abstractions;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// The compiler against the kernel, over generated rulesets in the full rule language at every hook: each one must
/// pass the verifier, and on generated packets (well-formed of both families, and the broken ones of
/// <see cref="SimulationGenerators"/>) the interpreter's decisions and counters must be the kernel's. BPFILTER_PROPERTY_SCALE
/// multiplies the rulesets per hook (a longer run by hand).
/// </summary>
[Collection("kernel")]
public sealed class CompilerVerifierPropertyTests(ITestOutputHelper output)
{
    public static TheoryData<Hook, int> Hooks() => new()
    {
        { Hook.Xdp, 11 }, { Hook.TcIngress, 12 }, { Hook.TcEgress, 13 }, { Hook.NfPrerouting, 14 }, { Hook.NfInput, 15 },
        { Hook.NfForward, 16 }, { Hook.NfOutput, 17 }, { Hook.NfPostrouting, 18 }, { Hook.CgroupIngress, 19 }, { Hook.CgroupEgress, 20 },
    };

    [Theory]
    [MemberData(nameof(Hooks))]
    public void Generated_rulesets_pass_the_verifier_and_the_kernel_decides_as_the_interpreter(Hook hook, int seed)
    {
        // Rules match on connection state too: xdp and tc test runs look connections up in the caller's namespace, so that
        // is one of this test's own, where nothing is tracked, as the interpreter's runs assume.
        using var sandbox = new Sandbox();
        NetworkNamespace.Run(sandbox.Receiver, () => Generate(hook, seed));
    }

    private void Generate(Hook hook, int seed)
    {
        int scale = int.TryParse(Environment.GetEnvironmentVariable("BPFILTER_PROPERTY_SCALE"), out var s) && s > 0 ? s : 1;
        int rulesets = 40 * scale, packets = 25;
        var generate = new LanguageGenerators(seed);
        var broken = new SimulationGenerators(seed);
        var layer = ChainSimulator.LayerOf(hook);
        int minimum = hook.IsNetfilter() ? 20 : layer == PacketLayer.Ethernet ? 14 : 0;
        var disagreements = new List<string>();
        int accepted = 0, cases = 0, refused = 0;
        long instructions = 0;
        var clock = Stopwatch.StartNew();
        for (int r = 0; r < rulesets; r++)
        {
            var ruleset = generate.Ruleset(hook);
            var compiled = ChainCompiler.Compile(ruleset, ruleset.Chains[0], CompileOptions.Simulation);
            instructions += compiled.Program.Instructions.Count;
            KernelChainRunner kernel;
            try
            {
                kernel = new KernelChainRunner(compiled);
            }
            catch (Kernel.VerifierException e)
            {
                disagreements.Add($"the verifier refused {Describe(ruleset)}: {e.Message}");
                continue;
            }
            accepted++;
            using (kernel)
            {
                var simulator = new ChainSimulator(compiled);
                for (int p = 0; p < packets; p++)
                {
                    byte[] packet = p % 5 == 4 ? broken.Packet(layer == PacketLayer.Ethernet, minimum) : PacketBuilder.Build(generate.Packet(), layer);
                    PacketDecision inKernel;
                    try
                    {
                        inKernel = kernel.Run(packet);
                    }
                    catch (Kernel.KernelException e) when (e.Errno == 22 && hook != Hook.Xdp)
                    {
                        refused++; // BPF_PROG_TEST_RUN refuses some skb inputs outright: the program never ran
                        continue;
                    }
                    cases++;
                    try
                    {
                        var interpreted = simulator.Run(packet).Decision;
                        if (!interpreted.SameAs(inKernel))
                            disagreements.Add($"{Describe(ruleset)} packet {Convert.ToHexString(packet)}: interpreter {interpreted}, kernel {inKernel}");
                    }
                    catch (Exception e) when (e is InterpreterException or BpfilterException)
                    {
                        disagreements.Add($"{Describe(ruleset)} packet {Convert.ToHexString(packet)}: the interpreter failed: {e.Message}");
                    }
                }
                if (!simulator.CounterTotals().SequenceEqual(kernel.CounterTotals()))
                    disagreements.Add($"{Describe(ruleset)}: the counters differ");
            }
        }
        output.WriteLine($"{hook.ToName()}: {rulesets} rulesets generated, {accepted} accepted by the verifier ({instructions / Math.Max(1, rulesets)} instructions on average), "
            + $"{cases} packets compared, {refused} refused by BPF_PROG_TEST_RUN, {disagreements.Count} disagreements, {clock.ElapsedMilliseconds} ms");
        Assert.True(disagreements.Count == 0, string.Join("\n", disagreements.Take(5)));
    }

    private static string Describe(Ruleset ruleset) =>
        "[" + string.Join(" | ", ruleset.Chains.Select(c => $"{c.Name} {c.Hook.ToName()} policy {c.Policy}: {string.Join("; ", c.Rules)}")
            .Concat(ruleset.UserChains.Select(u => $"{u.Name}: {string.Join("; ", u.Rules)}"))
            .Concat(ruleset.Sets.Select(s => $"@{s.Name} {SetTypeNames.Format(s.Type)} {s.Elements}"))) + "]";
}
