using System.Diagnostics;
using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Rules;
using Bpfilter.Engine.Simulation;
using Xunit;
using Xunit.Abstractions;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// The optimizer keeps first-match semantics: for generated chains of the whole rule language (IPv4 and IPv6,
/// prefix lists, port ranges, negations, TCP flags, ICMP, TTL, length, DSCP, fragments, accept and drop, with
/// continue rules that split the classified runs), the naive program in the interpreter, the optimized program in
/// the interpreter and the optimized program in the kernel decide every packet alike and count alike.
/// </summary>
[Collection("kernel")]
public sealed class OptimizerPropertyTests(ITestOutputHelper output)
{
    private static readonly CompileOptions Naive = CompileOptions.Simulation with { Optimize = false };

    /// <summary>Classifies runs of two rules or more, so that small generated chains exercise it.</summary>
    private static readonly CompileOptions Eager = CompileOptions.Simulation with { MinimumClassifiedRun = 2 };

    [Theory]
    [InlineData(Hook.Xdp, 21, 25, 40)]
    [InlineData(Hook.TcIngress, 22, 8, 40)]
    [InlineData(Hook.NfInput, 23, 8, 40)]
    public void Optimized_and_naive_programs_decide_and_count_alike(Hook hook, int seed, int chains, int packetsPerChain)
    {
        var generate = new RuleLanguageGenerator(seed);
        var clock = Stopwatch.StartNew();
        var disagreements = new List<string>();
        int cases = 0, classified = 0;
        var layer = ChainSimulator.LayerOf(hook);
        for (int c = 0; c < chains; c++)
        {
            var chain = generate.Chain(hook);
            var ruleset = new Ruleset("opt", [chain]);
            var naive = new ChainSimulator(ChainCompiler.Compile(ruleset, chain, Naive));
            var compiled = ChainCompiler.Compile(ruleset, chain, Eager);
            if (compiled.LookupTables.Count > 0) classified++;
            var optimized = new ChainSimulator(compiled);
            using var kernel = new KernelChainRunner(compiled);
            for (int p = 0; p < packetsPerChain; p++)
            {
                var packet = generate.Packet(layer);
                PacketDecision inKernel;
                try
                {
                    inKernel = kernel.Run(packet);
                }
                catch (Kernel.KernelException e) when (e.Errno == 22 && hook != Hook.Xdp)
                {
                    // BPF_PROG_TEST_RUN refuses some inputs for skb programs outright (an IP EtherType with its header
                    // cut short): the program never ran, so neither form runs it here.
                    continue;
                }
                var expected = naive.Run(packet).Decision;
                var interpreted = optimized.Run(packet).Decision;
                cases++;
                if (!interpreted.SameAs(expected) || !inKernel.SameAs(expected))
                    disagreements.Add($"{Describe(chain)} packet {Convert.ToHexString(packet)}: naive {expected}, optimized {interpreted}, kernel {inKernel}");
            }
            var counts = naive.CounterTotals();
            if (!counts.SequenceEqual(optimized.CounterTotals()) || !counts.SequenceEqual(kernel.CounterTotals()))
                disagreements.Add($"{Describe(chain)}: counters differ: naive {string.Join(" ", counts)}, optimized {string.Join(" ", optimized.CounterTotals())}, kernel {string.Join(" ", kernel.CounterTotals())}");
        }
        output.WriteLine($"{hook.ToName()}: {cases} cases, {chains} chains ({classified} with classified runs), {disagreements.Count} disagreements, {clock.ElapsedMilliseconds} ms");
        Assert.True(classified >= chains * 3 / 4, $"only {classified} of {chains} chains had a classified run");
        Assert.True(disagreements.Count == 0, string.Join("\n", disagreements.Take(5)));
    }

