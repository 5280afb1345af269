using System.Buffers.Binary;
using Bpfilter.Engine.Rules;
using Bpfilter.Engine.Simulation;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>The packet builder and the simulator, without a kernel.</summary>
public sealed class SimulationTests
{
    private static readonly Ruleset Demo = new("demo",
    [
        new Chain("INPUT", Hook.Xdp, "bpfd1", Verdict.Accept,
        [
            new Rule("drop-blocked-host", Matches.Simple(source: IpPrefix.Parse("10.200.0.66")), Verdict.Drop),
            new Rule("no-telnet", Matches.Simple(protocol: IpProtocol.Tcp, destinationPort: 23), Verdict.Drop),
            new Rule("allow-dns", Matches.Simple(protocol: IpProtocol.Udp, destination: IpPrefix.Parse("10.200.0.0/24"), destinationPort: 53), Verdict.Accept),
        ]),
    ]);

    private static PacketTestResult Test(PacketFields fields, Ruleset? ruleset = null)
    {
        ruleset ??= Demo;
        return Simulator.Test(ruleset, Simulator.SelectChain(ruleset, null), fields);
    }

    [Fact]
    public void The_first_matching_rule_decides_and_the_rules_tried_are_listed()
    {
        var result = Test(new PacketFields { Source = "192.0.2.7", Destination = "10.200.0.1", Protocol = IpProtocol.Tcp, DestinationPort = 23 });
        Assert.Equal(Verdict.Drop, result.Verdict);
        Assert.Equal("no-telnet", result.Rule);
        Assert.Equal(2, result.Position);
        Assert.Equal(Decider.Rule, result.DecidedBy);
        Assert.Equal(["drop-blocked-host", "no-telnet"], result.Evaluated);
        Assert.Equal(1, result.ReturnCode); // XDP_DROP
        Assert.Equal(54, result.Length);
        Assert.Equal("tcp 192.0.2.7:0 -> 10.200.0.1:23, 54 bytes", result.Packet);
        Assert.Null(result.Kernel);
        Assert.Null(result.Agrees);
    }

    [Fact]
    public void The_policy_decides_when_no_rule_matches()
    {
        var result = Test(new PacketFields { Protocol = IpProtocol.Udp, DestinationPort = 53, Length = 100 });
        Assert.Equal(Verdict.Accept, result.Verdict);
        Assert.Equal("", result.Rule);
        Assert.Null(result.Position);
        Assert.Equal(Decider.Policy, result.DecidedBy);
        Assert.Equal(["drop-blocked-host", "no-telnet", "allow-dns"], result.Evaluated);
        Assert.Equal(100UL, result.Decision.Bytes);
    }

    [Fact]
    public void IPv6_frames_meet_the_rules_that_name_no_family()
    {
        var result = Test(new PacketFields { Source = "2001:db8::1", Destination = "2001:db8::2", Protocol = IpProtocol.Tcp, DestinationPort = 23 });
        Assert.Equal((Verdict.Drop, Decider.Rule, "no-telnet"), (result.Verdict!, result.DecidedBy, result.Rule));
        Assert.Equal(["drop-blocked-host", "no-telnet"], result.Evaluated);
        Assert.StartsWith("tcp [2001:db8::1]:0 -> [2001:db8::2]:23", result.Packet);
    }

    [Fact]
    public void Raw_bytes_that_are_cut_short_are_dropped_as_malformed()
    {
        var frame = PacketBuilder.Build(new PacketFields(), PacketLayer.Ethernet)[..30];
        var result = Simulator.Test(Demo, Demo.Chains[0], frame);
        Assert.Equal((Verdict.Drop, Decider.Malformed), (result.Verdict!, result.DecidedBy));
        Assert.Null(result.Position);
    }

    [Fact]
    public void Unnamed_rules_are_named_by_position_and_tc_accept_is_tcx_next()
    {
        var ruleset = new Ruleset("t", [new Chain("IN", Hook.TcIngress, "eth0", Verdict.Drop, [new Rule(null, Matches.Simple(protocol: IpProtocol.Icmp), Verdict.Accept)])]);
        var result = Test(new PacketFields { Protocol = IpProtocol.Icmp }, ruleset);
        Assert.Equal(("#1", 1, Verdict.Accept, -1), (result.Rule, result.Position!.Value, result.Verdict!, result.ReturnCode));
        Assert.Equal("tc-ingress", result.Hook);
    }

    [Fact]
    public void Network_layer_hooks_get_the_packet_without_an_ethernet_header()
    {
        var ruleset = new Ruleset("n", [new Chain("INPUT", Hook.NfInput, null, Verdict.Accept, [new Rule("ssh", Matches.Simple(protocol: IpProtocol.Tcp, destinationPort: 22), Verdict.Drop)])]);
        var result = Test(new PacketFields { Protocol = IpProtocol.Tcp, DestinationPort = 22 }, ruleset);
        Assert.Equal(("ssh", Verdict.Drop, 0, 40), (result.Rule, result.Verdict!, result.ReturnCode, result.Length));
    }

