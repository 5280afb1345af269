using System.Diagnostics;
using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Ebpf.Interpreter;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Rules;
using Bpfilter.Engine.Simulation;
using Xunit;
using Xunit.Abstractions;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// The property the interpreter stands on: for generated chains and generated packets (well-formed IPv4, options,
/// fragments, cut-short and broken headers, other EtherTypes, IPv6, random bytes), the interpreter's verdict and
/// counter changes equal those of the kernel running the same program with BPF_PROG_TEST_RUN.
/// </summary>
[Collection("kernel")]
public sealed class SimulationKernelPropertyTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(Hook.Xdp, 1, 300, 40)]
    [InlineData(Hook.TcIngress, 2, 100, 30)]
    [InlineData(Hook.CgroupIngress, 3, 100, 30)]
    [InlineData(Hook.NfInput, 4, 100, 30)]
    public void Interpreter_and_kernel_agree_on_verdicts_and_counters(Hook hook, int seed, int chains, int packetsPerChain)
    {
        // Generated rules match on connection state too. A test run knows no connection, and neither does the interpreter
        // without a model; xdp and tc test runs look connections up in the caller's namespace, so that is one of our own
        // where nothing is tracked.
        using var sandbox = new Sandbox();
        NetworkNamespace.Run(sandbox.Receiver, () => Compare(hook, seed, chains, packetsPerChain));
    }

    private void Compare(Hook hook, int seed, int chains, int packetsPerChain)
    {
        var generate = new SimulationGenerators(seed);
        var clock = Stopwatch.StartNew();
        var disagreements = new List<string>();
        int cases = 0, refused = 0, stateful = 0;
        bool l2 = ChainSimulator.LayerOf(hook) == PacketLayer.Ethernet;
        int minimum = hook.IsNetfilter() ? 20 : l2 ? 14 : 0; // what BPF_PROG_TEST_RUN accepts as data_size_in

        for (int c = 0; c < chains; c++)
        {
            var chain = generate.Chain(hook);
            stateful += chain.Rules.Count(r => r.Match.CtState is not null || r.Match.CtDirection is not null);
            var compiled = ChainCompiler.Compile(chain);
            var simulator = new ChainSimulator(compiled);
            using var kernel = new KernelChainRunner(compiled);
            for (int p = 0; p < packetsPerChain; p++)
            {
                var packet = generate.Packet(l2, minimum);
                PacketDecision inKernel;
                try
                {
                    inKernel = kernel.Run(packet);
                }
                catch (Kernel.KernelException e) when (e.Errno == 22 && hook != Hook.Xdp)
                {
                    // BPF_PROG_TEST_RUN builds a socket buffer for skb programs and refuses some inputs outright
                    // (an IP EtherType with its header cut short): nothing to compare, the program never ran.
                    refused++;
                    continue;
                }
                cases++;
                PacketDecision interpreted;
                try
                {
                    interpreted = simulator.Run(packet).Decision;
                }
                catch (InterpreterException e)
                {
                    disagreements.Add($"{Describe(chain, packet)}: the interpreter faulted: {e.Message}");
                    continue;
                }
                if (!interpreted.SameAs(inKernel))
                    disagreements.Add($"{Describe(chain, packet)}: interpreter {interpreted} ({interpreted.Bytes} bytes), kernel {inKernel} ({inKernel.Bytes} bytes)");
            }
            // Over all the chain's packets, every counter slot holds the same packets and bytes in both.
            var a = simulator.CounterTotals();
            var b = kernel.CounterTotals();
            if (!a.SequenceEqual(b))
                disagreements.Add($"{Describe(chain, [])}: counters differ: interpreter {string.Join(" ", a)} kernel {string.Join(" ", b)}");
        }

        output.WriteLine($"{hook.ToName()}: {cases} cases ({chains} chains, {stateful} rules on connection state), {disagreements.Count} disagreements, "
            + $"{refused} packets refused by BPF_PROG_TEST_RUN itself, {clock.ElapsedMilliseconds} ms");
        Assert.True(disagreements.Count == 0, string.Join("\n", disagreements.Take(10)));
    }

    private static string Describe(Chain chain, byte[] packet) =>
        $"[{chain.Hook.ToName()}, policy {chain.Policy}: {string.Join("; ", chain.Rules)}] packet {Convert.ToHexString(packet)}";
}