    [Fact]
    public void A_chain_of_100000_rules_loads_passes_the_verifier_and_decides_as_the_interpreter_does()
    {
        var clock = Stopwatch.StartNew();
        const int count = 100_000;
        var rules = new Rule[count];
        for (int i = 0; i < count; i++)
        {
            // Hosts in 10/8 and networks in 11/8, one /24 each: prefixes that do not nest keep the tables as large as the ruleset.
            var source = i % 3 == 0 ? new IpPrefix(IpFamily.Ipv4, (11u << 24) | ((uint)i << 8 & 0xffff00), 24) : new IpPrefix(IpFamily.Ipv4, (10u << 24) | (uint)i, 32);
            rules[i] = new Rule(null, new Match
            {
                Source = new AddressMatch([source]),
                Protocol = new ProtocolMatch(i % 2 == 0 ? IpProtocol.Udp : IpProtocol.Tcp),
                DestinationPort = i % 5 == 0 ? new PortMatch([new PortRange((ushort)(i % 60000), (ushort)(i % 60000 + 9))]) : PortMatch.Single((ushort)(i % 65000)),
            }, i % 7 == 0 ? Verdict.Accept : Verdict.Drop);
        }
        var chain = new Chain("BIG", Hook.Xdp, "lo", Verdict.Accept, rules);
        var compiled = ChainCompiler.Compile(new Ruleset("big", [chain]), chain, CompileOptions.Simulation);
        long compiledMs = clock.ElapsedMilliseconds;
        Assert.True(compiled.Program.Instructions.Count < 2_000, $"{compiled.Program.Instructions.Count} instructions");
        using var kernel = new KernelChainRunner(compiled);
        long loadedMs = clock.ElapsedMilliseconds;
        var simulator = new ChainSimulator(compiled);
        foreach (int i in new[] { 1, 3, 10, 77_777, count - 1 })
        {
            var protocol = i % 2 == 0 ? IpProtocol.Udp : IpProtocol.Tcp;
            var fields = new PacketFields
            {
                Source = i % 3 == 0 ? $"11.{(i >> 8) & 0xff}.{i & 0xff}.7" : $"10.{(i >> 16) & 0xff}.{(i >> 8) & 0xff}.{i & 0xff}", Destination = "192.0.2.2", Protocol = protocol,
                SourcePort = 1000, DestinationPort = (ushort)(i % 5 == 0 ? i % 60000 + 3 : i % 65000),
            };
            var packet = PacketBuilder.Build(fields, PacketLayer.Ethernet);
            var inKernel = kernel.Run(packet);
            Assert.Equal(simulator.Run(packet).Decision, inKernel);
            Assert.NotNull(inKernel.Position);
        }
        output.WriteLine($"{count} rules: {compiled.Program.Instructions.Count} instructions, {compiled.LookupTables.Count} tables, "
            + $"{compiled.LookupTables.Sum(t => t.Entries.Count)} entries; compiled in {compiledMs} ms, loaded by {loadedMs} ms, all in {clock.ElapsedMilliseconds} ms");
    }

    private static string Describe(Chain chain) => $"[{chain.Hook.ToName()}, policy {chain.Policy}: {string.Join("; ", chain.Rules)}]";
}

/// <summary>Chains of the whole rule language over small pools of values, and packets over the same pools, so that rules match often.</summary>
internal sealed class RuleLanguageGenerator(int seed)
{
    private readonly Random _random = new(seed);
    private readonly SimulationGenerators _packets = new(seed);

    private static readonly string[] V4 = ["10.0.0.1", "10.0.0.200", "10.1.2.3", "192.168.1.1", "172.16.0.5", "0.0.0.0", "255.255.255.255"];
    private static readonly string[] V6 = ["2001:db8::1", "2001:db8::200", "2001:db8:1::5", "fe80::1", "::1"];
    private static readonly ushort[] Ports = [0, 22, 53, 80, 443, 1024, 8080, 65535];
    private static readonly byte[] Ttls = [1, 63, 64, 128, 255];

    private T Pick<T>(IReadOnlyList<T> items) => items[_random.Next(items.Count)];
    private bool Chance(double p) => _random.NextDouble() < p;

    public Chain Chain(Hook hook)
    {
        var rules = Enumerable.Range(0, _random.Next(4, 40)).Select(i => new Rule($"r{i + 1}", Match(),
            Chance(0.06) ? Verdict.Continue : Chance(0.5) ? Verdict.Drop : Verdict.Accept)).ToList();
        var policy = Chance(0.5) ? Verdict.Drop : Verdict.Accept;
        return hook.IsNetfilter() ? new Chain("GEN", hook, null, policy, rules) : new Chain("GEN", hook, "lo", policy, rules);
    }

