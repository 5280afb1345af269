using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Ebpf.Interpreter;
using Bpfilter.Engine.Formats;
using Bpfilter.Engine.Rules;
using Bpfilter.Engine.Simulation;
using Xunit;
using Xunit.Abstractions;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// The interpreter runs everything the compiler makes without a single fault: the sample rulesets and generated
/// chains at every hook (XDP offload's shared counters included), on generated packets cut at every length.
/// </summary>
public sealed class SimulationCorpusTests(ITestOutputHelper output)
{
    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Bpfilter.psd1"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("no repository root above the test assembly");
    }

    public static IEnumerable<Chain> Corpus()
    {
        foreach (var file in Directory.EnumerateFiles(Path.Combine(RepositoryRoot(), "samples"), "*.yaml"))
        {
            foreach (var chain in YamlRulesetReader.ReadFile(file).Chains) yield return chain;
        }
        var generate = new SimulationGenerators(42);
        foreach (var hook in Enum.GetValues<Hook>())
        {
            for (int i = 0; i < 12; i++) yield return generate.Chain(hook, maxRules: 12);
        }
        for (int i = 0; i < 6; i++)
        {
            var chain = generate.Chain(Hook.Xdp);
            yield return new Chain(chain.Name, Hook.Xdp, "lo", chain.Policy, chain.Rules, XdpMode.Offload);
        }
    }

    [Fact]
    public void Every_compiled_chain_runs_on_every_cut_of_every_packet_without_a_fault()
    {
        var generate = new SimulationGenerators(7);
        int chains = 0, runs = 0;
        var faults = new List<string>();
        var decided = new Dictionary<Decider, int>();
        foreach (var chain in Corpus())
        {
            chains++;
            var simulator = new ChainSimulator(ChainCompiler.Compile(chain));
            bool l2 = simulator.Layer == PacketLayer.Ethernet;
            bool stateful = chain.Rules.Any(r => r.Match.CtState is not null || r.Match.CtDirection is not null);
            for (int p = 0; p < 12; p++)
            {
                var packet = generate.Packet(l2);
                for (int length = 0; length <= packet.Length; length++)
                {
                    runs++;
                    try
                    {
                        var decision = simulator.Run(packet.AsSpan(0, length)).Decision;
                        decided[decision.DecidedBy] = decided.GetValueOrDefault(decision.DecidedBy) + 1;
                        if (stateful) simulator.Run(packet.AsSpan(0, length), conntrack: generate.Conntrack());
                    }
                    catch (Exception e) when (e is InterpreterException or BpfilterException)
                    {
                        faults.Add($"{chain.Hook.ToName()} [{string.Join("; ", chain.Rules)}] {Convert.ToHexString(packet, 0, length)}: {e.Message}");
                    }
                }
            }
        }
        output.WriteLine($"{chains} chains, {runs} runs, {faults.Count} faults; decided by {string.Join(", ", decided.Select(d => $"{d.Key} {d.Value}"))}");
        Assert.True(faults.Count == 0, string.Join("\n", faults.Take(10)));
        Assert.All(Enum.GetValues<Decider>(), d => Assert.True(decided.GetValueOrDefault(d) > 0, $"no run was decided by {d}"));
    }
}
