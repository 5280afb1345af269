using Bpfilter.Engine.Rules;
using Bpfilter.Engine.Simulation;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// The rule language on every hook family, in the kernel (BPF_PROG_TEST_RUN) and the interpreter: sets, negations,
/// lists and ranges, user chains with jump and return, continue, ICMP and ICMPv6, fragments, DSCP, TTL and hop limit,
/// length, IPv6 extension headers. Each case names the rule that must decide; both must agree with it.
/// </summary>
[Collection("kernel")]
public sealed class KernelRuleLanguageTests
{
    private static readonly IpProtocol Tcp = IpProtocol.Tcp, Udp = IpProtocol.Udp;

    private static Rule R(string name, Match match, Verdict verdict) => new(name, match, verdict);

    private static Ruleset Language(Hook hook)
    {
        var input = new Chain("INPUT", hook, hook is Hook.Xdp or Hook.TcIngress ? "lo" : null, Verdict.Drop,
        [
            R("blocked", new Match { Source = AddressMatch.InSet("blocked4") }, Verdict.Drop),
            R("v6-blocked", new Match { Source = AddressMatch.InSet("hosts6") }, Verdict.Drop),
            R("not-lan-ssh", new Match { Protocol = new(Tcp), DestinationPort = PortMatch.Single(22), Source = new AddressMatch([IpPrefix.Parse("10.0.0.0/8")], negated: true) }, Verdict.Drop),
            R("ssh", new Match { Protocol = new(Tcp), DestinationPort = PortMatch.Single(22) }, Verdict.Accept),
            R("web", new Match { Protocol = new(Tcp), DestinationPort = PortMatch.InSet("webports") }, Verdict.Jump("WEB")),
            R("ping", new Match { Protocol = new(IpProtocol.Icmp), IcmpType = RangeMatch.Exactly(8) }, Verdict.Accept),
            R("ping6", new Match { Protocol = new(IpProtocol.Icmpv6), IcmpType = RangeMatch.Exactly(128) }, Verdict.Accept),
            R("later-fragments", new Match { Fragment = new(FragmentKind.NotFirst) }, Verdict.Drop),
            R("voice", new Match { Protocol = new(Udp), Dscp = RangeMatch.Exactly(46) }, Verdict.Accept),
            R("ttl-1", new Match { Ttl = RangeMatch.Exactly(1) }, Verdict.Drop),
            R("hop-limit-1", new Match { HopLimit = RangeMatch.Exactly(1) }, Verdict.Drop),
            R("big-udp", new Match { Protocol = new(Udp), Length = new RangeMatch(1000, 1500) }, Verdict.Accept),
            R("dns-and-more", new Match { Protocol = new(Udp), DestinationPort = new PortMatch([new(53, 53), new(5353, 5353), new(1000, 1010)]) }, Verdict.Accept),
            R("not-udp-from-test-net", new Match { Protocol = new(Udp, Negated: true), Source = new AddressMatch([IpPrefix.Parse("192.0.2.0/24")]) }, Verdict.Accept),
            R("count-the-rest", Match.Any, Verdict.Continue),
        ], cgroup: hook.Target() == HookTarget.Cgroup ? "bpft-language" : null);
        var web = new UserChain("WEB",
        [
            R("syn", new Match { Protocol = new(Tcp), TcpFlags = TcpFlagsMatch.Syn }, Verdict.Accept),
            R("from-lan", new Match { Source = new AddressMatch([IpPrefix.Parse("10.0.0.0/8")]) }, Verdict.Return),
            R("others", Match.Any, Verdict.Drop),
        ]);
        NamedSet Set(string name, SetType type, params string[] elements) => new(name, type, elements.Select(e => SetElement.Parse(type, e)));
        return new Ruleset("language", [input], userChains: [web], sets:
        [
            Set("blocked4", SetType.Ipv4Network, "203.0.113.0/24", "198.51.100.7"),
            Set("hosts6", SetType.Ipv6Address, "2001:db8::66"),
            Set("webports", SetType.Port, "80", "443", "8000-8080"),
        ]);
    }

    private static PacketFields V4(string source, IpProtocol protocol, ushort? port = null) =>
        new() { Source = source, Destination = "192.0.2.200", Protocol = protocol, DestinationPort = port, SourcePort = port is null ? null : 40000 };

    private static PacketFields V6(string source, IpProtocol protocol, ushort? port = null) =>
        new() { Source = source, Destination = "2001:db8::200", Protocol = protocol, DestinationPort = port, SourcePort = port is null ? null : 40000 };