    private Match Match()
    {
        bool v6 = Chance(0.2);
        IpProtocol? protocol = Chance(0.75) ? _random.Next(5) switch
        {
            0 or 1 => IpProtocol.Tcp,
            2 => IpProtocol.Udp,
            3 => v6 ? IpProtocol.Icmpv6 : IpProtocol.Icmp,
            _ => new IpProtocol((byte)_random.Next(256)),
        } : null;
        bool negatedProtocol = protocol is not null && Chance(0.08);
        bool ports = protocol is { HasPorts: true } && !negatedProtocol;
        bool icmp = protocol is { IsIcmp: true } && !negatedProtocol;
        return new Match
        {
            Protocol = protocol is { } chosen ? new ProtocolMatch(chosen, negatedProtocol) : null,
            Source = Chance(0.45) ? Addresses(v6) : null,
            Destination = Chance(0.35) ? Addresses(v6) : null,
            SourcePort = ports && Chance(0.3) ? PortList() : null,
            DestinationPort = ports && Chance(0.5) ? PortList() : null,
            TcpFlags = protocol == IpProtocol.Tcp && !negatedProtocol && Chance(0.2) ? new TcpFlagsMatch(TcpFlags.Syn | TcpFlags.Ack, TcpFlags.Syn, Chance(0.3)) : null,
            IcmpType = icmp && Chance(0.5) ? (Chance(0.5) ? new RangeMatch(8, 8) : new RangeMatch(0, 3, Chance(0.3))) : null,
            Ttl = !v6 && Chance(0.1) ? new RangeMatch(60, 70, Chance(0.3)) : null,
            HopLimit = v6 && Chance(0.1) ? new RangeMatch(60, 70) : null,
            Length = Chance(0.08) ? new RangeMatch(40, 100, Chance(0.3)) : null,
            Dscp = Chance(0.05) ? new RangeMatch(10, 10) : null,
            Fragment = Chance(0.05) ? new FragmentMatch(Chance(0.5) ? FragmentKind.First : FragmentKind.NotFirst, Chance(0.3)) : null,
        } is var m && m.Source is null && m.Destination is null && v6 ? m with { Family = IpFamily.Ipv6 } : m;
    }

    private AddressMatch Addresses(bool v6)
    {
        var prefixes = Enumerable.Range(0, _random.Next(1, 3)).Select(_ =>
        {
            var address = IpPrefix.Parse(Pick(v6 ? V6 : V4));
            int length = v6 ? Pick(new[] { 16, 48, 64, 100, 128 }) : Pick(new[] { 8, 16, 24, 30, 32 });
            return new IpPrefix(address.Family, address.Address & (v6 ? UInt128.MaxValue << (128 - length) : (uint.MaxValue << (32 - length))), length);
        }).Distinct();
        return new AddressMatch(prefixes, Chance(0.15));
    }

    private PortMatch PortList() => new(Enumerable.Range(0, _random.Next(1, 3)).Select(_ =>
    {
        ushort first = Pick(Ports);
        return Chance(0.3) ? new PortRange(first, (ushort)Math.Min(65535, first + _random.Next(1, 100))) : new PortRange(first, first);
    }), Chance(0.12));

    /// <summary>Mostly packets built from the pools (IPv4 and IPv6, every protocol the rules name, fragments); some of the other generator's edge cases.</summary>
    public byte[] Packet(PacketLayer layer)
    {
        if (Chance(0.15)) return _packets.Packet(layer == PacketLayer.Ethernet, layer == PacketLayer.Ethernet ? 14 : 20);
        bool v6 = Chance(0.25);
        var protocol = _random.Next(6) switch
        {
            0 or 1 => IpProtocol.Tcp,
            2 or 3 => IpProtocol.Udp,
            4 => v6 ? IpProtocol.Icmpv6 : IpProtocol.Icmp,
            _ => new IpProtocol((byte)_random.Next(256)),
        };
        ushort fragmentOffset = Chance(0.08) ? (ushort)_random.Next(1, 100) : (ushort)0;
        bool ports = protocol.HasPorts && fragmentOffset == 0;
        var fields = new PacketFields
        {
            Source = Pick(v6 ? V6 : V4), Destination = Pick(v6 ? V6 : V4), Protocol = protocol,
            SourcePort = ports ? Port() : null, DestinationPort = ports ? Port() : null,
            Ttl = Pick(Ttls), TcpFlags = Chance(0.5) ? TcpFlags.Syn : Chance(0.5) ? TcpFlags.Syn | TcpFlags.Ack : TcpFlags.Ack,
            IcmpType = protocol.IsIcmp ? (byte)Pick(new[] { 0, 3, 8, 11 }) : null,
            FragmentOffset = fragmentOffset, MoreFragments = Chance(0.08),
            Dscp = Chance(0.1) ? (byte)10 : (byte)0, Length = Chance(0.3) ? _random.Next(100, 160) : null,
        };
        return PacketBuilder.Build(fields, layer);
    }

    private ushort Port() => Chance(0.85) ? Pick(Ports) : (ushort)_random.Next(65536);
}
