using System.Buffers.Binary;
using Bpfilter.Engine.Compiler;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Rules;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// Compiled chains loaded into the real kernel (through the verifier) and run on crafted frames with
/// BPF_PROG_TEST_RUN, against scratch counter maps: edge cases that real traffic cannot easily produce.
/// </summary>
[Collection("kernel")]
public sealed class KernelProgramTests
{
    private const uint XdpDrop = 1, XdpPass = 2;

    private sealed class Loaded : IDisposable
    {
        public Loaded(params Rule[] rules)
        {
            // The linear form, one run of compares per rule, which is what these edge cases and the verifier's scaling
            // concern; OptimizerPropertyTests load the classified form with its tables.
            var chain = new Chain("INPUT", Hook.Xdp, "lo", Verdict.Accept, rules);
            Compiled = ChainCompiler.Compile(new Ruleset("chain", [chain]), chain, CompileOptions.Simulation with { Optimize = false });
            Counters = BpfMap.Create(Compiled.Counters);
            Program = LoadedProgram.Load(Compiled.Program, new Dictionary<MapSpec, BpfMap> { [Compiled.Counters] = Counters });
        }

        public CompiledChain Compiled { get; }
        public BpfMap Counters { get; }
        public LoadedProgram Program { get; }

        public ulong Packets(int slot) => Counters.LookupPerCpu((uint)slot).Aggregate(0UL, (sum, cpu) => sum + BinaryPrimitives.ReadUInt64LittleEndian(cpu));

        public void Dispose()
        {
            Program.Dispose();
            Counters.Dispose();
        }
    }

    private static Rule Drop(string name, Match match) => new(name, match, Verdict.Drop);

    [Fact]
    public void First_matching_rule_decides_and_is_counted()
    {
        using var p = new Loaded(
            Drop("a", Matches.Simple(protocol: IpProtocol.Udp, destinationPort: 53)),
            new Rule("b", Matches.Simple(protocol: IpProtocol.Udp), Verdict.Accept),
            Drop("c", Matches.Simple(protocol: IpProtocol.Udp)));
        Assert.Equal(XdpDrop, p.Program.TestRun(Frames.Ipv4("10.0.0.1", "10.0.0.2", 17, 1000, 53)));
        Assert.Equal(XdpPass, p.Program.TestRun(Frames.Ipv4("10.0.0.1", "10.0.0.2", 17, 1000, 54)));
        Assert.Equal((1UL, 1UL, 0UL), (p.Packets(0), p.Packets(1), p.Packets(2)));
    }

    [Theory]
    [InlineData("10.77.0.200", true)]  // last octet >= 128: the sign-extension trap of 64-bit compares
    [InlineData("10.77.0.201", false)]
    public void Exact_addresses_match_whatever_their_top_bit(string source, bool dropped)
    {
        using var p = new Loaded(Drop("host", Matches.Simple(source: IpPrefix.Parse("10.77.0.200"))));
        Assert.Equal(dropped ? XdpDrop : XdpPass, p.Program.TestRun(Frames.Ipv4(source, "10.0.0.2", 17, 1, 2)));
    }

    [Theory]
    [InlineData("192.168.255.254", true)]
    [InlineData("192.168.0.0", true)]
    [InlineData("192.169.0.0", false)]
    [InlineData("192.167.255.255", false)]
    public void Prefixes_match_at_their_edges(string destination, bool dropped)
    {
        using var p = new Loaded(Drop("net", Matches.Simple(destination: IpPrefix.Parse("192.168.0.0/16"))));
        Assert.Equal(dropped ? XdpDrop : XdpPass, p.Program.TestRun(Frames.Ipv4("10.0.0.1", destination, 6, 1, 2)));
    }

    [Fact]
    public void Ports_are_read_after_IPv4_options()
    {
        using var p = new Loaded(Drop("telnet", Matches.Simple(protocol: IpProtocol.Tcp, destinationPort: 23)));
        Assert.Equal(XdpDrop, p.Program.TestRun(Frames.Ipv4("10.0.0.1", "10.0.0.2", 6, 4000, 23, optionWords: 3)));
    }

    [Fact]
    public void A_non_first_fragment_has_no_ports_but_still_meets_address_rules()
    {
        using var p = new Loaded(
            Drop("port", Matches.Simple(protocol: IpProtocol.Udp, destinationPort: 53)),
            Drop("host", Matches.Simple(source: IpPrefix.Parse("10.9.9.9"))));
        var fragment = Frames.Ipv4("10.0.0.1", "10.0.0.2", 17, 1000, 53, fragmentOffset: 185);
        Assert.Equal(XdpPass, p.Program.TestRun(fragment));
        Assert.Equal(XdpDrop, p.Program.TestRun(Frames.Ipv4("10.9.9.9", "10.0.0.2", 17, 1000, 53, fragmentOffset: 185)));
        Assert.Equal((0UL, 1UL), (p.Packets(0), p.Packets(1)));
    }