    [Fact]
    public void Chains_are_picked_by_name_by_hook_or_as_the_only_one()
    {
        var ruleset = new Ruleset("two",
        [
            new Chain("EDGE", Hook.Xdp, "eth0", Verdict.Accept, []),
            new Chain("INPUT", Hook.NfInput, null, Verdict.Accept, []),
        ]);
        Assert.Equal("INPUT", Simulator.SelectChain(ruleset, "INPUT").Name);
        Assert.Equal("INPUT", Simulator.SelectChain(ruleset, "input").Name);
        Assert.Equal("EDGE", Simulator.SelectChain(ruleset, null, Hook.Xdp).Name);
        Assert.Equal("ChainAmbiguous", Assert.Throws<BpfilterException>(() => Simulator.SelectChain(ruleset, null)).ErrorId);
        Assert.Equal("ChainNotFound", Assert.Throws<BpfilterException>(() => Simulator.SelectChain(ruleset, "OUTPUT")).ErrorId);
        Assert.Equal("ChainNotFound", Assert.Throws<BpfilterException>(() => Simulator.SelectChain(ruleset, null, Hook.TcEgress)).ErrorId);
        Assert.Contains("EDGE (xdp on eth0)", Assert.Throws<BpfilterException>(() => Simulator.SelectChain(ruleset, null)).Message);
    }

    [Fact]
    public void Built_packets_have_valid_checksums_and_lengths()
    {
        var frame = PacketBuilder.Build(new PacketFields { Source = "10.0.0.1", Destination = "10.0.0.200", Protocol = IpProtocol.Udp, SourcePort = 5000, DestinationPort = 53, Length = 80 }, PacketLayer.Ethernet);
        Assert.Equal(80, frame.Length);
        Assert.Equal(0x0800, BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(12)));
        var ip = frame.AsSpan(14);
        Assert.Equal(66, BinaryPrimitives.ReadUInt16BigEndian(ip[2..]));
        Assert.Equal(0, PacketBuilder.Checksum(ip[..20], 0));
        Assert.Equal(46, BinaryPrimitives.ReadUInt16BigEndian(ip[24..])); // UDP length covers the padding
        uint pseudo = (0x0a00 + 0x0001 + 0x0a00 + 0x00c8) + 17u + 46u;
        Assert.Equal(0, PacketBuilder.Checksum(ip[20..], pseudo));
        var tcp = PacketBuilder.Build(new PacketFields { Protocol = IpProtocol.Tcp, DestinationPort = 443 }, PacketLayer.Network);
        Assert.Equal((40, 0x02), (tcp.Length, (int)tcp[33]));
        Assert.Equal(60, PacketBuilder.Build(new PacketFields { EtherType = 0x0806 }, PacketLayer.Ethernet).Length);
    }

    [Theory]
    [InlineData("10.0.0.0/8", null, null, null, "not an IPv4 or IPv6 address")]
    [InlineData("10.1", null, null, null, "four numbers")]
    [InlineData("2001:db8::1", null, null, null, "not of one address family")]
    [InlineData(null, "icmp", 80, null, "ports need protocol tcp or udp")]
    [InlineData(null, "tcp", null, 20, "shorter than the headers")]
    public void Packet_fields_that_make_no_packet_are_refused(string? source, string? protocol, int? port, int? length, string reason)
    {
        var fields = new PacketFields
        {
            Source = source ?? PacketFields.DefaultSource,
            Protocol = protocol is null ? IpProtocol.Tcp : IpProtocol.Parse(protocol),
            DestinationPort = (ushort?)port,
            Length = length,
        };
        var error = Assert.Throws<BpfilterException>(() => PacketBuilder.Build(fields, PacketLayer.Ethernet));
        Assert.Equal("PacketInvalid", error.ErrorId);
        Assert.Contains(reason, error.Message);
    }

    [Fact]
    public void Non_first_fragments_have_no_transport_header_and_meet_address_rules_only()
    {
        var fields = new PacketFields { Source = "10.200.0.66", Protocol = IpProtocol.Tcp, FragmentOffset = 185 };
        var result = Test(fields);
        Assert.Equal(("drop-blocked-host", 34), (result.Rule, result.Length));
        Assert.EndsWith("(fragment)", result.Packet);
        Assert.Equal("no-telnet", Test(new PacketFields { Protocol = IpProtocol.Tcp, DestinationPort = 23, MoreFragments = true }).Rule);
        Assert.Equal(Decider.Policy, Test(fields with { Source = "192.0.2.9" }).DecidedBy);
    }

    [Fact]
    public void A_simulator_keeps_counting_over_runs()
    {
        var simulator = new ChainSimulator(Demo.Chains[0]);
        var telnet = PacketBuilder.Build(new PacketFields { Protocol = IpProtocol.Tcp, DestinationPort = 23 }, PacketLayer.Ethernet);
        for (int i = 0; i < 3; i++) simulator.Run(telnet);
        Assert.Equal((3UL, 3UL * 54), simulator.CounterTotals()[1]);
        Assert.Equal("rule 2 no-telnet", simulator.RegionOf(simulator.Compiled.Program.Regions.Single(r => r.Label.StartsWith("rule 2")).Start));
    }
}