    /// <summary>(case, packet, deciding chain or null for INPUT, deciding rule or "(policy)").</summary>
    public static TheoryData<string, PacketFields, string?, string> Cases() => new()
    {
        { "in an ipv4-net set", V4("203.0.113.9", Tcp, 22), null, "blocked" },
        { "a host of an ipv4-net set", V4("198.51.100.7", Udp, 53), null, "blocked" },
        { "in an ipv6-addr set", V6("2001:db8::66", Tcp, 22), null, "v6-blocked" },
        { "negated prefix", V4("192.0.2.1", Tcp, 22), null, "not-lan-ssh" },
        { "negated prefix does not hold", V4("10.1.1.1", Tcp, 22), null, "ssh" },
        { "ipv6 meets a rule without family", V6("2001:db8::1", Tcp, 22), null, "ssh" },
        { "port set, jump, syn accepted in the user chain", V4("192.0.2.1", Tcp, 8001), "WEB", "syn" },
        { "user chain returns, then continue, then policy", V4("10.1.1.1", Tcp, 80) with { TcpFlags = TcpFlags.Ack }, null, "(policy)" },
        { "user chain drops", V4("192.0.2.1", Tcp, 443) with { TcpFlags = TcpFlags.Ack }, "WEB", "others" },
        { "icmp echo request", V4("192.0.2.1", IpProtocol.Icmp), null, "ping" },
        { "icmpv6 echo request", V6("2001:db8::1", IpProtocol.Icmp), null, "ping6" },
        { "icmp echo reply meets the policy", V4("10.9.9.9", IpProtocol.Icmp) with { IcmpType = 0 }, null, "(policy)" },
        { "ipv4 later fragment", V4("10.9.9.9", Udp) with { FragmentOffset = 100 }, null, "later-fragments" },
        { "ipv6 later fragment", V6("2001:db8::1", Udp) with { FragmentOffset = 10 }, null, "later-fragments" },
        { "ipv6 first fragment still has ports", V6("2001:db8::1", Tcp, 22) with { MoreFragments = true }, null, "ssh" },
        { "ipv6 extension headers are walked", V6("2001:db8::1", Tcp, 22) with { ExtensionHeaders = [0, 43, 60, 51] }, null, "ssh" },
        { "dscp ef", V4("10.9.9.9", Udp, 9) with { Dscp = 46 }, null, "voice" },
        { "dscp ef over ipv6", V6("2001:db8::1", Udp, 9) with { Dscp = 46 }, null, "voice" },
        { "ttl 1", V4("10.9.9.9", Udp, 9) with { Ttl = 1 }, null, "ttl-1" },
        { "hop limit 1", V6("2001:db8::1", Udp, 9) with { Ttl = 1 }, null, "hop-limit-1" },
        { "length in range", V4("10.9.9.9", Udp, 9) with { Length = 1200 }, null, "big-udp" },
        { "port range in a list", V4("10.9.9.9", Udp, 1005), null, "dns-and-more" },
        { "negated protocol", V4("192.0.2.7", Tcp, 9) with { TcpFlags = TcpFlags.Ack }, null, "not-udp-from-test-net" },
        { "continue then policy", V4("10.9.9.9", Udp, 9), null, "(policy)" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Every_hook_decides_as_the_language_says(string name, PacketFields packet, string? chain, string rule)
    {
        foreach (var hook in new[] { Hook.Xdp, Hook.TcIngress, Hook.NfInput, Hook.CgroupIngress })
        {
            var ruleset = Language(hook);
            var result = Simulator.Test(ruleset, ruleset.Chains[0], packet, kernel: true);
            string Decided(PacketDecision d) => d.DecidedBy == Decider.Policy ? "(policy)" : $"{d.Chain}/{d.Rule}";
            var expected = rule == "(policy)" ? "(policy)" : $"{chain}/{rule}";
            Assert.True(expected == Decided(result.Decision), $"{name} at {hook.ToName()}: the interpreter decided {Decided(result.Decision)}, not {expected}");
            Assert.True(expected == Decided(result.Kernel!), $"{name} at {hook.ToName()}: the kernel decided {Decided(result.Kernel!)}, not {expected}");
        }
    }

    [Theory]
    [InlineData(Hook.Xdp)]
    [InlineData(Hook.NfInput)]
    public void A_limit_lets_its_burst_through_then_stops(Hook hook)
    {
        var chain = new Chain("INPUT", hook, hook == Hook.Xdp ? "lo" : null, Verdict.Drop,
        [
            new Rule("few", new Match { Protocol = new(Udp), Limit = new LimitMatch(1, RateUnit.Hour, burst: 3) }, Verdict.Accept),
        ]);
        var ruleset = new Ruleset("limits", [chain]);
        var compiled = Compiler.ChainCompiler.Compile(ruleset, chain, Compiler.CompileOptions.Simulation);
        var simulator = new ChainSimulator(compiled);
        using var kernel = new KernelChainRunner(compiled);
        var packet = PacketBuilder.Build(V4("10.9.9.9", Udp, 9), ChainSimulator.LayerOf(hook));
        var interpreted = Enumerable.Range(0, 6).Select(_ => simulator.Run(packet).Decision.DecidedBy).ToList();
        var inKernel = Enumerable.Range(0, 6).Select(_ => kernel.Run(packet).DecidedBy).ToList();
        Decider[] expected = [Decider.Rule, Decider.Rule, Decider.Rule, Decider.Policy, Decider.Policy, Decider.Policy];
        Assert.Equal(expected, interpreted);
        Assert.Equal(expected, inKernel);
    }

    [Theory]
    [InlineData(Hook.Xdp, true, false, false)]
    [InlineData(Hook.TcIngress, true, false, true)]
    [InlineData(Hook.TcEgress, false, true, true)]
    [InlineData(Hook.NfInput, true, false, true)]
    [InlineData(Hook.NfForward, true, true, true)]
    [InlineData(Hook.NfOutput, false, true, true)]
    [InlineData(Hook.CgroupIngress, true, false, true)]
    [InlineData(Hook.CgroupEgress, false, true, true)]
    public void Interfaces_and_marks_match_where_the_hook_knows_them_and_are_refused_where_not(Hook hook, bool seesIn, bool seesOut, bool seesMark)
    {
        Chain ChainWith(Match match) => new("C", hook, hook is Hook.Xdp or Hook.TcIngress or Hook.TcEgress ? "lo" : null, Verdict.Accept,
            [new Rule("r", match, Verdict.Drop)], cgroup: hook.Target() == HookTarget.Cgroup ? "bpft-x" : null);
        var packet = V4("10.9.9.9", Udp, 9);
        void Check(bool sees, Match match, PacketContext hit, PacketContext miss)
        {
            var chain = ChainWith(match);
            var ruleset = new Ruleset("ifaces", [chain]);
            if (!sees)
            {
                var e = Assert.Throws<BpfilterException>(() => Simulator.Test(ruleset, chain, packet, context: hit));
                Assert.Equal("MatchNotAtHook", e.ErrorId);
                Assert.Contains($"at {hook.ToName()}", e.Message);
                return;
            }
            Assert.Equal(Decider.Rule, Simulator.Test(ruleset, chain, packet, context: hit).DecidedBy);
            Assert.Equal(Decider.Policy, Simulator.Test(ruleset, chain, packet, context: miss).DecidedBy);
        }
        Check(seesIn, new Match { InInterface = new InterfaceMatch("bpft-in0") }, new PacketContext(InInterface: "bpft-in0"), new PacketContext(InInterface: "bpft-in1"));
        Check(seesIn, new Match { InInterface = new InterfaceMatch("bpft-in0", negated: true) }, new PacketContext(InInterface: "bpft-in1"), new PacketContext(InInterface: "bpft-in0"));
        Check(seesOut, new Match { OutInterface = new InterfaceMatch("bpft-out0") }, new PacketContext(OutInterface: "bpft-out0"), new PacketContext(OutInterface: "bpft-out1"));
        Check(seesMark, new Match { Mark = new MarkMatch(0x10, 0xf0) }, new PacketContext(Mark: 0x1f), new PacketContext(Mark: 0x2f));
    }

    [Fact]
    public void The_kernel_test_run_cannot_take_an_interface_KernelContextUnsupported()
    {
        var ruleset = Language(Hook.NfInput);
        var e = Assert.Throws<BpfilterException>(() => Simulator.Test(ruleset, ruleset.Chains[0], V4("10.9.9.9", Udp, 9), kernel: true, context: new PacketContext(InInterface: "lo")));
        Assert.Equal(("KernelContextUnsupported", FailureCategory.InvalidArgument), (e.ErrorId, e.Category));
    }

    [Fact]
    public void A_kernel_struct_member_that_is_not_there_is_BtfMemberMissing()
    {
        Assert.True(Kernel.Btf.MemberOffset("sk_buff", "mark") > 0);
        var e = Assert.Throws<BpfilterException>(() => Kernel.Btf.MemberOffset("net_device", "bpft_no_such_member"));
        Assert.Equal(("BtfMemberMissing", FailureCategory.NotImplemented), (e.ErrorId, e.Category));
    }

    [Fact]
    public void Jumps_that_copy_a_long_user_chain_past_the_kernel_limit_are_ProgramTooLarge()
    {
        var body = Enumerable.Range(0, 1000).Select(i => new Rule(null, new Match { Protocol = new(Udp), DestinationPort = PortMatch.Single((ushort)i) }, Verdict.Continue)).ToList();
        var jumps = Enumerable.Range(0, 100).Select(i => new Rule(null, new Match { Protocol = new(Tcp), DestinationPort = PortMatch.Single((ushort)i) }, Verdict.Jump("LONG"))).ToList();
        var chain = new Chain("INPUT", Hook.NfInput, null, Verdict.Accept, jumps);
        var ruleset = new Ruleset("big", [chain], userChains: [new UserChain("LONG", body)]);
        var e = Assert.Throws<BpfilterException>(() => Compiler.ChainCompiler.Compile(ruleset, chain, Compiler.CompileOptions.Simulation));
        Assert.Equal(("ProgramTooLarge", FailureCategory.InvalidData), (e.ErrorId, e.Category));
        Assert.Contains("every jump copies the user chain", e.Message);
    }
}