    [Fact]
    public void Rules_after_a_rule_that_matches_everything_compile_and_never_count()
    {
        using var p = new Loaded(Drop("everything", Match.Any), new Rule("never", Matches.Simple(protocol: IpProtocol.Udp), Verdict.Accept));
        Assert.Equal(XdpDrop, p.Program.TestRun(Frames.Ipv4("10.0.0.1", "10.0.0.2", 17, 1, 2)));
        Assert.Equal((1UL, 0UL, 0UL), (p.Packets(0), p.Packets(1), p.Packets(p.Compiled.Layout.PolicySlot)));
    }

    [Fact]
    public void Frames_that_are_not_IPv4_pass_and_are_counted_apart()
    {
        using var p = new Loaded(Drop("everything", Match.Any));
        Assert.Equal(XdpPass, p.Program.TestRun(Frames.Arp()));
        Assert.Equal(1UL, p.Packets(p.Compiled.Layout.NotIpSlot));
        Assert.Equal(0UL, p.Packets(0));
    }

    [Theory]
    [InlineData(20)]                  // Ethernet and 6 bytes of an IPv4 header
    [InlineData(33)]                  // one byte short of the fixed header
    public void Cut_short_IPv4_is_dropped_as_malformed(int length)
    {
        using var p = new Loaded();
        var frame = Frames.Ipv4("10.0.0.1", "10.0.0.2", 17, 1, 2)[..length];
        Assert.Equal(XdpDrop, p.Program.TestRun(frame));
        Assert.Equal(1UL, p.Packets(p.Compiled.Layout.MalformedSlot));
    }

    [Fact]
    public void Options_that_run_past_the_end_are_malformed()
    {
        using var p = new Loaded();
        var frame = Frames.Ipv4("10.0.0.1", "10.0.0.2", 17, 1, 2, payload: 0);
        frame[14] = 0x4f; // IHL 15: 60 header bytes claimed, 28 present
        Assert.Equal(XdpDrop, p.Program.TestRun(frame));
        Assert.Equal(1UL, p.Packets(p.Compiled.Layout.MalformedSlot));
    }

    [Fact]
    public void A_transport_header_cut_short_meets_protocol_rules_but_no_port_rule()
    {
        using var p = new Loaded(Drop("dns", Matches.Simple(protocol: IpProtocol.Udp, destinationPort: 53)));
        var frame = Frames.Ipv4("10.0.0.1", "10.0.0.2", 17, 1000, 53)[..(14 + 20 + 7)];
        Assert.Equal(XdpPass, p.Program.TestRun(frame));
        Assert.Equal(1UL, p.Packets(p.Compiled.Layout.PolicySlot));
        using var udp = new Loaded(Drop("udp", Matches.Simple(protocol: IpProtocol.Udp)));
        Assert.Equal(XdpDrop, udp.Program.TestRun(frame));
        Assert.Equal(1UL, udp.Packets(0));
    }

    [Fact]
    public void Two_thousand_three_field_rules_pass_the_verifier_and_the_last_one_decides()
    {
        // Compares that refined the field registers made the verifier's work explode at a thousand rules.
        var rules = Enumerable.Range(0, 2000).Select(i => Drop($"r{i}",
            Matches.Simple(source: IpPrefix.Parse($"10.{i >> 8}.{i & 0xff}.9"), protocol: IpProtocol.Udp, destinationPort: (ushort)(20000 + i)))).ToArray();
        using var p = new Loaded(rules);
        Assert.Equal(XdpDrop, p.Program.TestRun(Frames.Ipv4("10.7.207.9", "10.0.0.2", 17, 1, 21999)));
        Assert.Equal(XdpPass, p.Program.TestRun(Frames.Ipv4("10.7.207.9", "10.0.0.2", 17, 1, 21998)));
        Assert.Equal(1UL, p.Packets(1999));
    }

    [Fact]
    public void A_verifier_rejection_carries_the_verifiers_reason()
    {
        var asm = new Assembler();
        asm.Exit(); // r0 never set
        var program = asm.Assemble("bpft_bad", ProgramType.Xdp);
        var error = Assert.Throws<VerifierException>(() => LoadedProgram.Load(program, new Dictionary<MapSpec, BpfMap>()));
        Assert.Equal("VerifierRejected", error.ErrorId);
        Assert.Contains("R0 !read_ok", error.Message);
        Assert.Contains("R0 !read_ok", error.VerifierLog);
    }
}
